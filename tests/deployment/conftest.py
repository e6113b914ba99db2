"""The deployment tests: docker-compose.yml's Airflow stack run natively (airflow_stack)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from deployment.airflow_stack import Api, RunAs, Stack, postgres_bin


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "deployment: starts PostgreSQL and the Airflow services of docker-compose.yml natively "
        "and drives them through the REST API (a few minutes; runs in CI)",
    )


def _unavailable(reason: str):
    # CI must prove the deployment: a missing prerequisite there is a failure, not a skip
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"deployment test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def stack():
    """PostgreSQL + airflow-init + api-server, scheduler, dag-processor, triggerer, as an
    unprivileged user, on tiny generated exports 2026-09-01..2026-11-07. Stopped by PID
    whatever happens (finally, and atexit)."""
    if postgres_bin() is None:
        _unavailable(
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/pg_ctl): "
            "`make postgres` installs the Debian package"
        )
    from supernova.generator import generate

    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="supernova-deploy-"))
    landing, warehouse = base / "host" / "landing", base / "host" / "warehouse"
    generate(out=landing, start="2026-09-01", days=68, scale="tiny", seed=7)
    delivered = time.time() - 3600  # delivered an hour ago: past ingestion's quiet period
    for path in landing.rglob("*"):
        os.utime(path, (delivered, delivered))
    st = Stack(base=base, landing=landing, warehouse=warehouse, run_as=RunAs.for_tests())
    try:
        st.start()
        api = Api(st.api_url, *st.admin)
        st.wait_for(
            lambda: api._send("GET", "/api/v2/monitor/health", auth=False)[0] == 200,
            180,
            "the api-server's health endpoint",
        )

        def components_healthy():
            health = api._send("GET", "/api/v2/monitor/health", auth=False)[1]
            return all(
                health.get(c, {}).get("status") == "healthy"
                for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        st.wait_for(components_healthy, 180, "scheduler, triggerer and dag-processor healthy")
        for dag_id in ("monthly_settlement", "ingest_exports", "analytics_marts"):
            st.wait_for(
                lambda d=dag_id: api.request("GET", f"/api/v2/dags/{d}")[0] == 200,
                180,
                f"DAG {dag_id} parsed by the dag-processor",
            )
        st.api = api
        st.started_in = time.monotonic() - started
        print(f"\ndeployment stack up in {st.started_in:.0f} s (base {base})")
        yield st
    finally:
        st.stop()
        print(f"\ndeployment stack: {time.monotonic() - started:.0f} s from start to stop")
        if os.environ.get("SUPERNOVA_KEEP_DEPLOY_DIR"):
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
