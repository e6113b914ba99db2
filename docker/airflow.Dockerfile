# Airflow 3 + the Supernova project environment (uv, frozen lock). The project itself is
# mounted at /opt/supernova by docker-compose.yml; the environment lives outside the mount.
# The PostgreSQL drivers Airflow needs for its metadata DB (psycopg2, and asyncpg for the
# async connection Airflow 3 also opens) are project dependencies, so they come from uv.lock
# like everything else.
FROM python:3.11-slim
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow
RUN pip install --no-cache-dir uv && useradd --create-home --uid 50000 airflow
WORKDIR /opt/supernova
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-install-project --no-dev \
    && chown -R airflow /opt/venv
# AIRFLOW_HOME (airflow.cfg, the simple auth manager's passwords file, task logs) belongs to
# the user Airflow runs as. The named volumes compose mounts at auth/ and logs/ start as
# copies of these folders, so they are the airflow user's too.
RUN mkdir -p /opt/airflow/auth /opt/airflow/logs \
    && chown -R airflow:airflow /opt/airflow \
    && chmod 0750 /opt/airflow /opt/airflow/auth
USER airflow
