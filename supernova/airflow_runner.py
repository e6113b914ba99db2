"""Run a project DAG in this process with `dag.test()` and a local metadata DB, so finance
can run the real DAG without an Airflow server (`supernova settle`, `supernova marts`)."""

from __future__ import annotations

import os
from pathlib import Path

from supernova import settings


def configure_airflow_env() -> Path:
    """Point Airflow at the project's DAGs and a local SQLite metadata DB (unless the
    caller already configured AIRFLOW_HOME). Must run before airflow is imported."""
    home = Path(os.environ.get("AIRFLOW_HOME") or settings.var_dir() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(settings.DAGS_DIR))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # task logs as files under AIRFLOW_HOME/logs, plain text: the CLI sends the console
    # output to <warehouse>/logs/ as well (supernova.summary.details_to), where colour
    # codes would be noise
    os.environ.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(home / "logs"))
    os.environ.setdefault("AIRFLOW__LOGGING__COLORED_CONSOLE_LOG", "False")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    return home


def ensure_metadata_db(home: Path) -> None:
    from airflow.utils import db

    marker = home / ".supernova-initdb"
    if not marker.exists():
        db.initdb()
        marker.write_text("ok\n")


def run_dag(dag_id: str, conf: dict):
    """Run the DAG once, in process; returns the DagRun (check `.state`)."""
    home = configure_airflow_env()
    ensure_metadata_db(home)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.DAGS_DIR))
    if dag_id not in bag.dags:
        errors = "; ".join(f"{k}: {v}" for k, v in bag.import_errors.items())
        raise RuntimeError(
            f"DAG {dag_id} not found in {settings.DAGS_DIR}. Import errors: {errors or 'none'}"
        )
    # the whole run lives in this process: its warehouse lease is bound to it (a killed
    # `supernova settle` leaves a lease the next run clears at once), see supernova/lock.py
    from supernova.dag_support import IN_PROCESS_ENV

    before = os.environ.get(IN_PROCESS_ENV)
    os.environ[IN_PROCESS_ENV] = "1"
    try:
        return bag.dags[dag_id].test(run_conf=conf)
    finally:
        if before is None:
            os.environ.pop(IN_PROCESS_ENV, None)
        else:
            os.environ[IN_PROCESS_ENV] = before
