"""Publishing a month from Spark: the month's candidate tables (`settlement_build.*` in the
Spark catalog) become the same Parquet partitions the DuckDB publish writes
(supernova/publish.py), with the same commit protocol, so finance's and BI's readers do not
know which engine settled a month.

Layout: `<warehouse>/parquet/settlement/<table>/<month column>=YYYY-MM/part-0.parquet`
(the month column is the folder's Hive key, not in the file; rows sorted by the table's
key; naive Asia/Shanghai timestamps, as DuckDB's), and the commit marker
`<warehouse>/parquet/settlement/_commits/<table>/YYYY-MM` holding the run id.

Commit protocol (a reader relies on the markers, never on the folders alone):
1. only after the gate passed (`gate["ok"]`), and only rows of this run and month;
2. stage: every table's partition is written by the executors to a hidden folder under
   `<warehouse>/tmp/publish/<table>/` (publish.staging_dir: outside parquet/, whose globs,
   `*/*.parquet` of the BI views or a reader's `**/*.parquet`, match hidden folders too;
   on parquet/'s disk, publish.check_same_disk), then renamed to one file `part-0.parquet`;
3. commit, table by table: remove the marker, swap the staged folder in (supernova/swap.py:
   the partition's `part-0.parquet` replaced in place by one rename, so a reader never
   finds the month missing), write the marker with its own rename.
A partition is published for run R when its marker names R; the month is published when
all five tables' markers name R (`published_run`). A run killed at any point leaves either
the previous state or an uncommitted partition (no marker) that `register_published` does
not read and the next publish replaces; leftovers are hidden folders. The renames are
Python's, so the warehouse is a local or mounted POSIX path; HDFS needs Hadoop's
FileSystem.rename, and S3-like stores (where a rename is a copy) a table format
(docs/spark.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from supernova import settings
from supernova.publish import (
    PUBLISHED_TABLES,
    PublishError,
    _marker,
    check_same_disk,
    commit_partition,
    partition_dir,
    staging_dir,
    swap_leftovers,
)


def published_run(warehouse: Path, month: str) -> str | None:
    """The run id every table's committed partition of `month` names, or None."""
    runs = set()
    for table in PUBLISHED_TABLES:
        marker = _marker(warehouse, table, month)
        if (
            not marker.exists()
            or not (partition_dir(warehouse, table, month) / "part-0.parquet").exists()
        ):
            return None
        runs.add(marker.read_text().strip())
    return runs.pop() if len(runs) == 1 else None


def committed_months(warehouse: Path, table: str) -> list[str]:
    """Months whose partition of `table` is committed (marker present, file present)."""
    markers = _marker(warehouse, table, "x").parent
    if not markers.exists():
        return []
    return sorted(
        m.name
        for m in markers.iterdir()
        if settings.MONTH_RE.match(m.name)
        and (partition_dir(warehouse, table, m.name) / "part-0.parquet").exists()
    )


def _naive_timestamps(frame):
    """Spark timestamps are instants; DuckDB's published ones are naive wall-clock times.
    timestamp_ntz writes them as Parquet timestamps not adjusted to UTC, like DuckDB."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    return frame.select(
        *[
            F.col(f.name).cast("timestamp_ntz").alias(f.name)
            if isinstance(f.dataType, TimestampType)
            else F.col(f.name)
            for f in frame.schema.fields
        ]
    )


def clean_leftovers(warehouse: Path) -> list[Path]:
    """Remove what a killed publish left (publish.swap_leftovers: hidden `.tmp-*` staged
    folders, `.old-*` folders renamed aside, temporary markers). Publishing is
    single-writer: call this only at the start of a publish."""
    found = swap_leftovers(warehouse)
    for leftover in found:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return found


def _stage(spark, warehouse: Path, table: str, month: str) -> tuple[Path, int]:
    """Write the month's rows of settlement_build.<table> to a hidden folder holding one
    `part-0.parquet`; returns (folder, rows)."""
    col, order = PUBLISHED_TABLES[table]
    target = partition_dir(warehouse, table, month)
    frame = spark.table(f"settlement_build.{table}")
    other = frame.where(f"{col} <> '{month}' or {col} is null").count()
    if other:
        raise PublishError(f"settlement_build.{table} holds {other} row(s) not of {month}")
    keys = [k.strip() for k in order.split(",")]
    rows = frame.count()
    out = _naive_timestamps(frame.drop(col)).repartition(1).sortWithinPartitions(*keys)
    # outside parquet/, named like supernova.publish's leftovers (`.tmp-*`), which it removes
    spark_dir = staging_dir(warehouse, table) / f".tmp-spark-{target.name}-{os.getpid()}"
    staged = staging_dir(warehouse, table) / f".tmp-{target.name}-{os.getpid()}"
    for leftover in (spark_dir, staged):
        shutil.rmtree(leftover, ignore_errors=True)
    out.write.option("compression", "zstd").parquet(str(spark_dir))
    parts = sorted(spark_dir.glob("part-*.parquet"))
    if len(parts) != 1:
        raise PublishError(f"{table} {month}: Spark wrote {len(parts)} files, expected 1")
    staged.mkdir(parents=True)
    os.rename(parts[0], staged / "part-0.parquet")
    shutil.rmtree(spark_dir)
    return staged, rows


def publish_month(
    spark, warehouse: Path, month: str, run_id: str, gate: dict, reopen: bool = False
) -> dict:
    """Publish the month's candidate tables as Parquet partitions; returns rows per table,
    or {"unchanged": run_id} when this run's partitions are already committed."""
    if not gate or not gate.get("ok"):
        raise PublishError(f"the gate did not pass for {month}: nothing published")
    if not settings.MONTH_RE.match(month):
        raise PublishError(f"not a month: {month!r}")
    warehouse = Path(warehouse)
    already = published_run(warehouse, month)
    if already == run_id:
        return {"unchanged": run_id}
    if already and not reopen:
        raise PublishError(f"{month} is published by run {already}; nothing published")
    runs = {
        r[0]
        for r in spark.sql(
            "select distinct run_id from settlement_build.payout_lines "
            "union select distinct run_id from settlement_build.payouts"
        ).collect()
    }
    if runs - {run_id}:
        raise PublishError(
            f"settlement_build holds rows of run(s) {sorted(runs - {run_id})}, not {run_id}: "
            "refusing to publish a mix of runs"
        )
    clean_leftovers(warehouse)
    check_same_disk(warehouse)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    staged = {table: _stage(spark, warehouse, table, month) for table in PUBLISHED_TABLES}
    for table, (folder, _) in staged.items():
        commit_partition(warehouse, table, month, folder, run_id)
    return {table: rows for table, (_, rows) in staged.items()}


def register_published(spark, warehouse: Path) -> list[str]:
    """`settlement.<table>` views over the committed partitions (what the next month's
    build reads as already posted / frozen terms), columns in the candidate tables' order
    with the month as a string. Tables with nothing committed get no view: the models read
    an empty relation then (published_or_empty)."""
    spark.sql("create database if not exists settlement")
    made = []
    for table, (col, _) in PUBLISHED_TABLES.items():
        months = committed_months(warehouse, table)
        if not months:
            continue
        folder = partition_dir(warehouse, table, months[0]).parent
        columns = [f.name for f in spark.table(f"settlement_build.{table}").schema.fields]
        select = ", ".join(f"cast({c} as string) as {c}" if c == col else c for c in columns)
        listed = ", ".join(f"'{m}'" for m in months)
        spark.sql(
            f"create or replace view settlement.{table} as select {select} "
            f"from parquet.`{folder}` where cast({col} as string) in ({listed})"
        )
        made.append(table)
    return made
