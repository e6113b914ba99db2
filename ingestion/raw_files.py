"""The raw Parquet files on disk: a renamed file made durable (`fsync_dir`), and the
clean-up, at the start of every run, of files no committed manifest row references
(leftovers of a crash between writing a file and committing its manifest row)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .manifest_export import MANIFEST_DIR
from .schema import parquet_path


def cleanup_orphans(con: duckdb.DuckDBPyConnection, warehouse: Path) -> list[Path]:
    raw = warehouse / "raw"
    if not raw.exists():
        return []
    keep = {
        parquet_path(warehouse, e, d, s).resolve()
        for e, d, s in con.execute(
            "SELECT export, CAST(delivery_date AS VARCHAR), sha256 FROM raw.manifest "
            "WHERE status IN ('loaded', 'superseded') AND export IS NOT NULL"
        ).fetchall()
    }
    removed = []
    for root, dirs, files in os.walk(raw):
        if Path(root) == raw:
            dirs[:] = [d for d in dirs if d != MANIFEST_DIR]  # the Parquet manifest is not a load
        for f in files:
            p = (Path(root) / f).resolve()
            if p not in keep:
                p.unlink()
                removed.append(p)
    return removed


def fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
