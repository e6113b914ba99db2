"""Opening the warehouse DuckDB file, with the errors a person can act on."""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

from supernova import settings


class WarehouseLocked(RuntimeError):
    pass


@contextlib.contextmanager
def connect(warehouse: Path, read_only: bool = False):
    """One connection to <warehouse>/supernova.duckdb, closed on exit. DuckDB lets only
    one process open the file; a conflict becomes a clear error instead of a raw one."""
    path = settings.duckdb_path(Path(warehouse))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseLocked(
                f"the warehouse file {path} is open in another process (only one process may "
                f"open a DuckDB file at a time): close BI tools or other runs and retry. ({exc})"
            ) from exc
        raise
    try:
        con.execute("set timezone = 'Asia/Shanghai'")
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit()}'")
        yield con
    finally:
        con.close()


def table_exists(con, schema: str, table: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()[0])
