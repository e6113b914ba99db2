"""The raw layer in DuckDB: schema `raw`, `raw.manifest`, `raw.quarantine` and one view
per export over exactly the committed Parquet files (see docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from supernova import settings
from supernova.contract import EXPORTS, LINEAGE_COLUMNS, RAW_SQL_TYPES

from .validate import ident, lit

MANIFEST_COLUMNS = (
    ("file_path", "VARCHAR"),  # relative to the landing root (posix separators)
    ("export", "VARCHAR"),
    ("delivery_date", "DATE"),
    ("file_name", "VARCHAR"),
    ("sha256", "VARCHAR"),
    ("size_bytes", "BIGINT"),
    ("encoding", "VARCHAR"),  # utf-8 | utf-8-sig | gb18030 | NULL (parquet, rejected)
    ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("status", "VARCHAR"),  # loaded | rejected | duplicate
    ("reason", "VARCHAR"),
    ("extra_columns", "VARCHAR[]"),
    ("ingest_run_id", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),  # naive Asia/Shanghai local time
)

QUARANTINE_COLUMNS = (
    ("export", "VARCHAR"),
    ("file_path", "VARCHAR"),
    ("sha256", "VARCHAR"),
    ("line_no", "BIGINT"),
    ("raw_row", "VARCHAR"),  # JSON text, personal data replaced by "<redacted>"
    ("reason", "VARCHAR"),
    ("ingest_run_id", "VARCHAR"),
    ("quarantined_at", "TIMESTAMP"),
)


def _ddl(table: str, cols) -> str:
    body = ", ".join(f"{n} {t}" for n, t in cols)
    return f"CREATE TABLE IF NOT EXISTS raw.{table} ({body})"


def parquet_path(warehouse: Path, export: str, delivery_date: str, sha256: str) -> Path:
    return Path(warehouse) / "raw" / export / f"delivery_date={delivery_date}" / f"{sha256}.parquet"


def view_sql(export_name: str, files: list[Path]) -> str:
    export = EXPORTS[export_name]
    cols = [(c.name, RAW_SQL_TYPES[c.type]) for c in export.stored_columns] + list(LINEAGE_COLUMNS)
    if files:
        sel = ", ".join(f"CAST({ident(n)} AS {t}) AS {ident(n)}" for n, t in cols)
        lst = ", ".join(lit(str(p)) for p in files)
        src = f"read_parquet([{lst}], union_by_name = true, hive_partitioning = false)"
        return f"CREATE OR REPLACE VIEW raw.{ident(export_name)} AS SELECT {sel} FROM {src}"
    sel = ", ".join(f"CAST(NULL AS {t}) AS {ident(n)}" for n, t in cols)
    return f"CREATE OR REPLACE VIEW raw.{ident(export_name)} AS SELECT {sel} WHERE false"


def loaded_files(con: duckdb.DuckDBPyConnection, warehouse: Path, export: str) -> list[Path]:
    rows = con.execute(
        "SELECT CAST(delivery_date AS VARCHAR), sha256 FROM raw.manifest "
        "WHERE export = ? AND status = 'loaded' ORDER BY delivery_date, file_path",
        [export],
    ).fetchall()
    return [parquet_path(warehouse, export, d, s) for d, s in rows]


class RawFileMissing(duckdb.IOException):
    """A loaded raw Parquet file is gone from the warehouse (disk cleanup, bad restore)."""


def refresh_view(con: duckdb.DuckDBPyConnection, warehouse: Path, export: str) -> None:
    files = loaded_files(con, warehouse, export)
    missing = [p for p in files if not p.exists()]
    if missing:
        sha = missing[0].stem
        raise RawFileMissing(
            f"{len(missing)} loaded raw file(s) of export '{export}' are missing from the warehouse, "
            f"e.g. {missing[0]} (landing file with sha256 {sha}). Nothing was dropped: restore the "
            "file(s) from backup; or, if the landing file is still there, delete its row from "
            f"raw.manifest (where sha256 = '{sha}') and run ingest again to reload it."
        )
    con.execute(view_sql(export, files))


def create_objects(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    """Idempotent: schema, tables, and every view rebuilt from the manifest (so the views
    point at this warehouse path even if the directory was moved)."""
    con.execute("BEGIN")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(_ddl("manifest", MANIFEST_COLUMNS))
        con.execute(_ddl("quarantine", QUARANTINE_COLUMNS))
        for name in EXPORTS:
            refresh_view(con, warehouse, name)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def ensure_raw_schema(warehouse: Path | str) -> Path:
    """Create schema `raw`, its tables and the nine views when missing (typed, zero rows
    before the first file). Returns the DuckDB file path."""
    warehouse = Path(warehouse).resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    db = settings.duckdb_path(warehouse)
    con = duckdb.connect(str(db))
    try:
        create_objects(con, warehouse)
    finally:
        con.close()
    return db
