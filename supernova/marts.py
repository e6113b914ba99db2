"""Analytics marts (schema `marts`): refresh them and write their Parquet copies.

Steps, each a plain function so the Airflow DAG (dags/analytics_marts.py) stays thin and
every step can be tested without a scheduler:

    ingest (new export files) → build (one `dbt build` of the marts and what they need)
    → parquet (a copy per mart under <warehouse>/parquet/marts/<table>/, one file per
      month, or per day for the two largest marts, only the files whose rows changed
      rewritten, each atomically; then the
      BI catalog <warehouse>/bi/supernova_bi.duckdb rewritten: supernova.serving)

Only one process may open the warehouse DuckDB file, so the steps run one after another
and each holds the warehouse run lock (supernova.lock) while it touches the file: a
settlement run in progress makes a marts step fail clearly instead of colliding.

The incremental marts recompute only the days new deliveries can change
(dbt_project/macros/marts_incremental.sql); `full_refresh=True` rebuilds them from
scratch, which gives the same rows (tests/test_marts_late_files.py, tests/test_marts.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from supernova import lock, settings
from supernova.dbt_runner import dbt_invoke, failures
from supernova.swap import PART, swap_in
from supernova.tables import MART_TABLES
from supernova.warehouse import connect, table_exists, wait_until_free

# The dbt selection of one marts refresh: the marts and everything upstream of them
# (staging, intermediate/marts). Unit tests run in pytest, not in the daily refresh.
DBT_SELECT = ["--select", "+path:models/marts", "--exclude-resource-type", "unit_test"]


class MartsFailed(RuntimeError):
    """A marts step failed (ingest rejected a file, dbt failed, a copy could not be written)."""


def resolve(params: dict) -> tuple[Path, Path]:
    """(landing, warehouse) from DAG params or CLI arguments, defaults filled in, absolute."""
    landing = Path(params.get("landing") or settings.default_landing()).expanduser().resolve()
    warehouse = Path(params.get("warehouse") or settings.default_warehouse()).expanduser().resolve()
    return landing, warehouse


_resolve = resolve  # the name analytics_marts.py used before `resolve` was public


# ---------------------------------------------------------------- steps


def ingest_step(landing: Path, warehouse: Path, log=print) -> dict:
    """Load new export files (idempotent). Raises MartsFailed when a file was rejected:
    the marts are not refreshed on top of a delivery that did not load."""
    from ingestion import ingest

    with lock.held(warehouse, "marts-ingest", log):
        wait_until_free(warehouse)  # ingestion opens the file itself: wait for a reader holding it
        result = ingest(landing, warehouse, progress=log)
    log(result.summary())
    if not result.ok:
        raise MartsFailed(result.summary())
    return {"files_loaded": len(result.by_status("loaded")), "rows_loaded": result.rows_loaded}


def build_step(
    warehouse: Path, full_refresh: bool = False, log=print, verify_all: bool = False
) -> dict:
    """One dbt invocation: `dbt build` of the marts and their upstream models + tests.
    An incremental mart's data tests check the rows written since they last all passed
    (macros/marts_tests_window.sql), staging's likewise (macros/staging_tests_window.sql);
    `verify_all` makes both check every row, staging built even when verified current."""
    from supernova import staging

    t0 = time.perf_counter()
    with lock.held(warehouse, "marts-build", log):
        # the marts' upstream includes the incremental staging models (macros/staging.sql);
        # a full refresh rebuilds all of staging (buyers included), not only the marts' parents
        staging_build = staging.plan_build(
            warehouse, log, full_refresh=full_refresh, verify_all=verify_all
        )
        full_refresh = staging_build.full_refresh
        dbt_vars = {**staging_build.vars, **({"marts_verify_all": True} if verify_all else {})}
        res = dbt_invoke(
            warehouse,
            ["build", *DBT_SELECT, *staging_build.args, *build_threads()],
            dbt_vars or None,
        )
        if res.success:
            staging_build.record(warehouse)
    seconds = round(time.perf_counter() - t0, 1)
    if not res.success:
        problems = [f.line() for f in failures(res) if not f.skipped] or [
            "dbt build failed (see <warehouse>/dbt/logs/dbt.log)"
        ]
        raise MartsFailed(
            "marts build failed:\n  " + "\n  ".join(problems) + out_of_memory_advice(problems)
        )
    log(
        f"dbt build of the marts OK in {seconds}s (full_refresh={full_refresh}, "
        f"verify_all={verify_all})"
    )
    return {"dbt_seconds": seconds, "full_refresh": full_refresh, "verify_all": verify_all}


def out_of_memory_advice(problems: list[str]) -> str:
    """What to do when DuckDB ran out of its memory limit in the marts build ("" otherwise):
    at `target3x` a first build or full refresh of `promoter_category_affinity` does not fit
    in the default 6 GB (docs/marts.md, "Memory and disk for a full build")."""
    if not any("Out of Memory Error" in p for p in problems):
        return ""
    return (
        "\n  what to do: DuckDB ran out of its memory limit (SUPERNOVA_DUCKDB_MEMORY_LIMIT="
        f"{settings.duckdb_memory_limit()}). A first build or --full-refresh of the marts at "
        "target size needs more than a day's refresh: run it once with a higher limit (10GB at "
        "the benchmark's `target3x` volume, docs/benchmarks.md) and about 40 GB free beside "
        "the warehouse for DuckDB's temporary files (docs/marts.md, 'Memory and disk for a "
        "full build'). The Parquet copies BI reads were not replaced; the daily refreshes then "
        "fit in the default again."
    )


def build_threads() -> list[str]:
    """dbt's threads for a marts build: one model at a time unless SUPERNOVA_DBT_THREADS
    says otherwise (docs/benchmarks.md, eleventh round). At `target3x` the day's refresh
    with two ran out of DuckDB's 6 GB (the affinity's key test and `group_status` beside
    the affinity and the earnings mart, which share the one memory limit); with one it
    took 270 s and fitted. Built whole, the two largest marts side by side spilled past
    37 GB of temporary files; one after the other each has the whole limit and frees its
    files before the next. At `today` one thread gave the same wall time as two with less
    CPU and memory (eighth round): DuckDB already uses both cores inside each model."""
    return [] if os.environ.get("SUPERNOVA_DBT_THREADS") else ["--threads", "1"]


def staging_root(warehouse: Path) -> Path:
    """Where a mart's copy is written before its swap and the replaced one set aside:
    `<warehouse>/tmp/marts/`, outside parquet/ (DuckDB's `parquet/**/*.parquet`, and even
    `parquet/marts/*/*.parquet`, match `.`-prefixed folders: a copy being written, or the
    old one set aside beside the new, would be read), apart from publish's tmp/publish/."""
    return Path(warehouse) / "tmp" / "marts"


def _staging(warehouse: Path) -> Path:
    """staging_root, created, on parquet/marts' disk (the swap is a rename)."""
    staging, base = staging_root(warehouse), Path(warehouse) / "parquet" / "marts"
    for folder in (staging, base):
        folder.mkdir(parents=True, exist_ok=True)
    if staging.stat().st_dev != base.stat().st_dev:
        raise MartsFailed(
            f"{staging} and {base} are on different filesystems: a copy is swapped in by "
            "rename, so <warehouse>/tmp must be on the disk of <warehouse>/parquet"
        )
    return staging


# A mart's copy is one Parquet file per Shanghai month of its date column,
# `<table>/part-YYYY-MM.parquet`, or per day (`part-YYYY-MM-DD.parquet`) for the marts
# with a row per day and group or promoter (DAILY_COPIES), each file carrying the
# fingerprint of the rows it holds: a refresh rewrites only the files whose rows changed
# (a day's refresh touches one or two months, or a day or a few; the copy of every month
# was rewritten each day before, ≈ 67 s at `today`).
FINGERPRINT_KEY = b"supernova.rows_fingerprint"
# the affinity holds ≈ 3.9M rows a day at `target3x` and group_status ≈ 1.3M: in month
# files a day's refresh rewrote the whole month so far (27.3M affinity rows on 11-07, ≈ 117M
# by the month's end); in day files it writes the day (docs/bi.md "The Parquet copies")
DAILY_COPIES = frozenset({"group_status", "promoter_category_affinity"})
_PART_FILE = {
    "month": re.compile(r"^part-(\d{4}-\d{2})\.parquet$"),
    "day": re.compile(r"^part-(\d{4}-\d{2}-\d{2})\.parquet$"),
}
# the copy of a mart without rows (and the layout before months): swap.PART, the one name
# swap_in replaces in place
EMPTY_COPY = PART


def split_column(table: str) -> str:
    """The date column a mart's copy is split by: the first of its sort columns (a DATE in
    every mart: tests/test_marts.py checks it)."""
    return MART_TABLES[table].split(",")[0].strip()


def copy_period(table: str) -> str:
    """'day' or 'month': what one file of the mart's copy holds."""
    return "day" if table in DAILY_COPIES else "month"


def _period_of(table: str) -> str:
    """The SQL expression of a row's file period (a DATE: the day, or the month's first)."""
    col = split_column(table)
    return col if copy_period(table) == "day" else f"cast(date_trunc('month', {col}) as date)"


def _part_fingerprints(cur, table: str) -> dict[str | None, tuple[int, str]]:
    """{'YYYY-MM' or 'YYYY-MM-DD': (rows, fingerprint)} of marts.<table> as it is now, one
    per file of its copy ({None: ...} when it has no rows). The fingerprint is the table's
    columns and types, the file's row count and the sum of DuckDB's 64-bit hash of every
    row: equal fingerprints mean the same rows, except for a hash collision (about 2^-64
    per changed file; a DuckDB whose hash differs rewrites every file once)."""
    columns = cur.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    key_format = "%Y-%m-%d" if copy_period(table) == "day" else "%Y-%m"
    out = {}
    for period, rows, hash_sum in cur.execute(
        f"select {_period_of(table)} as period, count(*), sum(hash(t)) "
        f"from marts.{table} as t group by 1"
    ).fetchall():
        if period is None:
            raise MartsFailed(
                f"marts.{table} has rows without a {split_column(table)}: no file to copy them to"
            )
        text = f"v1|{columns}|{rows}|{hash_sum}"
        out[period.strftime(key_format)] = (rows, hashlib.sha256(text.encode()).hexdigest())
    if not out:  # no rows: one empty file (EMPTY_COPY) keeps the columns for readers
        out[None] = (0, hashlib.sha256(f"v1|{columns}|0|0".encode()).hexdigest())
    return out


def _copied_fingerprint(path: Path) -> str | None:
    """The fingerprint a copy's file was written with (None: unreadable, or not ours)."""
    try:
        meta = pq.read_metadata(path).metadata or {}
    except (OSError, ValueError, pa.ArrowException):
        return None
    value = meta.get(FINGERPRINT_KEY)
    return value.decode() if value else None


def _write_part(cur, table: str, period: str | None, path: Path, fingerprint: str) -> None:
    """One file of marts.<table>'s copy: the rows of `period` ('YYYY-MM' or 'YYYY-MM-DD',
    copy_period; all of them when None) as the Parquet file `path`, sorted by the table's
    sort columns, with the rows' fingerprint in its metadata. Written by DuckDB itself,
    streamed within its memory limit: read into Arrow first, a month of the affinity at
    `target3x` took the step to 8.6 GB, a first build's October to 18.7 GB
    (docs/benchmarks.md, eleventh round)."""
    # period: from the table's own dates
    first_day = period if period and len(period) == 10 else f"{period or '0001-01'}-01"
    cur.execute(
        f"copy (select * from marts.{table} as t "
        f"where {_period_of(table)} = date '{first_day}' "
        f"order by {MART_TABLES[table]}) "
        f"to '{str(path).replace(chr(39), chr(39) * 2)}' (format parquet, compression zstd, "
        f"kv_metadata {{'{FINGERPRINT_KEY.decode()}': '{fingerprint}'}})"
    )


def _write_table(con, warehouse: Path, table: str) -> tuple[int, list[str]]:
    """Bring <warehouse>/parquet/marts/<table>/ in line with marts.<table>; returns (rows,
    periods written: the months or days, copy_period). Only the files whose fingerprint
    differs from their rows' are written, into a temporary folder under staging_root, then
    each replaces its file with one rename (a reader sees a file's old version or its new
    one, never none); files of periods without rows any more are removed last. A folder in
    another layout (the single `part-0.parquet` of earlier versions, month files of a mart
    now copied by day, anything else) is replaced whole: the new folder (unchanged files
    hard-linked in) swapped in by supernova/swap.py, so a reader never sees the old and the
    new files side by side."""
    base = Path(warehouse) / "parquet" / "marts"
    target = base / table
    staging = _staging(warehouse)
    tmp = staging / f".tmp-{table}-{os.getpid()}"
    old = staging / f".old-{table}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cur = con.cursor()  # a fresh cursor: no unfinished result of an earlier execute() in the way
    try:
        wanted = {
            (f"part-{period}.parquet" if period else EMPTY_COPY): (period, rows, fp)
            for period, (rows, fp) in _part_fingerprints(cur, table).items()
        }
        present = {p.name: p for p in target.iterdir()} if target.is_dir() else {}
        changed = sorted(
            name
            for name, (_, _, fp) in wanted.items()
            if name not in present or _copied_fingerprint(present[name]) != fp
        )
        for name in changed:
            period, _, fp = wanted[name]
            # nothing but Parquet in a table folder: polars and read_parquet('<table>/*')
            # read it whole
            _write_part(cur, table, period, tmp / name, fp)
    finally:
        cur.close()
    gone = [name for name in present if name not in wanted]
    part_file = _PART_FILE[copy_period(table)]
    if not target.is_dir() or any(not part_file.match(name) for name in gone):
        for name in wanted.keys() - set(changed):
            os.link(present[name], tmp / name)  # unchanged: the same file, not a copy
        swap_in(tmp, target, old)
    else:
        for name in changed:
            os.replace(tmp / name, target / name)
        for name in gone:
            (target / name).unlink()
        tmp.rmdir()
    return sum(rows for _, rows, _ in wanted.values()), [wanted[n][0] or "empty" for n in changed]


def parquet_step(warehouse: Path, log=print) -> dict:
    """Parquet copies of every mart (only the files whose rows changed are written);
    returns {"rows": {table: rows}, "periods_written": {table: ['YYYY-MM' or
    'YYYY-MM-DD', ...]}, ...}: the months, or the days of a mart copied by day."""
    base = Path(warehouse) / "parquet" / "marts"
    staging = staging_root(warehouse)
    rows, periods_written = {}, {}
    with lock.held(warehouse, "marts-parquet", log), connect(warehouse) as con:
        # leftovers of a swap killed half-way (in parquet/marts/ itself: earlier versions);
        # under the lock, so never another step's copy being written
        for leftover in (
            list(staging.glob(".tmp-*"))
            + list(staging.glob(".old-*"))
            + list(base.glob(".tmp-*"))
            + list(base.glob(".old-*"))
            + list(base.glob("*/_SUCCESS"))
        ):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(
                missing_ok=True
            )
        missing = [t for t in MART_TABLES if not table_exists(con, "marts", t)]
        if missing:
            raise MartsFailed(
                f"marts missing in the warehouse (build them first): {', '.join(missing)}"
            )
        for table in MART_TABLES:
            rows[table], periods_written[table] = _write_table(con, warehouse, table)
    from supernova import serving

    catalog = serving.write_catalog(warehouse)
    written = sum(len(m) for m in periods_written.values())
    log(
        f"Parquet copies under {base}: {written} file(s) written, the others unchanged; "
        f"BI catalog {catalog}"
    )
    return {
        "parquet_dir": str(base),
        "catalog_file": str(catalog),
        "rows": rows,
        "periods_written": periods_written,
    }


def refresh(
    landing: Path | str | None = None,
    warehouse: Path | str | None = None,
    full_refresh: bool = False,
    ingest: bool = True,
    log=print,
    verify_all: bool = False,
) -> dict:
    """All steps in this process (what the DAG does, without Airflow)."""
    landing, warehouse = resolve({"landing": landing, "warehouse": warehouse})
    out = {"landing": str(landing), "warehouse": str(warehouse)}
    if ingest:
        out["ingest"] = ingest_step(landing, warehouse, log)
    out["build"] = build_step(warehouse, full_refresh, log, verify_all)
    out.update(parquet_step(warehouse, log))
    return out


def summary(warehouse: Path | str) -> str:
    """Tables, rows and where they are: what `supernova marts` prints."""
    warehouse = Path(warehouse)
    lines = [
        f"marts in {warehouse / 'parquet' / 'marts'}/ (BI: {warehouse / 'bi' / 'supernova_bi.duckdb'}):"
    ]
    with connect(warehouse, read_only=True) as con:
        for table in MART_TABLES:
            if table_exists(con, "marts", table):
                n = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
                lines.append(f"  {table:<30} {n:>10,} rows")
            else:
                lines.append(f"  {table:<30} {'missing':>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def run_marts(
    landing: Path,
    warehouse: Path,
    full_refresh: bool = False,
    verbose: bool = False,
    table: bool = True,
    verify_all: bool = False,
) -> int:
    """Run the analytics_marts DAG in process: one line at the start, the result (and with
    `table`, the table of marts) at the end; Airflow's and dbt's output in <warehouse>/logs/
    (or on the terminal with verbose). Returns an exit code (supernova.cli_support.EXIT_*)."""
    from supernova.airflow_runner import run_dag
    from supernova.cli_support import EXIT_FAILED, EXIT_OK
    from supernova.summary import details_to, log_file

    details = log_file(warehouse, "marts")
    conf = {
        "landing": str(landing),
        "warehouse": str(warehouse),
        "full_refresh": bool(full_refresh),
        "verify_all": bool(verify_all),
    }
    t0 = time.monotonic()
    print(
        f"[supernova] refreshing the marts through the analytics_marts DAG (warehouse {warehouse})"
        + ("" if verbose else f"; details in {details}"),
        flush=True,
    )
    try:
        with details_to(details, verbose=verbose):
            dagrun = run_dag("analytics_marts", conf)
        state = str(getattr(dagrun, "state", "failed"))
    except Exception as exc:  # noqa: BLE001 - the DAG could not even start: say so plainly
        print(f"[supernova] ERROR: the marts refresh could not start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not state.endswith("success"):
        print(
            f"[supernova] marts refresh FAILED (DAG run state {state}); see {details} "
            f"and {warehouse / 'dbt' / 'logs' / 'dbt.log'}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if table:
        print(
            f"[supernova] marts refresh OK in {time.monotonic() - t0:.0f} s; {summary(warehouse)}"
        )
    else:
        print(
            f"[supernova] marts refresh OK in {time.monotonic() - t0:.0f} s: {len(MART_TABLES)} marts in "
            f"{warehouse / 'parquet' / 'marts'}/ (`supernova marts` lists them)"
        )
    return EXIT_OK


def cmd_marts(args) -> int:
    """`supernova marts`: run the analytics_marts DAG in process."""
    from supernova.cli_support import check_busy, check_landing, check_warehouse

    landing = check_landing(args.landing or settings.default_landing())
    warehouse = check_warehouse(args.warehouse or settings.default_warehouse())
    check_busy(warehouse)
    return run_marts(
        landing,
        warehouse,
        full_refresh=bool(getattr(args, "full_refresh", False)),
        verbose=bool(getattr(args, "verbose", False)),
        verify_all=bool(getattr(args, "verify_all", False)),
    )


def add_marts_parser(subparsers) -> argparse.ArgumentParser:
    from supernova.cli_support import add_command, add_paths

    p = add_command(
        subparsers,
        "marts",
        "refresh the analytics marts through the analytics_marts DAG (in process)",
    )
    add_paths(p)
    p.add_argument(
        "--full-refresh", action="store_true", help="rebuild the incremental marts from scratch"
    )
    p.add_argument(
        "--verify-all",
        action="store_true",
        help="run the data tests of the incremental marts and of staging over every row, "
        "not only the rows written since their tests last passed (docs/marts.md)",
    )
    p.set_defaults(func=cmd_marts)
    return p


# ---------------------------------------------------------------- BI example queries

BI_QUERIES_PATH = settings.PROJECT_ROOT / "docs" / "bi_queries.sql"


def bi_queries(path: Path = BI_QUERIES_PATH) -> dict[str, str]:
    """The example BI queries of docs/bi.md, {name: sql}, from docs/bi_queries.sql."""
    queries: dict[str, list[str]] = {}
    current = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("-- name:"):
            current = line.split(":", 1)[1].strip()
            queries[current] = []
        elif current is not None:
            queries[current].append(line)
    return {k: "\n".join(v).strip().rstrip(";") for k, v in queries.items()}


def parquet_views_sql(warehouse: Path | str) -> str:
    """SQL that exposes the Parquet copies as views marts.<table> in any DuckDB session
    (what a BI tool without the warehouse file runs once)."""
    base = Path(warehouse) / "parquet" / "marts"
    stmts = ["create schema if not exists marts"]
    stmts += [
        f"create or replace view marts.{t} as select * from read_parquet('{base / t}/*.parquet')"
        for t in MART_TABLES
    ]
    return ";\n".join(stmts) + ";"
