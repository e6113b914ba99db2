"""The settlement `dbt build` on Spark (dbt-spark, `method: session`): the build step of a
Spark run (supernova/spark_settle.py), also used by the benchmark (bench/spark.py).

The process's environment selects Spark: the dbt target `spark`, the warehouse (Spark's
catalog and Derby metastore go to <warehouse>/spark/) and the ingestion manifest as Parquet
(`<raw>/_manifest/manifest.parquet`, written by ingestion), which the on-run-start hook
reads (dbt_project/macros/spark_raw.sql). Spark never opens the DuckDB file.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# the settlement and everything upstream of it, with their data tests (as on DuckDB)
SETTLEMENT_SELECT = "+path:models/settlement"


def spark_env(warehouse: Path, manifest: Path) -> None:
    """Point this process's dbt at Spark for `warehouse`, reading `manifest`."""
    warehouse = Path(warehouse).resolve()
    os.environ["SUPERNOVA_DBT_TARGET"] = "spark"
    os.environ["SUPERNOVA_WAREHOUSE"] = str(warehouse)
    os.environ["SUPERNOVA_MANIFEST_PARQUET"] = str(Path(manifest).resolve())
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode: loopback only
    # the Derby metastore writes derby.log into the working directory
    os.environ.setdefault("SPARK_SUBMIT_OPTS", f"-Dderby.system.home={warehouse / 'spark'}")


def build(
    warehouse: Path,
    month: str,
    manifest: Path,
    first_month: str | None = None,
    run_id: str | None = None,
    select: str = SETTLEMENT_SELECT,
    accept_suspense: bool = False,
) -> dict:
    """`dbt build` of the settlement (and upstream) on Spark; returns ok, dbt_seconds,
    nodes, failures (one line each) and the seconds per node."""
    from supernova.dbt_runner import dbt_invoke

    warehouse = Path(warehouse).resolve()
    spark_env(warehouse, manifest)
    vars_ = {
        "settlement_month": month,
        "run_id": run_id or f"{month}-bench",
        "first_month": first_month or month,
        "accept_suspense": bool(accept_suspense),
    }
    t0 = time.perf_counter()
    res = dbt_invoke(
        warehouse, ["build", "--select", select, "--exclude-resource-type", "unit_test"], vars_
    )
    out = {"ok": bool(res.success), "dbt_seconds": round(time.perf_counter() - t0, 2)}
    results = getattr(res.result, "results", None) or []
    out["nodes"] = len(results)
    out["failures"] = [
        f"{r.node.name}: {str(r.status)}: {(r.message or '')[:800]}"
        for r in results
        if str(r.status).lower() in ("error", "fail", "runtime error")
    ]
    out["timing"] = {r.node.name: round(r.execution_time, 2) for r in results}
    if res.exception is not None:
        out["failures"].append(f"dbt: {res.exception}")
    return out


def spark_session():
    """The session dbt-spark created in this process (same configuration)."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


def session(warehouse: Path, manifest: Path, vars_: dict):
    """This process's Spark session configured as dbt-spark configures it (profiles.yml):
    the active one, or the one a `dbt run-operation` (the raw views' registration, about
    1 s per export) creates."""
    from pyspark.sql import SparkSession

    from supernova.dbt_runner import dbt_invoke

    if SparkSession.getActiveSession() is None:
        spark_env(warehouse, manifest)
        res = dbt_invoke(
            Path(warehouse).resolve(), ["run-operation", "register_raw_sources"], vars_
        )
        if not res.success:
            raise RuntimeError(f"could not start the Spark session through dbt: {res.exception}")
    return spark_session()
