"""The settlement `dbt build` on Spark local mode (dbt-spark, method: session), for the
benchmark and the parity test (the build itself: supernova/spark_build.py). Runs in the
Spark environment (.venv-spark):

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
import sys
import time
from pathlib import Path

from supernova import spark_build
from supernova.spark_build import SETTLEMENT_SELECT, spark_session  # noqa: F401 - re-exported


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


def build(
    warehouse: Path,
    month: str,
    first_month: str | None = None,
    run_id: str | None = None,
    select: str = SETTLEMENT_SELECT,
    manifest: Path | None = None,
) -> dict:
    """supernova.spark_build.build; without `manifest`, it is exported from the DuckDB file
    next to <warehouse>/raw first (for raw folders ingested before the Parquet manifest)."""
    if manifest is None:
        manifest = export_manifest(warehouse)
    return spark_build.build(
        warehouse, month, manifest, first_month=first_month, run_id=run_id, select=select
    )


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
