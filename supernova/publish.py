"""Publishing a month: the only code that writes the `settlement` schema and its Parquet.

DuckDB: one transaction moves the month's candidate rows from settlement_build into the
append-only published tables and records the run, so a reader sees the old state or the
new one, never half. Parquet: each month's partition is written to a temporary folder
and swapped in (its file replaced in place by one rename, supernova/swap.py); then a
commit marker `parquet/settlement/_commits/<table>/<month>` names the run it belongs to,
so a crash between the DuckDB commit and the Parquet swap is repaired by the next run
(`sync_parquet`). Markers live outside the table folders: a table folder holds only
Parquet, which is what polars, pandas and `read_parquet('dir/*/*')` need.
Each table's partition folder is named after its month column (`settlement_month=YYYY-MM`;
`first_settlement_month=YYYY-MM` for line_terms, whose rows belong to the month a line was
first settled), so the Hive column read back has the DuckDB column's name. Rows are written
sorted by key with a fixed writer, so the same published data always gives byte-identical
files. After every change of the Parquet copies the BI catalog (supernova.serving) is
rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from supernova import serving, settings
from supernova.faults import fault_point
from supernova.swap import swap_in
from supernova.tables import PUBLISHED_TABLES
from supernova.warehouse import connect, table_exists

RUN_COLUMNS = {
    "run_id": "varchar",
    "attempt_id": "varchar",
    "settlement_month": "varchar",
    "status": "varchar",
    "started_at": "timestamp",
    "finished_at": "timestamp",
    "triggered_by": "varchar",
    "reopen_reason": "varchar",
    "reopened_by_run_id": "varchar",
    "accept_suspense_reason": "varchar",
    "input_fingerprint": "varchar",
    "code_fingerprint": "varchar",
    "input_files": "bigint",
    "lines_settled": "bigint",
    "base_amount": "decimal(18,2)",
    "line_commission": "decimal(18,2)",
    "platform_fee": "decimal(18,2)",
    "level1_amount": "decimal(18,2)",
    "level2_amount": "decimal(18,2)",
    "operator_retained": "decimal(18,2)",
    "clawback_amount": "decimal(18,2)",
    "adjustment_amount": "decimal(18,2)",
    "tier_bonus_amount": "decimal(18,2)",
    "postings_amount": "decimal(18,2)",
    "payout_rows": "bigint",
    "gross_due": "decimal(18,2)",
    "net_paid": "decimal(18,2)",
    "tax_withheld": "decimal(18,2)",
    "carried_out": "decimal(18,2)",
    "forfeited_amount": "decimal(18,2)",
    "suspense_lines": "bigint",
    "suspense_base": "decimal(18,2)",
    "suspense_ratio": "decimal(18,8)",
    "checks_passed": "bigint",
    "checks_failed": "bigint",
    "checks": "varchar",
    "message": "varchar",
    # the order-line funnel (outputs.md; settlement_run_totals): lines_delivered = lines_settled
    # + lines_settled_earlier + suspense_lines + lines_organic + lines_pending_completion
    # + lines_cancelled_unsettled + lines_completed_before_first_month; orphan events beside it
    "lines_delivered": "bigint",
    "lines_organic": "bigint",
    "lines_settled_earlier": "bigint",
    "lines_pending_completion": "bigint",
    "lines_cancelled_unsettled": "bigint",
    "lines_completed_before_first_month": "bigint",
    "orphan_events": "bigint",
}
TOTAL_COLUMNS = [
    "lines_settled",
    "base_amount",
    "line_commission",
    "platform_fee",
    "level1_amount",
    "level2_amount",
    "operator_retained",
    "clawback_amount",
    "adjustment_amount",
    "tier_bonus_amount",
    "postings_amount",
    "payout_rows",
    "gross_due",
    "net_paid",
    "tax_withheld",
    "carried_out",
    "forfeited_amount",
    "suspense_lines",
    "suspense_base",
    "suspense_ratio",
    "lines_delivered",
    "lines_organic",
    "lines_settled_earlier",
    "lines_pending_completion",
    "lines_cancelled_unsettled",
    "lines_completed_before_first_month",
    "orphan_events",
]


class PublishError(RuntimeError):
    pass


def ensure_settlement_schema(con) -> None:
    """settlement.settlement_runs with every RUN_COLUMNS column: created, or (a warehouse
    from an earlier version) given the columns it lacks, empty for its earlier runs."""
    con.execute("create schema if not exists settlement")
    cols = ", ".join(f"{k} {v}" for k, v in RUN_COLUMNS.items())
    con.execute(f"create table if not exists settlement.settlement_runs ({cols})")
    have = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'settlement' and table_name = 'settlement_runs'"
        ).fetchall()
    }
    for name, typ in RUN_COLUMNS.items():
        if name not in have:
            con.execute(
                f"alter table settlement.settlement_runs add column if not exists {name} {typ}"
            )


def record_run(con, row: dict) -> None:
    """Insert one settlement_runs row (columns not given stay NULL)."""
    ensure_settlement_schema(con)
    names = [k for k in RUN_COLUMNS if k in row]
    con.execute(
        f"insert into settlement.settlement_runs ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
        [row[k] for k in names],
    )


def build_totals(con) -> dict:
    cur = con.execute(
        f"select {', '.join(TOTAL_COLUMNS)} from settlement_build.settlement_run_totals"
    )
    return dict(zip(TOTAL_COLUMNS, cur.fetchone()))


def publish_month(warehouse: Path, month: str, run_id: str, run_row: dict, reopen: bool) -> dict:
    """Move the month's candidate tables into `settlement` in one transaction."""
    check_same_disk(warehouse)
    with connect(warehouse) as con:
        built = {
            r[0]
            for r in con.execute(
                "select distinct run_id from settlement_build.payout_lines "
                "union select distinct run_id from settlement_build.payouts"
            ).fetchall()
        }
        if built - {run_id}:
            raise PublishError(
                f"settlement_build holds rows of run(s) {sorted(built - {run_id})}, not {run_id}: "
                "refusing to publish a mix of runs"
            )
        con.execute("begin transaction")
        try:
            ensure_settlement_schema(con)
            for table in PUBLISHED_TABLES:
                con.execute(
                    f"create table if not exists settlement.{table} as "
                    f"select * from settlement_build.{table} where 1 = 0"
                )
            already = con.execute(
                "select run_id from settlement.settlement_runs where settlement_month = ? and status = 'published'",
                [month],
            ).fetchall()
            if already and not reopen:
                raise PublishError(
                    f"{month} was published meanwhile by run {already[0][0]}; nothing published"
                )
            if reopen:
                for table in ("payouts", "payout_lines"):
                    con.execute(
                        f"create table if not exists settlement.reopened_{table} as "
                        f"select *, cast(null as varchar) as reopened_by_run_id from settlement.{table} where 1 = 0"
                    )
                    con.execute(
                        f"insert into settlement.reopened_{table} select *, ? from settlement.{table} "
                        f"where settlement_month = ?",
                        [run_id, month],
                    )
                for table, (col, _) in PUBLISHED_TABLES.items():
                    con.execute(f"delete from settlement.{table} where {col} = ?", [month])
                con.execute(
                    "update settlement.settlement_runs set status = 'reopened', reopened_by_run_id = ? "
                    "where settlement_month = ? and status = 'published'",
                    [run_id, month],
                )
            counts = {}
            for table in PUBLISHED_TABLES:
                con.execute(
                    f"insert into settlement.{table} by name select * from settlement_build.{table}"
                )
                counts[table] = con.execute(
                    f"select count(*) from settlement_build.{table}"
                ).fetchone()[0]
            record_run(
                con, {**run_row, **build_totals(con), "run_id": run_id, "status": "published"}
            )
            fault_point("publish_before_commit")
            con.execute("commit")
        except BaseException as exc:
            try:
                con.execute("rollback")
            except duckdb.Error:
                # DuckDB already aborted the transaction (a commit that failed, e.g. on a
                # full disk, rolls back by itself): the first exception is the cause
                pass
            if isinstance(exc, duckdb.Error):
                raise PublishError(
                    f"publishing {month} failed, nothing was published: {exc}"
                ) from exc
            raise
    fault_point("publish_after_commit")
    sync_parquet(warehouse)
    return counts


def partition_dir(warehouse: Path, table: str, month: str) -> Path:
    """<warehouse>/parquet/settlement/<table>/<month column>=<month>/"""
    col, _ = PUBLISHED_TABLES[table]
    return Path(warehouse) / "parquet" / "settlement" / table / f"{col}={month}"


def staging_root(warehouse: Path) -> Path:
    """Where publish stages partitions and sets replaced ones aside: `<warehouse>/tmp/publish/`,
    outside parquet/ (apart from the gate's `<warehouse>/tmp/gated/`). Not in a table folder,
    nor anywhere under parquet/: DuckDB's globs match `_`- and `.`-prefixed folders, so a
    staged folder in a table folder failed every BI query ("Hive partition mismatch"), and
    one in `parquet/settlement/_staging/` was read by `parquet/settlement/**/*.parquet`
    (a half-written month; old and new partitions side by side during a swap; a killed
    run's leftovers until the next run cleaned them)."""
    return Path(warehouse) / "tmp" / "publish"


def staging_dir(warehouse: Path, table: str) -> Path:
    """Where `table`'s partition is written before its swap and its replaced one set aside."""
    return staging_root(warehouse) / table


def device(path: Path) -> int:
    """The filesystem `path` is (or, not created yet, will be) on: its nearest existing
    folder's."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.stat().st_dev


def check_same_disk(warehouse: Path) -> None:
    """A partition is swapped in by rename, so its staging folder and the table folders
    must be on one filesystem: refuse (before anything is published) when `<warehouse>/tmp`
    is on another disk than `<warehouse>/parquet` (e.g. a symlink to scratch space)."""
    staging = staging_root(warehouse)
    tables = Path(warehouse) / "parquet" / "settlement"
    if device(staging) != device(tables):
        raise PublishError(
            f"{staging} and {tables} are on different filesystems: a partition is swapped in "
            "by rename, so <warehouse>/tmp must be on the disk of <warehouse>/parquet; "
            "nothing published"
        )


def _marker(warehouse: Path, table: str, month: str) -> Path:
    """The commit marker of a partition: beside the tables, never inside a table folder."""
    return Path(warehouse) / "parquet" / "settlement" / "_commits" / table / month


def _write_partition(con, warehouse: Path, table: str, month: str, run_id: str) -> None:
    col, order = PUBLISHED_TABLES[table]
    if not settings.MONTH_RE.match(month):
        raise PublishError(f"not a month: {month!r}")
    from supernova import gated_ledger  # (pandas: only when writing)

    # the partition the gate already wrote and validated for this run, when it is still
    # exactly what the query below gives (supernova/gated_ledger.py): swapped in as is
    gated = gated_ledger.take(con, warehouse, table, month, run_id)
    if gated is not None:
        partition_dir(warehouse, table, month).parent.mkdir(parents=True, exist_ok=True)
        commit_partition(warehouse, table, month, gated, run_id)
        return
    target = partition_dir(warehouse, table, month)
    check_same_disk(warehouse)
    tmp = staging_dir(warehouse, table) / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # DuckDB's own writer: streams (memory does not grow with the month: the whole table
    # as Arrow was 1.5 GB at today's scale), writes on every core, and gives the same bytes
    # for the same sorted rows whatever the thread count (checked in tests)
    out = str(tmp / "part-0.parquet").replace("'", "''")
    con.execute(
        f"copy (select * exclude ({col}) from settlement.{table} where {col} = '{month}' order by {order}) "
        f"to '{out}' (format parquet, compression zstd)"
    )
    commit_partition(warehouse, table, month, tmp, run_id)


def commit_partition(warehouse: Path, table: str, month: str, staged: Path, run_id: str) -> None:
    """Swap a fully written partition folder (`staged`: under staging_dir, or the gate's
    under <warehouse>/tmp/gated/, both on parquet/'s disk) in for the month's
    partition (supernova/swap.py: its file replaced in place, so a BI view never finds the
    month missing), then write its commit marker naming the run. Whichever
    engine wrote the files (DuckDB here, Spark's executors in spark_publish), a reader
    trusts a partition only while its marker exists: it is removed before the swap and
    written last, atomically (temporary file + rename)."""
    target = partition_dir(warehouse, table, month)
    old = staging_dir(warehouse, table) / f".old-{target.name}-{os.getpid()}"
    old.parent.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = _marker(warehouse, table, month)
    marker.unlink(missing_ok=True)  # the partition is changing: uncommitted until it is back
    swap_in(staged, target, old)  # the file replaced in place: never a missing partition
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker_tmp = marker.with_name(f".tmp-{month}-{os.getpid()}")
    marker_tmp.write_text(run_id + "\n")
    os.replace(marker_tmp, marker)


def _partition_run_id(warehouse: Path, table: str, month: str) -> str | None:
    marker = _marker(warehouse, table, month)
    if (
        not marker.exists()
        or not (partition_dir(warehouse, table, month) / "part-0.parquet").exists()
    ):
        return None
    return marker.read_text().strip()


def swap_leftovers(warehouse: Path) -> list[Path]:
    """What a partition swap killed half-way leaves: staged `.tmp-*` folders and `.old-*`
    ones set aside under staging_root, temporary commit markers; and the same names where
    earlier versions staged (in `parquet/settlement/_staging/<table>/`, in the table
    folders). Both engines' publish remove them before writing (single writer)."""
    base = Path(warehouse) / "parquet" / "settlement"
    root = staging_root(warehouse)
    return (
        list(root.glob("*/.tmp-*"))
        + list(root.glob("*/.old-*"))
        + list(base.glob("_staging/*/.tmp-*"))
        + list(base.glob("_staging/*/.old-*"))
        + list(base.glob("*/.tmp-*"))
        + list(base.glob("*/.old-*"))
        + list(base.glob("_commits/*/.tmp-*"))
    )


def _clean_leftovers(warehouse: Path) -> None:
    """Leftovers of a partition swap killed half-way (swap_leftovers) or of a runs file
    being written, and what earlier layouts left in table folders: `_SUCCESS` files and
    line_terms partitions named settlement_month=."""
    base = Path(warehouse) / "parquet" / "settlement"
    for leftover in (
        swap_leftovers(warehouse)
        + list(base.glob(".tmp-*"))
        + list(staging_root(warehouse).glob(".tmp-*"))
        + list(base.glob("*/*/_SUCCESS"))
    ):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(
            missing_ok=True
        )
    for old in [*(base / "_staging").glob("*"), base / "_staging"]:  # an earlier layout
        if old.is_dir() and not any(old.iterdir()):
            old.rmdir()
    for table, (col, _) in PUBLISHED_TABLES.items():
        if col != "settlement_month":
            for stale in (base / table).glob("settlement_month=*"):
                shutil.rmtree(stale, ignore_errors=True)


def sync_parquet(warehouse: Path) -> list[str]:
    """Make the Parquet copies match the published DuckDB tables (idempotent; repairs a
    publish interrupted after its DuckDB commit), then rewrite the BI catalog. Returns
    what was (re)written."""
    written = []
    base = Path(warehouse) / "parquet" / "settlement"
    if base.exists() or staging_root(warehouse).exists():
        _clean_leftovers(warehouse)
    with connect(warehouse) as con:
        if not table_exists(con, "settlement", "settlement_runs"):
            return written
        months = con.execute(
            "select settlement_month, run_id from settlement.settlement_runs "
            "where status = 'published' order by settlement_month"
        ).fetchall()
        for month, run_id in months:
            for table in PUBLISHED_TABLES:
                if _partition_run_id(warehouse, table, month) != run_id:
                    _write_partition(con, warehouse, table, month, run_id)
                    written.append(f"{table}/{month}")
                    fault_point("publish_mid_parquet")
        from supernova import gated_ledger

        gated_ledger.discard_all(warehouse)  # used, or of a run never published
        runs_dir = Path(warehouse) / "parquet" / "settlement" / "settlement_runs"
        runs_dir.mkdir(parents=True, exist_ok=True)
        arrow = con.sql(
            "select * from settlement.settlement_runs order by started_at, attempt_id"
        ).to_arrow_table()
        check_same_disk(warehouse)  # (the file is moved in by rename)
        tmp = staging_root(warehouse) / f".tmp-settlement_runs.parquet-{os.getpid()}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(arrow, tmp, compression="zstd")
        os.replace(tmp, runs_dir / "settlement_runs.parquet")
    serving.write_catalog(warehouse)
    return written


def checks_json(gate: dict | None) -> str:
    return json.dumps(gate or {}, default=str, ensure_ascii=False)
