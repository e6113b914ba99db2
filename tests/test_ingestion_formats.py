"""File formats and encodings: UTF-8 with/without BOM, GB18030/GBK, CRLF, csv.gz, JSONL,
Parquet, quoted fields (commas, quotes, newlines, Chinese) with exact line numbers,
timestamps with and without offset, trimming and blank lines."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingestion_cases.helpers import VALID, columns, csv_text, query, row, write

from ingestion import ensure_raw_schema, ingest
from ingestion.readers import read_csv
from supernova.contract import EXPORTS, LINEAGE_COLUMNS, RAW_SQL_TYPES


def _one(tmp_path, export, name, content, **kw):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write(landing, export, name, content, **kw)
    result = ingest(landing, wh)
    assert result.ok, result.summary()
    return result.files[0], wh


def test_utf8_bom_header_is_recognised(tmp_path):
    text = csv_text([row("skus")])
    out, wh = _one(tmp_path, "skus", "bom.csv", b"\xef\xbb\xbf" + text.encode())
    assert out.encoding == "utf-8-sig" and out.rows_loaded == 1
    assert query(wh, "SELECT sku_id, title FROM raw.skus") == [("S1", '五常大米 5kg, "新米"')]


@pytest.mark.parametrize("codec", ["gbk", "gb18030"])
def test_gbk_file_is_read_as_gb18030(tmp_path, codec):
    rows = [row("promoters", city="乌鲁木齐"), row("promoters", promoter_id="P2", city="石家庄")]
    out, wh = _one(tmp_path, "promoters", "old.csv", csv_text(rows, newline="\r\n"), encoding=codec)
    assert out.encoding == "gb18030"
    assert query(wh, "SELECT city FROM raw.promoters ORDER BY promoter_id") == [
        ("乌鲁木齐",),
        ("石家庄",),
    ]


def test_crlf_and_blank_lines_keep_physical_line_numbers(tmp_path):
    rows = [row("clicks", click_id=f"C{i}") for i in range(3)]
    lines = csv_text(rows, newline="\r\n").split("\r\n")
    # header, blank, C0, blank, blank, C1, C2
    text = "\r\n".join([lines[0], "", lines[1], "", "", lines[2], lines[3]]) + "\r\n"
    out, wh = _one(tmp_path, "clicks", "crlf.csv", text)
    assert (out.rows_read, out.rows_loaded) == (3, 3)
    got = query(wh, "SELECT click_id, _line_no FROM raw.clicks ORDER BY _line_no")
    assert got == [("C0", 3), ("C1", 6), ("C2", 7)]


def test_quoted_newlines_commas_quotes_and_line_numbers(tmp_path):
    text = (
        "sku_id,merchant_id,category,is_self_operated,positive_review_rate,title\n"
        'S1,M1,food,true,0.9,"line one\nline two\nline three"\n'  # lines 2-4
        'S2,M1,food,false,0.8,"逗号, ""引号"" and more"\n'  # line 5
        "\n"  # line 6 blank
        'S3,M1,food,maybe,0.8,"a\r\nb"\n'  # lines 7-8, bad bool
        "S4,M2,home,1,,plain\n"  # line 9
    )
    out, wh = _one(tmp_path, "skus", "quoted.csv", text)
    assert (out.rows_read, out.rows_loaded, out.rows_quarantined) == (4, 3, 1)
    got = query(wh, "SELECT sku_id, title, _line_no FROM raw.skus ORDER BY _line_no")
    assert got == [
        ("S1", "line one\nline two\nline three", 2),
        ("S2", '逗号, "引号" and more', 5),
        ("S4", "plain", 9),
    ]
    [(line_no, reason)] = query(wh, "SELECT line_no, reason FROM raw.quarantine")
    assert line_no == 7 and "is_self_operated: 'maybe'" in reason


def test_fast_and_exact_paths_agree(tmp_path):
    export = EXPORTS["orders"]
    rows = [row("orders", order_id=f"O{i}", buyer_id=f" B{i} ") for i in range(50)]
    text = csv_text(rows).replace("\n", "\n\n", 3)
    fast = read_csv(text.encode(), export)
    assert fast.path_taken == "fast"
    # a quoted newline in one field forces the exact path for the whole file
    exact = read_csv((text + 'O99,1,,"B\n99",S1,1,1,1,,,2026-10-01T00:00:00\n').encode(), export)
    assert exact.path_taken == "exact"
    n = fast.table.num_rows
    assert exact.table.slice(0, n).equals(fast.table)
    assert exact.table.column("_line_no")[n].as_py() == 55


def test_whitespace_only_line_is_blank(tmp_path):
    text = (
        csv_text([row("links")]) + "   \n" + csv_text([row("links", link_id="L2")]).split("\n")[1]
    )
    out, wh = _one(tmp_path, "links", "ws.csv", text)
    assert (out.rows_read, out.rows_quarantined) == (2, 0)
    assert query(wh, "SELECT link_id, _line_no FROM raw.links ORDER BY 2") == [("L1", 2), ("L2", 4)]


def test_trimming_and_empty_to_null(tmp_path):
    r = row("links", link_id="  L1\t", group_id="   ", sku_id="\u3000S1 ")
    _out, wh = _one(tmp_path, "links", "trim.csv", csv_text([r]))
    assert query(wh, "SELECT link_id, group_id, sku_id FROM raw.links") == [("L1", None, "S1")]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-10-01T09:00:00Z", dt.datetime(2026, 10, 1, 17, 0)),
        ("2026-10-01T09:00:00+08:00", dt.datetime(2026, 10, 1, 9, 0)),
        ("2026-10-01T09:00:00", dt.datetime(2026, 10, 1, 9, 0)),
        ("2026-10-01 09:00:00", dt.datetime(2026, 10, 1, 9, 0)),
        ("2026-09-30T20:30:00-04:00", dt.datetime(2026, 10, 1, 8, 30)),
        ("2026-10-01T09:00:00.250+0800", dt.datetime(2026, 10, 1, 9, 0, 0, 250000)),
        ("2026-10-31T23:59:59+08:00", dt.datetime(2026, 10, 31, 23, 59, 59)),
        ("2026-10-31T16:00:00Z", dt.datetime(2026, 11, 1, 0, 0)),
    ],
)
def test_timestamps_become_naive_shanghai_time(tmp_path, value, expected):
    _out, wh = _one(tmp_path, "clicks", "t.csv", csv_text([row("clicks", clicked_at=value)]))
    assert query(wh, "SELECT clicked_at FROM raw.clicks") == [(expected,)]


def test_csv_gz(tmp_path):
    rows = [row("order_events", event_id=f"E{i}") for i in range(3)]
    out, wh = _one(tmp_path, "order_events", "e.csv.gz", gzip.compress(csv_text(rows).encode()))
    assert out.rows_loaded == 3
    assert query(wh, "SELECT count(*), min(_line_no), max(_line_no) FROM raw.order_events") == [
        (3, 2, 4)
    ]


def test_jsonl_scalars_and_line_numbers(tmp_path):
    objs = [
        {
            "order_id": "O1",
            "line_no": 1,
            "buyer_id": "B1",
            "sku_id": "S1",
            "quantity": 2,
            "unit_price": 64.95,
            "paid_amount": "129.90",
            "coupon_amount": None,
            "ordered_at": "2026-10-01T01:00:00Z",
            "note": "extra",
        },
        {
            "order_id": "O2",
            "line_no": 1,
            "buyer_id": "B1",
            "sku_id": "S1",
            "quantity": 1,
            "unit_price": 0.1,
            "paid_amount": 0,
            "ordered_at": "2026-10-01T09:00:00+08:00",
        },
    ]
    text = json.dumps(objs[0], ensure_ascii=False) + "\r\n\n" + json.dumps(objs[1]) + "\n"
    out, wh = _one(tmp_path, "orders", "o.jsonl", text)
    assert out.extra_columns == ["note"]
    got = query(
        wh,
        "SELECT order_id, quantity, unit_price, paid_amount, coupon_amount, ordered_at, "
        "_line_no FROM raw.orders ORDER BY 1",
    )
    assert got == [
        ("O1", 2, Decimal("64.95"), Decimal("129.90"), None, dt.datetime(2026, 10, 1, 9), 1),
        ("O2", 1, Decimal("0.10"), Decimal("0.00"), None, dt.datetime(2026, 10, 1, 9), 3),
    ]


def test_jsonl_booleans(tmp_path):
    text = (
        "\n".join(
            json.dumps(row("skus", sku_id=f"S{i}", is_self_operated=b))
            for i, b in enumerate([True, False, "TRUE", 0])
        )
        + "\n"
    )
    _out, wh = _one(tmp_path, "skus", "s.jsonl", text)
    assert query(wh, "SELECT is_self_operated FROM raw.skus ORDER BY sku_id") == [
        (True,),
        (False,),
        (True,),
        (False,),
    ]


def test_typed_parquet(tmp_path):
    table = pa.table(
        {
            "order_id": ["O1", "O2", "O3"],
            "line_no": pa.array([1, 2, 0], pa.int32()),
            "buyer_id": ["B1", "B1", "B1"],
            "sku_id": ["S1", "S2", "S3"],
            "quantity": pa.array([1, 3, 1], pa.int64()),
            "unit_price": pa.array(
                [Decimal("10.50"), Decimal("1.00"), Decimal("1.00")], pa.decimal128(10, 2)
            ),
            "paid_amount": ["10.50", "3.00", "1.00"],
            "ordered_at": pa.array([dt.datetime(2026, 10, 1, 1, 0)] * 3, pa.timestamp("us", "UTC")),
            "shipping_amount": pa.array([None, 6.0, None], pa.float64()),
            "warehouse_code": ["x", "y", "z"],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    out, wh = _one(tmp_path, "orders", "o.parquet", buf.getvalue())
    assert (out.rows_read, out.rows_loaded, out.rows_quarantined) == (3, 2, 1)
    assert out.extra_columns == ["warehouse_code"]
    got = query(
        wh,
        "SELECT order_id, unit_price, shipping_amount, ordered_at, _line_no "
        "FROM raw.orders ORDER BY 1",
    )
    assert got == [
        ("O1", Decimal("10.50"), None, dt.datetime(2026, 10, 1, 9), 1),
        ("O2", Decimal("1.00"), Decimal("6.00"), dt.datetime(2026, 10, 1, 9), 2),
    ]
    assert query(wh, "SELECT line_no FROM raw.quarantine") == [(3,)]


def test_naive_parquet_timestamp_is_shanghai(tmp_path):
    t = pa.table({k: [v] for k, v in VALID["clicks"].items() if k != "clicked_at"})
    t = t.append_column("clicked_at", pa.array([dt.datetime(2026, 10, 1, 9)], pa.timestamp("ms")))
    buf = io.BytesIO()
    pq.write_table(t, buf)
    _out, wh = _one(tmp_path, "clicks", "c.parquet", buf.getvalue())
    assert query(wh, "SELECT clicked_at FROM raw.clicks") == [(dt.datetime(2026, 10, 1, 9),)]


def test_header_only_file_loads_zero_rows(tmp_path):
    out, wh = _one(tmp_path, "groups", "h.csv", ",".join(columns("groups")) + "\n")
    assert (out.status, out.rows_read) == ("loaded", 0)
    assert query(wh, "SELECT count(*) FROM raw.groups") == [(0,)]


def test_views_exist_typed_before_any_file(tmp_path):
    ensure_raw_schema(tmp_path / "wh")
    for name, export in EXPORTS.items():
        desc = query(tmp_path / "wh", f"DESCRIBE raw.{name}")
        expected = [(c.name, RAW_SQL_TYPES[c.type]) for c in export.stored_columns]
        expected += list(LINEAGE_COLUMNS)
        assert [(d[0], d[1]) for d in desc] == expected
        assert query(tmp_path / "wh", f"SELECT count(*) FROM raw.{name}") == [(0,)]
    assert "phone" not in [d[0] for d in query(tmp_path / "wh", "DESCRIBE raw.buyers")]
    assert query(tmp_path / "wh", "SELECT count(*) FROM raw.manifest") == [(0,)]
    # idempotent
    ensure_raw_schema(tmp_path / "wh")


def test_missing_optional_columns_are_null(tmp_path):
    cols = [
        "order_id",
        "line_no",
        "buyer_id",
        "sku_id",
        "quantity",
        "unit_price",
        "paid_amount",
        "ordered_at",
    ]
    _out, wh = _one(tmp_path, "orders", "few.csv", csv_text([row("orders")], cols))
    assert query(wh, "SELECT parent_order_id, coupon_amount, shipping_amount FROM raw.orders") == [
        (None, None, None)
    ]
