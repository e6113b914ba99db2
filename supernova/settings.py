"""Where things live. Every path can be overridden by an environment variable so the
same code runs from the CLI, under `dag.test()`, in docker-compose and in tests."""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A settlement month as written everywhere (params, paths, SQL literals): 'YYYY-MM'.
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
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


# DuckDB's buffer pool, for dbt (profiles.yml reads the same variable and default) and for
# every connection Python opens on the warehouse: without it DuckDB takes 80 % of RAM. 6 GB
# keeps a settlement's whole process tree (Airflow, dbt, GX chunks) under 8 GB; above it
# DuckDB spills to <warehouse>/supernova.duckdb.tmp/ (docs/benchmarks.md).
DUCKDB_MEMORY_LIMIT_DEFAULT = "6GB"


def duckdb_memory_limit() -> str:
    value = os.environ.get("SUPERNOVA_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT_DEFAULT).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, flags=re.IGNORECASE):
        raise ValueError(
            f"SUPERNOVA_DUCKDB_MEMORY_LIMIT must look like '6GB' or '512MB', not {value!r}"
        )
    return value
