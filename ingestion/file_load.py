"""One file's bytes → its typed rows in a Parquet file and its rejected rows as quarantine
rows: parse (ingestion/readers.py), validate and type in DuckDB SQL
(ingestion/validate.py), write, and the quarantine table with personal data redacted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa

from supernova.contract import TIMEZONE, Export

from . import readers
from .readers import REDACTED, FileRejected, Parsed
from .validate import lit, validation_sql

_TZ = ZoneInfo(TIMEZONE)


def now_shanghai() -> dt.datetime:
    return dt.datetime.now(_TZ).replace(tzinfo=None)


def parse_file(data: bytes, export: Export, suffix: str) -> Parsed:
    if suffix == ".csv.gz":
        return readers.read_csv(readers.decompress(data), export)
    if suffix == ".csv":
        return readers.read_csv(data, export)
    if suffix == ".jsonl":
        return readers.read_jsonl(data, export)
    if suffix == ".parquet":
        return readers.read_parquet(data, export)
    raise FileRejected(f"unknown file type {suffix}")  # pragma: no cover


def _raw_rows(parsed: Parsed, export: Export, bad_line_nos: np.ndarray) -> list[str]:
    """JSON of the raw (untrimmed) values of the given rows, personal data redacted."""
    if len(bad_line_nos) == 0:
        return []
    lines = parsed.table.column("_line_no").to_numpy()
    idx = np.searchsorted(lines, bad_line_nos)
    sub = parsed.table.take(pa.array(idx))
    cols = {c: sub.column(c).to_pylist() for c in sub.column_names if c != "_line_no"}
    out = []
    for i in range(sub.num_rows):
        row = {}
        for name in parsed.header:
            if export.column(name).pii:
                row[name] = REDACTED
            elif name in cols:
                row[name] = cols[name][i]
        out.append(json.dumps(row, ensure_ascii=False))
    return out


def validate_and_write(
    con: duckdb.DuckDBPyConnection, parsed: Parsed, export: Export, cand, sha, tmp: Path
):
    """Write the valid rows of `parsed` with their lineage to the Parquet file `tmp`;
    return the line numbers and reasons of the rows that failed validation."""
    con.register("src", parsed.table)
    try:
        sql = validation_sql(export, set(parsed.table.column_names))
        con.execute(f"CREATE OR REPLACE TEMP TABLE v AS {sql}")
    finally:
        con.unregister("src")
    cols = ", ".join(f'"{c.name}"' for c in export.stored_columns)
    lineage = (
        f"CAST({lit(cand.delivery_date)} AS DATE) AS _delivery_date, "
        f"{lit(cand.rel)} AS _file_name, {lit(sha)} AS _file_sha256, _line_no"
    )
    con.execute(
        f"COPY (SELECT {cols}, {lineage} FROM v WHERE _reason = '') "
        f"TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
    )
    bad = con.execute(
        "SELECT _line_no, _reason FROM v WHERE _reason <> '' ORDER BY _line_no"
    ).fetchnumpy()
    con.execute("DROP TABLE v")
    return bad["_line_no"], list(bad["_reason"])


def quarantine_table(run_id: str, parsed, export, cand, sha, bad_lines, bad_reasons) -> pa.Table:
    """The quarantine rows of one file: the rows the reader already rejected and the rows
    that failed validation, in line order."""
    rows: list[tuple[int, str, str]] = [
        (b.line_no, json.dumps(b.raw_row, ensure_ascii=False), b.reason) for b in parsed.bad_rows
    ]
    raws = _raw_rows(parsed, export, np.asarray(bad_lines, dtype=np.int64))
    rows += [(int(ln), raw, str(r)) for ln, raw, r in zip(bad_lines, raws, bad_reasons)]
    rows.sort(key=lambda r: r[0])
    now = now_shanghai()
    return pa.table(
        {
            "export": pa.array([cand.export] * len(rows), pa.string()),
            "file_path": pa.array([cand.rel] * len(rows), pa.string()),
            "sha256": pa.array([sha] * len(rows), pa.string()),
            "line_no": pa.array([r[0] for r in rows], pa.int64()),
            "raw_row": pa.array([r[1] for r in rows], pa.string()),
            "reason": pa.array([r[2] for r in rows], pa.string()),
            "ingest_run_id": pa.array([run_id] * len(rows), pa.string()),
            "quarantined_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
