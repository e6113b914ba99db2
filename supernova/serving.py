"""The serving layer for BI: one small DuckDB catalog file of views over the Parquet copies.

BI tools never open the working file `<warehouse>/supernova.duckdb` (only one process may
hold it, and the pipeline writes it). They open `<warehouse>/bi/supernova_bi.duckdb`
read-only instead: it holds nothing but views

    settlement.<table>  over <warehouse>/parquet/settlement/<table>/<month column>=YYYY-MM/*.parquet
    settlement.settlement_runs  over <warehouse>/parquet/settlement/settlement_runs/*.parquet
    marts.<table>       over <warehouse>/parquet/marts/<table>/*.parquet

with absolute paths (docs/bi.md). It is rewritten after every publish (and Parquet repair)
and every marts refresh, into a temporary file swapped in by `os.replace`, so a reader
sees the old catalog or the new one. It is written in DuckDB's v1.4.0 storage format:
DuckDB 2 writes version 69 by default, which the 1.x tools most BI drivers ship
(DBeaver, Metabase, ODBC/JDBC) cannot open.
"""

from __future__ import annotations

import os
from pathlib import Path

CATALOG_DIR = "bi"
CATALOG_FILE = "supernova_bi.duckdb"
STORAGE_VERSION = "v1.4.0"


def catalog_path(warehouse: Path | str) -> Path:
    return Path(warehouse) / CATALOG_DIR / CATALOG_FILE


def _lit(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _has_parquet(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and any(folder.glob(pattern))


def views_sql(warehouse: Path | str) -> list[str]:
    """The catalog's statements: one view per table whose Parquet copy exists."""
    from supernova.tables import MART_TABLES, PUBLISHED_TABLES

    base = Path(warehouse).resolve() / "parquet"
    stmts = ["create schema if not exists settlement", "create schema if not exists marts"]
    for table, (month_col, _) in PUBLISHED_TABLES.items():
        folder = base / "settlement" / table
        if _has_parquet(folder, f"{month_col}=*/*.parquet"):
            # the month is the Hive partition: read back as text, first, as in the DuckDB table
            src = (
                f"read_parquet({_lit(folder / '*' / '*.parquet')}, hive_partitioning = true, "
                f"hive_types = {{'{month_col}': varchar}})"
            )
            stmts.append(
                f"create view settlement.{table} as select {month_col}, * exclude ({month_col}) from {src}"
            )
    runs = base / "settlement" / "settlement_runs"
    if _has_parquet(runs, "*.parquet"):
        stmts.append(
            f"create view settlement.settlement_runs as "
            f"select * from read_parquet({_lit(runs / '*.parquet')})"
        )
    for table in MART_TABLES:
        folder = base / "marts" / table
        if _has_parquet(folder, "*.parquet"):
            stmts.append(
                f"create view marts.{table} as select * from read_parquet({_lit(folder / '*.parquet')})"
            )
    return stmts


def write_catalog(warehouse: Path | str) -> Path:
    """(Re)write the BI catalog file atomically; returns its path."""
    import duckdb

    warehouse = Path(warehouse).resolve()
    target = catalog_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{CATALOG_FILE}-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"attach {_lit(tmp)} as bi (storage_version '{STORAGE_VERSION}')")
        con.execute("use bi")
        for stmt in views_sql(warehouse):
            con.execute(stmt)
        con.execute("use memory")
        con.execute("detach bi")
    finally:
        con.close()
    os.replace(tmp, target)
    # the marts-only views file of earlier versions is folded into this one
    (warehouse / "parquet" / "marts" / "marts_views.duckdb").unlink(missing_ok=True)
    return target
