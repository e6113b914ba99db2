"""Analytics marts (schema `marts`): refresh them and write their Parquet copies.

Steps, each a plain function so the Airflow DAG (dags/analytics_marts.py) stays thin and
every step can be tested without a scheduler:

    ingest (new export files) → build (one `dbt build` of the marts and what they need)
    → parquet (one atomic copy per mart under <warehouse>/parquet/marts/<table>/, then the
      BI catalog <warehouse>/bi/supernova_bi.duckdb rewritten: supernova.serving)

Only one process may open the warehouse DuckDB file, so the steps run one after another
and each holds the warehouse run lock (supernova.lock) while it touches the file: a
settlement run in progress makes a marts step fail clearly instead of colliding.

The incremental marts recompute only the days new deliveries can change
(dbt_project/macros/marts_incremental.sql); `full_refresh=True` rebuilds them from
scratch, which gives the same rows (tests/test_marts_incremental.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from supernova import lock, settings
from supernova.dbt_runner import dbt_invoke, failures
from supernova.swap import swap_in
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


def build_step(warehouse: Path, full_refresh: bool = False, log=print) -> dict:
    """One dbt invocation: `dbt build` of the marts and their upstream models + tests."""
    from supernova import staging

    t0 = time.perf_counter()
    with lock.held(warehouse, "marts-build", log):
        # the marts' upstream includes the incremental staging models (macros/staging.sql)
        # the code as of now, before anything is decided from it: a file edited after this
        # point makes the record differ from the code, so the next build rebuilds (safe)
        built_code = staging.code_fingerprint()
        # a full refresh rebuilds all of staging (buyers included), not only the marts' parents
        extra = (
            ["--full-refresh", *staging.ALL_OF_STAGING]
            if full_refresh
            else staging.invocation_args(warehouse, log)
        )
        full_refresh = "--full-refresh" in extra
        args = ["build", *DBT_SELECT, *extra]
        res = dbt_invoke(warehouse, args)
        if res.success:
            staging.record_built(warehouse, built_code)
    seconds = round(time.perf_counter() - t0, 1)
    if not res.success:
        problems = [f.line() for f in failures(res) if not f.skipped] or [
            "dbt build failed (see <warehouse>/dbt/logs/dbt.log)"
        ]
        raise MartsFailed("marts build failed:\n  " + "\n  ".join(problems))
    log(f"dbt build of the marts OK in {seconds}s (full_refresh={full_refresh})")
    return {"dbt_seconds": seconds, "full_refresh": full_refresh}


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


def _write_table(con, warehouse: Path, table: str) -> int:
    """Write marts.<table> to <warehouse>/parquet/marts/<table>/ atomically: into a
    temporary folder under staging_root, then swapped in (supernova/swap.py: a reader sees
    the old copy or the new, never none)."""
    base = Path(warehouse) / "parquet" / "marts"
    target = base / table
    staging = _staging(warehouse)
    tmp = staging / f".tmp-{table}-{os.getpid()}"
    old = staging / f".old-{table}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cur = con.cursor()  # a fresh cursor: no unfinished result of an earlier execute() in the way
    try:
        arrow = cur.sql(
            f"select * from marts.{table} order by {MART_TABLES[table]}"
        ).to_arrow_table()
    finally:
        cur.close()
    # nothing but Parquet in a table folder: polars and read_parquet('<table>/*') read it whole
    pq.write_table(arrow, tmp / "part-0.parquet", compression="zstd", write_statistics=True)
    swap_in(tmp, target, old)  # the file replaced in place: never a missing mart
    return arrow.num_rows


def parquet_step(warehouse: Path, log=print) -> dict:
    """Parquet copies of every mart; returns {table: rows}."""
    base = Path(warehouse) / "parquet" / "marts"
    staging = staging_root(warehouse)
    rows = {}
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
            rows[table] = _write_table(con, warehouse, table)
    from supernova import serving

    catalog = serving.write_catalog(warehouse)
    log(f"Parquet copies written under {base}; BI catalog {catalog}")
    return {"parquet_dir": str(base), "catalog_file": str(catalog), "rows": rows}


def refresh(
    landing: Path | str | None = None,
    warehouse: Path | str | None = None,
    full_refresh: bool = False,
    ingest: bool = True,
    log=print,
) -> dict:
    """All steps in this process (what the DAG does, without Airflow)."""
    landing, warehouse = resolve({"landing": landing, "warehouse": warehouse})
    out = {"landing": str(landing), "warehouse": str(warehouse)}
    if ingest:
        out["ingest"] = ingest_step(landing, warehouse, log)
    out["build"] = build_step(warehouse, full_refresh, log)
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
