"""The run record of a Spark run: `settlement_runs` as Parquet beside the published tables,
and the facts the plan rules read from the Parquet a Spark run leaves (docs/spark.md).

A Spark run never opens the warehouse's DuckDB file. Each attempt's row of
`settlement_runs` (the DuckDB table's columns, publish.RUN_COLUMNS, same types) is one
file `<warehouse>/parquet/settlement/settlement_runs/spark-<attempt_id>.parquet`, written
to a hidden temporary file and swapped in by one rename: a reader sees the row whole or
not at all. The BI catalog (supernova/serving.py) already reads `settlement_runs/*.parquet`,
so BI sees Spark's rows with no change.

What is published is what the commit markers say (supernova/spark_publish.py); the row of
a published run is written right after its last marker. A run killed between the two is
found by the next attempt's `begin` (`recover_interrupted`): its markers name its run, so
its row is written then from its state file, as `published`. A killed attempt that did not
publish gets a `failed` row, as on DuckDB.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from supernova.months import SHANGHAI
from supernova.publish import RUN_COLUMNS
from supernova.run_state import RunState, run_row

RUNS_DIR = ("parquet", "settlement", "settlement_runs")


def runs_dir(warehouse: Path) -> Path:
    return Path(warehouse).joinpath(*RUNS_DIR)


def _arrow_type(sql_type: str):
    import pyarrow as pa

    if sql_type.startswith("decimal"):
        precision, scale = (int(x) for x in sql_type[8:-1].split(","))
        return pa.decimal128(precision, scale)
    return {
        "varchar": pa.string(),
        "bigint": pa.int64(),
        "timestamp": pa.timestamp("us"),
    }[sql_type]


def _value(sql_type: str, value):
    """A value as the column's type holds it (money quantized to its scale, exactly)."""
    if value is None:
        return None
    if sql_type.startswith("decimal"):
        scale = int(sql_type[:-1].split(",")[1])
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
    if sql_type == "bigint":
        return int(value)
    if sql_type == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def write_run_row(warehouse: Path, row: dict) -> Path:
    """Write (or replace) the attempt's row, atomically; returns the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, _arrow_type(typ)) for name, typ in RUN_COLUMNS.items()])
    table = pa.table(
        {name: [_value(typ, row.get(name))] for name, typ in RUN_COLUMNS.items()}, schema=schema
    )
    folder = runs_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"spark-{row['attempt_id']}.parquet"
    tmp = folder / f".tmp-{target.name}-{os.getpid()}"
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def read_runs(warehouse: Path) -> list[dict]:
    """Every recorded attempt (rows of every settlement_runs file), oldest first."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(runs_dir(warehouse).glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return sorted(rows, key=lambda r: (r["started_at"] or datetime.min, r["attempt_id"] or ""))


def published_runs(warehouse: Path, months: list[str]) -> dict[str, dict]:
    """Month -> the row of the run whose partitions are committed (all five markers name
    it, spark_publish.published_run); months whose markers name no recorded run are left
    out (recover_interrupted writes their row first)."""
    from supernova.spark_publish import published_run

    rows = read_runs(warehouse)
    out = {}
    for month in months:
        run_id = published_run(warehouse, month)
        found = [r for r in rows if r["run_id"] == run_id and r["status"] == "published"]
        if run_id and found:
            out[month] = found[-1]
    return out


def published_months(warehouse: Path) -> list[str]:
    """Months with a committed partition of any published table (markers present)."""
    from supernova.spark_publish import committed_months
    from supernova.tables import PUBLISHED_TABLES

    return sorted({m for table in PUBLISHED_TABLES for m in committed_months(warehouse, table)})


def reopen_count(warehouse: Path, month: str) -> int:
    """Runs that published (or reopened) `month` so far, as on DuckDB."""
    return sum(
        r["settlement_month"] == month and r["status"] in ("published", "reopened")
        for r in read_runs(warehouse)
    )


def record_published(warehouse: Path, row: dict) -> None:
    """The published run's row; earlier published rows of the month become `reopened`."""
    write_run_row(warehouse, row)
    for old in read_runs(warehouse):
        if (
            old["settlement_month"] == row["settlement_month"]
            and old["status"] == "published"
            and old["run_id"] != row["run_id"]
        ):
            write_run_row(
                warehouse, {**old, "status": "reopened", "reopened_by_run_id": row["run_id"]}
            )


def recover_interrupted(
    warehouse: Path, by_attempt: str, log=print, cleared: str | None = None
) -> list[str]:
    """Every earlier attempt that started and never finished (the lease admits one owner,
    so none is running): recorded as published when its markers name its run, else failed.
    An attempt of the DuckDB engine is recorded the DuckDB way (run_state), by its own
    transaction's outcome, not by Spark's markers."""
    from supernova.run_state import record_interrupted
    from supernova.spark_publish import published_run

    done = []
    candidates = sorted(p.parent.name for p in (Path(warehouse) / "runs").glob("*/state.json"))
    for attempt in candidates + ([cleared] if cleared and cleared not in candidates else []):
        state = RunState(warehouse, attempt)
        data = state.load()
        if attempt == by_attempt or not data.get("request") or data.get("finished_at"):
            continue
        if data.get("engine") != "spark":
            record_interrupted(warehouse, attempt, by_attempt, log)
            done.append(attempt)
            continue
        req, plan = data["request"], data.get("plan") or {}
        ctx = {**req, "attempt_id": attempt}
        now = datetime.now(SHANGHAI).isoformat()
        run_id = plan.get("run_id")
        if run_id and not req.get("preview") and published_run(warehouse, req["month"]) == run_id:
            # the totals are not known here (no Spark session): the row has none
            record_published(warehouse, {**run_row(ctx, plan, data, "published"), "run_id": run_id})
            state.update(status="published", finished_at=now)
            log(f"recorded attempt {attempt} as published (its partitions were committed)")
        else:
            message = (
                f"interrupted: the process died during this attempt (found by attempt "
                f"{by_attempt}); nothing of it was published"
            )
            row = run_row(ctx, plan, data, "failed", message)
            write_run_row(warehouse, {**row, "run_id": run_id or f"{req['month']}-unplanned"})
            state.update(status="failed", error=message, finished_at=now)
            log(f"recorded interrupted attempt {attempt} as failed in settlement_runs")
        done.append(attempt)
    return done


@contextlib.contextmanager
def parquet_reader(warehouse: Path):
    """An in-memory DuckDB connection with the BI catalog's views (published tables,
    settlement_runs, marts: serving.views_sql) and `raw.manifest` over the manifest
    Parquet: what the report reads for a Spark run, never the warehouse's DuckDB file."""
    import duckdb

    from supernova.serving import views_sql
    from supernova.spark_support import manifest_parquet_path

    con = duckdb.connect()
    try:
        con.execute("set timezone = 'Asia/Shanghai'")
        for stmt in views_sql(warehouse):
            con.execute(stmt)
        manifest = manifest_parquet_path(Path(warehouse).resolve() / "raw")
        if manifest.is_file():
            literal = str(manifest).replace("'", "''")
            con.execute("create schema if not exists raw")
            con.execute(f"create view raw.manifest as select * from read_parquet('{literal}')")
        yield con
    finally:
        con.close()
