"""buyers.phone is never written anywhere: not in raw Parquet, not in DuckDB (tables,
views, quarantine), not in progress output or the summary. Checked by scanning every
byte of every file the pipeline wrote, and the decoded content of every Parquet file
and every table (compression could otherwise hide a value from a byte scan)."""

from __future__ import annotations

import gzip
import io
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from ingestion_cases.helpers import csv_text, row, write

from ingestion import ingest

PHONES = [
    f"1{n:010d}"
    for n in (
        3800138000,
        3900139001,
        3700137002,
        5000150003,
        8600186004,
        3311112222,
        3322223333,
        3633334444,
        3744445555,
        3855556666,
    )
]


def _landing(base):
    landing = base / "landing"
    p = iter(PHONES)
    good = [row("buyers", buyer_id=f"B{i}", phone=next(p)) for i in range(2)]
    bad = [
        row("buyers", buyer_id="BX", city_tier="9", phone=next(p)),  # quarantined
        row("buyers", buyer_id="", phone=next(p)),
    ]  # quarantined
    write(landing, "buyers", "fast.csv", csv_text(good + bad))
    # exact path: quoted newline + ragged rows (phone position unknowable)
    write(
        landing,
        "buyers",
        "exact.csv",
        "buyer_id,gender,phone,city\nB5,F,"
        + next(p)
        + ',"多\n行"\nB6,F,'
        + next(p)
        + "\n"
        + "B7,F,x,"
        + next(p)
        + ",北京,extra\n",
    )
    write(
        landing,
        "buyers",
        "gbk.csv",
        csv_text([row("buyers", buyer_id="B8", city="上海", phone=next(p))]),
        encoding="gbk",
    )
    write(
        landing,
        "buyers",
        "b.jsonl",
        json.dumps(row("buyers", buyer_id="B9", gender="Q", phone=next(p)))
        + "\n"
        + '{"buyer_id": "B10", "phone": "'
        + next(p)
        + '" broken json\n',
    )
    t = pa.table(
        {"buyer_id": ["P1", "P2"], "phone": [PHONES[0], PHONES[1]], "city_tier": ["1", "77"]}
    )
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="none")
    write(landing, "buyers", "b.parquet", buf.getvalue(), day="2026-10-02")
    write(
        landing,
        "buyers",
        "b.csv.gz",
        gzip.compress(csv_text(good).replace("B0", "G0").replace("B1", "G1").encode()),
        day="2026-10-02",
    )
    return landing


def _all_text(path):
    """Decoded content: every parquet file and every table/view of the DuckDB file."""
    chunks = []
    for f in path.rglob("*.parquet"):
        chunks.append(str(pq.read_table(f).to_pylist()))
    con = duckdb.connect(str(path / "supernova.duckdb"), read_only=True)
    try:
        for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall():
            chunks.append(str(con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()))
    finally:
        con.close()
    return "\n".join(chunks)


def test_phone_is_never_written(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    messages = []
    result = ingest(landing, wh, progress=messages.append)
    assert result.ok, result.summary()
    assert result.rows_quarantined >= 6  # the bad rows really went to quarantine
    # positive control: the scanner finds the phones where they are
    landing_bytes = b"".join(p.read_bytes() for p in landing.rglob("*.csv"))
    assert PHONES[0].encode() in landing_bytes

    written = [p for p in wh.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in written) and any(
        p.suffix == ".parquet" for p in written
    )
    text = _all_text(wh) + "\n".join(messages) + result.summary()
    assert "B0" in text and "<redacted>" in text  # the scan sees real content
    for phone in PHONES:
        for p in written:
            assert phone.encode() not in p.read_bytes(), (phone, p)
        assert phone not in text, phone


def test_quarantined_buyer_rows_show_redacted_phone(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    ingest(landing, wh)
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT file_path, line_no, raw_row FROM raw.quarantine "
        "WHERE file_path LIKE '%fast.csv' ORDER BY line_no"
    ).fetchall()
    con.close()
    assert [r[1] for r in rows] == [4, 5]
    assert all(json.loads(r[2])["phone"] == "<redacted>" for r in rows)
