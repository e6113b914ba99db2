"""The settlement `dbt build` on Spark local mode (dbt-spark, method: session), for the
benchmark and the parity test. Runs in the Spark environment (.venv-spark):

    UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark \\
        python -m bench.spark build --landing L --warehouse W --month 2026-10

<warehouse>/raw is the ingested raw Parquet (may be a symlink to another warehouse's);
the ingestion manifest is exported from the DuckDB file next to it to
<warehouse>/spark/manifest.parquet, which the on-run-start hook reads
(dbt_project/macros/spark_raw.sql). Spark's own tables and metastore go to
<warehouse>/spark/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def export_manifest(warehouse: Path) -> Path:
    """raw.manifest of the DuckDB warehouse that owns <warehouse>/raw, as Parquet."""
    import duckdb

    raw = (Path(warehouse) / "raw").resolve()
    db = raw.parent / "supernova.duckdb"
    out = Path(warehouse) / "spark" / "manifest.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(f"copy (select * from raw.manifest) to '{out}' (format parquet)")
    finally:
        con.close()
    return out


def spark_env(warehouse: Path) -> None:
    os.environ["SUPERNOVA_DBT_TARGET"] = "spark"
    os.environ["SUPERNOVA_WAREHOUSE"] = str(Path(warehouse).resolve())
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode: loopback only
    # the Derby metastore writes derby.log into the working directory
    os.environ.setdefault(
        "SPARK_SUBMIT_OPTS", f"-Dderby.system.home={Path(warehouse).resolve() / 'spark'}"
    )


def build(
    warehouse: Path,
    month: str,
    first_month: str | None = None,
    run_id: str | None = None,
    select: str = "+path:models/settlement",
    manifest: Path | None = None,
) -> dict:
    """`dbt build` of the settlement (and upstream) on Spark; returns a result dict.
    `manifest`: the ingestion manifest as Parquet (supernova.spark_support,
    `<raw>/_manifest/manifest.parquet`); without it, it is exported from the DuckDB file."""
    from supernova.dbt_runner import dbt_invoke

    warehouse = Path(warehouse).resolve()
    spark_env(warehouse)
    if manifest is None:
        export_manifest(warehouse)
    else:
        os.environ["SUPERNOVA_MANIFEST_PARQUET"] = str(Path(manifest).resolve())
    vars_ = {
        "settlement_month": month,
        "run_id": run_id or f"{month}-bench",
        "first_month": first_month or month,
        "accept_suspense": False,
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spark")
    p.add_argument("stage", choices=["build"])
    p.add_argument("--landing", type=Path)
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--month", required=True)
    p.add_argument(
        "--manifest",
        type=Path,
        help="the ingestion manifest as Parquet (<raw>/_manifest/manifest.parquet); "
        "default: exported from the DuckDB file next to <warehouse>/raw",
    )
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        out = build(a.warehouse, a.month, manifest=a.manifest)
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000]}
    out.update(stage="spark_build", inner_seconds=round(time.perf_counter() - t0, 2))
    print("BENCH_RESULT " + json.dumps(out, default=str), flush=True)
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
