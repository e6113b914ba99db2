# Airflow 3 + the Supernova project environment (uv, frozen lock). The project itself is
# mounted at /opt/supernova by docker-compose.yml; the environment lives outside the mount.
FROM python:3.11-slim
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir uv && useradd --create-home --uid 50000 airflow
WORKDIR /opt/supernova
COPY pyproject.toml uv.lock ./
# the PostgreSQL driver for the metadata DB is the one addition to the locked environment
RUN uv sync --frozen --no-install-project --no-dev \
    && uv pip install --python /opt/venv/bin/python "psycopg2-binary>=2.9,<3" \
    && chown -R airflow /opt/venv
USER airflow
