"""Shared fixtures.

Airflow reads its configuration from the environment at import time, so the temporary
AIRFLOW_HOME is set here, before any test module imports airflow.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="supernova-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session")
def airflow_db():
    """A real Airflow metadata DB (SQLite) for the whole session."""
    from airflow.utils import db

    db.initdb()
    return Path(_AIRFLOW_HOME)


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory):
    """Generated tiny exports, 2026-09-01 .. 2026-11-07: two settleable months
    (September and October; October's cutoff is 2026-11-08)."""
    from supernova.generator import generate

    out = tmp_path_factory.mktemp("landing")
    generate(out=out, start="2026-09-01", days=68, scale="tiny", seed=7)
    return out
