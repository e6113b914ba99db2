"""Ingestion writes its manifest as Parquet next to the raw files
(`<raw>/_manifest/manifest.parquet`, ingestion/manifest_export.py), so an engine that does
not open the DuckDB file (Spark, docs/spark.md) reads exactly the committed files."""

from __future__ import annotations

import duckdb
from ingestion_cases.helpers import csv_text, query, row, write

from ingestion import ingest
from ingestion.manifest_export import manifest_parquet_path
from ingestion.raw_files import cleanup_orphans

COLUMNS = (
    "file_path, export, cast(delivery_date as varchar), sha256, rows_loaded, status, ingest_run_id"
)


def _parquet_manifest(wh):
    path = manifest_parquet_path(wh / "raw")
    con = duckdb.connect()
    try:
        return con.execute(
            f"select {COLUMNS} from read_parquet('{path}') order by file_path, sha256"
        ).fetchall()
    finally:
        con.close()


def _duckdb_manifest(wh):
    return query(wh, f"select {COLUMNS} from raw.manifest order by file_path, sha256")


def test_every_run_leaves_the_parquet_manifest_equal_to_the_duckdb_one(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write(landing, "orders", "part-1.csv", csv_text([row("orders", order_id="O1")]))
    ingest(landing, wh)
    first = _parquet_manifest(wh)
    assert len(first) == 1 and first == _duckdb_manifest(wh)

    # the clean-up of uncommitted Parquet (start of every run) does not take it for one
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        assert cleanup_orphans(con, wh) == []
    finally:
        con.close()
    ingest(landing, wh)
    assert manifest_parquet_path(wh / "raw").exists()
    assert _parquet_manifest(wh) == first

    # a new file and a file changed in place (its earlier load superseded)
    write(landing, "clicks", "c.csv", csv_text([row("clicks")]), day="2026-10-02")
    write(landing, "orders", "part-1.csv", csv_text([row("orders", order_id="O2")]))
    ingest(landing, wh)
    now = _parquet_manifest(wh)
    assert now == _duckdb_manifest(wh)
    assert sorted(r[5] for r in now) == ["loaded", "loaded", "superseded"]
    assert not [
        p for p in manifest_parquet_path(wh / "raw").parent.iterdir() if p.name.startswith(".tmp-")
    ]
