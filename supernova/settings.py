"""Where things live. Every path can be overridden by an environment variable so the
same code runs from the CLI, under `dag.test()`, in docker-compose and in tests."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DAGS_DIR = PROJECT_ROOT / "dags"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def var_dir() -> Path:
    """Local state for CLI runs (sample data, warehouse, Airflow metadata DB)."""
    return _path("SUPERNOVA_HOME", PROJECT_ROOT / "var")


def default_landing() -> Path:
    return _path("SUPERNOVA_LANDING", var_dir() / "landing")


def default_warehouse() -> Path:
    return _path("SUPERNOVA_WAREHOUSE", var_dir() / "warehouse")


def duckdb_path(warehouse: Path) -> Path:
    return Path(warehouse) / "supernova.duckdb"
