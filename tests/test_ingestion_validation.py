"""The bad-input corpus: one case per failure mode of the contract (exports.md, "Bad
input"), each with its expected quarantine reason or file rejection.

All cases are written as separate files into one landing directory and ingested once
(module fixture); each parametrized test then checks its own file.
"""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingestion_cases.helpers import VALID, columns, csv_text, query, row, write

from ingestion import ingest

# (case id, export, overrides of the valid row, expected reason substring)
ROW_CASES = [
    (
        "promoter_platform_missing",
        "promoters",
        {"platform": ""},
        "platform: missing required value",
    ),
    (
        "promoter_platform_case",
        "promoters",
        {"platform": "Fenxiang"},
        "platform: 'Fenxiang' is not one of",
    ),
    ("promoter_role_unknown", "promoters", {"role": "boss"}, "role: 'boss' is not one of"),
    ("promoter_tier_high", "promoters", {"city_tier": "7"}, "city_tier: '7' is out of range 1..6"),
    ("promoter_tier_zero", "promoters", {"city_tier": "0"}, "city_tier: '0' is out of range 1..6"),
    ("promoter_tier_text", "promoters", {"city_tier": "two"}, "city_tier: 'two' is not an integer"),
    (
        "promoter_gender_optional_bad",
        "promoters",
        {"gender": "f"},
        "gender: 'f' is not one of F, M, U",
    ),
    ("promoter_status_blank", "promoters", {"status": "   "}, "status: missing required value"),
    (
        "promoter_joined_text",
        "promoters",
        {"joined_at": "yesterday"},
        "joined_at: 'yesterday' is not an ISO 8601 timestamp",
    ),
    (
        "promoter_joined_date_only",
        "promoters",
        {"joined_at": "2026-10-01"},
        "joined_at: '2026-10-01' is not an ISO 8601 timestamp",
    ),
    (
        "promoter_updated_impossible",
        "promoters",
        {"updated_at": "2026-02-30T00:00:00+08:00"},
        "updated_at: '2026-02-30T00:00:00+08:00' is not an ISO 8601",
    ),
    (
        "group_members_high",
        "groups",
        {"member_count": "501"},
        "member_count: '501' is out of range 0..500",
    ),
    (
        "group_members_negative",
        "groups",
        {"member_count": "-1"},
        "member_count: '-1' is out of range 0..500",
    ),
    (
        "group_members_decimal",
        "groups",
        {"member_count": "1.5"},
        "member_count: '1.5' is not an integer",
    ),
    (
        "group_snapshot_format",
        "groups",
        {"snapshot_date": "2026/09/30"},
        "snapshot_date: '2026/09/30' is not a date",
    ),
    (
        "group_dissolved_bad",
        "groups",
        {"dissolved_at": "soon"},
        "dissolved_at: 'soon' is not an ISO 8601 timestamp",
    ),
    ("link_sku_missing", "links", {"sku_id": ""}, "sku_id: missing required value"),
    ("click_time_missing", "clicks", {"clicked_at": ""}, "clicked_at: missing required value"),
    ("order_line_zero", "orders", {"line_no": "0"}, "line_no: '0' is out of range ≥ 1"),
    ("order_quantity_zero", "orders", {"quantity": "0"}, "quantity: '0' is out of range ≥ 1"),
    (
        "order_int_overflow",
        "orders",
        {"quantity": "99999999999"},
        "quantity: '99999999999' is not an integer",
    ),
    (
        "order_price_thousands",
        "orders",
        {"unit_price": "1,299.00"},
        "unit_price: '1,299.00' is not a CNY amount",
    ),
    (
        "order_price_currency",
        "orders",
        {"unit_price": "¥12.00"},
        "unit_price: '¥12.00' is not a CNY amount",
    ),
    (
        "order_price_3_decimals",
        "orders",
        {"unit_price": "12.345"},
        "unit_price: '12.345' is not a CNY amount",
    ),
    (
        "order_price_float_exp",
        "orders",
        {"unit_price": "1e3"},
        "unit_price: '1e3' is not a CNY amount",
    ),
    ("order_paid_negative", "orders", {"paid_amount": "-5.00"}, "paid_amount: '-5.00' is negative"),
    ("order_coupon_negative", "orders", {"coupon_amount": "-1"}, "coupon_amount: '-1' is negative"),
    (
        "order_shipping_text",
        "orders",
        {"shipping_amount": "abc"},
        "shipping_amount: 'abc' is not a CNY amount",
    ),
    ("order_time_missing", "orders", {"ordered_at": ""}, "ordered_at: missing required value"),
    (
        "event_case",
        "order_events",
        {"event": "Paid"},
        "event: 'Paid' is not one of paid, completed",
    ),
    (
        "event_amount_negative",
        "order_events",
        {"event": "refunded", "amount": "-3.00"},
        "amount: '-3.00' is negative",
    ),
    (
        "sku_bool_yes",
        "skus",
        {"is_self_operated": "yes"},
        "is_self_operated: 'yes' is not a boolean",
    ),
    (
        "sku_review_high",
        "skus",
        {"positive_review_rate": "1.2"},
        "positive_review_rate: '1.2' is out of range 0..1",
    ),
    (
        "sku_review_negative",
        "skus",
        {"positive_review_rate": "-0.1"},
        "positive_review_rate: '-0.1' is out of range 0..1",
    ),
    (
        "sku_review_percent",
        "skus",
        {"positive_review_rate": "97%"},
        "positive_review_rate: '97%' is not a decimal number",
    ),
    (
        "sku_review_precision",
        "skus",
        {"positive_review_rate": "0.1234567"},
        "has more than 6 decimals",
    ),
    ("rule_rate_high", "commission_rules", {"rate": "0.95"}, "rate: '0.95' is out of range 0..0.9"),
    (
        "rule_rate_negative",
        "commission_rules",
        {"rate": "-0.01"},
        "rate: '-0.01' is out of range 0..0.9",
    ),
    (
        "rule_scope_unknown",
        "commission_rules",
        {"scope": "shop"},
        "scope: 'shop' is not one of sku, merchant, category",
    ),
    (
        "rule_scope_sku_no_key",
        "commission_rules",
        {"scope": "sku", "sku_id": ""},
        "sku_id: missing, required when scope is 'sku'",
    ),
    (
        "rule_scope_merchant_no_key",
        "commission_rules",
        {"scope": "merchant", "sku_id": "", "merchant_id": ""},
        "merchant_id: missing, required when scope is 'merchant'",
    ),
    (
        "rule_scope_category_no_key",
        "commission_rules",
        {"scope": "category", "sku_id": ""},
        "category: missing, required when scope is 'category'",
    ),
    (
        "rule_valid_to_equal",
        "commission_rules",
        {"valid_to": "2026-01-01T00:00:00+08:00"},
        "valid_to: '2026-01-01T00:00:00+08:00' is not after valid_from",
    ),
    (
        "rule_valid_to_before",
        "commission_rules",
        {"valid_to": "2025-12-31T15:59:59Z"},
        "is not after valid_from",
    ),
    (
        "rule_valid_to_bad",
        "commission_rules",
        {"valid_to": "never"},
        "valid_to: 'never' is not an ISO 8601 timestamp",
    ),
    (
        "buyer_birth_year_text",
        "buyers",
        {"birth_year": "19x0"},
        "birth_year: '19x0' is not an integer",
    ),
    ("buyer_tier_high", "buyers", {"city_tier": "9"}, "city_tier: '9' is out of range 1..6"),
]

# (case id, file name under <export>/<day>/ or a path relative to landing, bytes, reason)
_good_orders = csv_text([row("orders")])
_bad_zip = gzip.compress(_good_orders.encode())[:-12]


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


FILE_CASES = [
    (
        "required_column_missing",
        "orders/2026-10-01/no_paid.csv",
        csv_text([row("orders")], [c for c in columns("orders") if c != "paid_amount"]).encode(),
        "required column(s) missing: paid_amount",
    ),
    (
        "undecodable",
        "orders/2026-10-01/garbage.csv",
        _good_orders.encode() + b"O9,1,B\xff\xfe\xff,S1,1,1,1,2026-10-01T00:00:00\n",
        "undecodable bytes: neither UTF-8",
    ),
    (
        "binary_nul",
        "orders/2026-10-01/image.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "binary content",
    ),
    (
        "parquet_as_csv",
        "orders/2026-10-01/really_parquet.csv",
        _parquet_bytes(pa.table({"order_id": ["O1"]})),
        "binary content",
    ),
    (
        "corrupt_parquet",
        "orders/2026-10-01/broken.parquet",
        b"PAR1 this is not parquet",
        "not a readable Parquet file",
    ),
    (
        "csv_named_parquet",
        "orders/2026-10-01/csv.parquet",
        _good_orders.encode(),
        "not a readable Parquet file",
    ),
    ("corrupt_gzip", "orders/2026-10-01/cut.csv.gz", _bad_zip, "corrupt or truncated gzip"),
    (
        "not_gzip",
        "orders/2026-10-01/plain.csv.gz",
        _good_orders.encode(),
        "corrupt or truncated gzip",
    ),
    ("empty_file", "orders/2026-10-01/empty.csv", b"", "empty file: no header row"),
    ("blank_lines_only", "orders/2026-10-01/blank.csv", b"\r\n\n  \n", "empty file: no header row"),
    ("empty_jsonl", "orders/2026-10-01/empty.jsonl", b"\n\n", "empty file: no records"),
    (
        "jsonl_required_absent",
        "orders/2026-10-01/partial.jsonl",
        (json.dumps({k: v for k, v in VALID["orders"].items() if k != "sku_id"}) + "\n").encode(),
        "required column(s) missing in every record: sku_id",
    ),
    (
        "parquet_required_absent",
        "orders/2026-10-01/partial.parquet",
        _parquet_bytes(pa.table({"order_id": ["O1"], "line_no": [1]})),
        "required column(s) missing",
    ),
    (
        "duplicate_header",
        "clicks/2026-10-01/dup_header.csv",
        b"click_id,link_id,buyer_id,clicked_at,click_id\nC1,L1,B1,2026-10-01T00:00:00,C2\n",
        "duplicate column 'click_id' in header",
    ),
    (
        "not_csv_text",
        "clicks/2026-10-01/readme.csv",
        "这不是CSV文件\n只是一些文字\n".encode(),
        "required column(s) missing",
    ),
    (
        "unknown_export",
        "refunds/2026-10-01/r.csv",
        _good_orders.encode(),
        "unknown export 'refunds'",
    ),
    (
        "bad_date_folder",
        "orders/2026-13-01/a.csv",
        _good_orders.encode(),
        "bad delivery date folder '2026-13-01'",
    ),
    (
        "word_date_folder",
        "orders/latest/a.csv",
        _good_orders.encode(),
        "bad delivery date folder 'latest'",
    ),
    ("unknown_suffix", "orders/2026-10-01/a.xlsx", b"PK\x03\x04", "unknown file type 'a.xlsx'"),
    ("txt_suffix", "orders/2026-10-01/a.csv.txt", _good_orders.encode(), "unknown file type"),
    (
        "too_shallow",
        "orders/a.csv",
        _good_orders.encode(),
        "not in the <export>/<YYYY-MM-DD>/<file> layout",
    ),
    ("too_deep", "orders/2026-10-01/sub/a.csv", _good_orders.encode(), "layout"),
    ("top_level", "notes.csv", _good_orders.encode(), "layout"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    landing, wh = base / "landing", base / "wh"
    for case, export, overrides, _reason in ROW_CASES:
        rows = [row(export), row(export, **overrides)]
        write(landing, export, f"{case}.csv", csv_text(rows))
    for _case, rel, data, _reason in FILE_CASES:
        p = landing / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    # ragged rows and JSONL row-level problems
    good = ",".join(f'"{v}"' for v in VALID["clicks"].values())
    write(
        landing,
        "clicks",
        "ragged.csv",
        "click_id,link_id,buyer_id,clicked_at\n"
        + good
        + "\nC2,L1,B1\nC3,L1,B1,2026-10-01T00:00:00,extra\n",
    )
    lines = [
        json.dumps(VALID["clicks"]),
        "{not json",
        "[1, 2]",
        json.dumps({**VALID["clicks"], "buyer_id": {"id": "B1"}}),
        "",
        json.dumps({**VALID["clicks"], "clicked_at": None}),
    ]
    write(landing, "clicks", "rows.jsonl", "\n".join(lines) + "\n")
    messages: list[str] = []
    result = ingest(landing, wh, progress=messages.append)
    return result, wh, messages


def _outcome(result, rel):
    found = [f for f in result.files if f.path == rel]
    assert len(found) == 1, rel
    return found[0]


@pytest.mark.parametrize("case,export,overrides,reason", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_row_is_quarantined_with_reason(corpus, case, export, overrides, reason):
    result, wh, _ = corpus
    rel = f"{export}/2026-10-01/{case}.csv"
    out = _outcome(result, rel)
    assert (out.status, out.rows_read, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1, 1)
    q = query(
        wh, "SELECT export, line_no, reason, raw_row FROM raw.quarantine WHERE file_path = ?", [rel]
    )
    assert len(q) == 1
    assert q[0][0] == export
    assert q[0][1] == 3  # header = line 1, the valid row = line 2
    assert reason in q[0][2], q[0][2]
    raw = json.loads(q[0][3])
    for col, value in overrides.items():
        assert raw[col] == value
    # the valid row is loaded, the bad one is not
    loaded = query(wh, f'SELECT _line_no FROM raw."{export}" WHERE _file_name = ?', [rel])
    assert loaded == [(2,)]


@pytest.mark.parametrize("case,rel,data,reason", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_file_is_rejected_with_reason(corpus, case, rel, data, reason):
    result, wh, messages = corpus
    out = _outcome(result, rel)
    assert out.status == "rejected"
    assert reason in out.reason, out.reason
    m = query(
        wh,
        "SELECT status, reason, rows_read, rows_loaded, rows_quarantined, sha256 "
        "FROM raw.manifest WHERE file_path = ?",
        [rel],
    )
    assert len(m) == 1
    assert m[0][0] == "rejected" and reason in m[0][1]
    assert m[0][2:5] == (0, 0, 0)
    assert len(m[0][5]) == 64
    assert query(wh, "SELECT count(*) FROM raw.quarantine WHERE file_path = ?", [rel]) == [(0,)]
    # the run says so clearly: result, summary and progress name the file and reason
    assert not result.ok
    assert f"REJECTED {rel}: " in result.summary()
    assert any(rel in m and reason in m for m in messages)
    # nothing of it is in any raw view
    for export in ("orders", "clicks"):
        assert query(wh, f"SELECT count(*) FROM raw.{export} WHERE _file_name = ?", [rel]) == [(0,)]


def test_ragged_rows_are_quarantined(corpus):
    result, wh, _ = corpus
    out = _outcome(result, "clicks/2026-10-01/ragged.csv")
    assert (out.status, out.rows_read, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 1, 2)
    q = query(
        wh,
        "SELECT line_no, reason, raw_row FROM raw.quarantine WHERE file_path = ? ORDER BY line_no",
        ["clicks/2026-10-01/ragged.csv"],
    )
    assert [(r[0], r[1]) for r in q] == [
        (3, "wrong number of fields: expected 4, got 3"),
        (4, "wrong number of fields: expected 4, got 5"),
    ]
    assert json.loads(q[1][2])["fields"][-1] == "extra"


def test_jsonl_row_problems(corpus):
    result, wh, _ = corpus
    rel = "clicks/2026-10-01/rows.jsonl"
    out = _outcome(result, rel)
    assert (out.rows_read, out.rows_loaded, out.rows_quarantined) == (5, 1, 4)
    q = query(
        wh, "SELECT line_no, reason FROM raw.quarantine WHERE file_path = ? ORDER BY line_no", [rel]
    )
    assert [r[0] for r in q] == [2, 3, 4, 6]
    assert "invalid JSON" in q[0][1] and "invalid JSON" in q[1][1]
    assert "buyer_id: nested JSON value" in q[2][1]
    assert "clicked_at: missing required value" in q[3][1]


def test_row_with_several_problems_lists_them_all(tmp_path):
    landing, wh = tmp_path / "l", tmp_path / "w"
    write(
        landing,
        "orders",
        "multi.csv",
        csv_text([row("orders", line_no="x", paid_amount="-1", buyer_id="")]),
    )
    ingest(landing, wh)
    [(reason,)] = query(wh, "SELECT reason FROM raw.quarantine")
    assert "line_no: 'x' is not an integer" in reason
    assert "paid_amount: '-1' is negative" in reason
    assert "buyer_id: missing required value" in reason
    assert reason.count("; ") == 2


def test_valid_edge_values_are_accepted(tmp_path):
    landing, wh = tmp_path / "l", tmp_path / "w"
    skus = [
        row("skus", sku_id=f"S{i}", is_self_operated=b, positive_review_rate=r)
        for i, (b, r) in enumerate(
            [("TRUE", "0"), ("False", "1"), ("1", "1.000000"), ("0", ""), (" true ", ".5")]
        )
    ]
    write(landing, "skus", "s.csv", csv_text(skus))
    orders = [
        row("orders", order_id=f"O{i}", unit_price=p, coupon_amount=c)
        for i, (p, c) in enumerate(
            [("0", ""), ("129.9", "0.00"), ("  7 ", "1"), ("9999999999999999.99", "-0.00")]
        )
    ]
    write(landing, "orders", "o.csv", csv_text(orders))
    rules = [
        row("commission_rules", rule_id="R1", rate="0.9"),
        row(
            "commission_rules",
            rule_id="R2",
            rate="0",
            scope="merchant",
            sku_id="",
            merchant_id="M1",
            valid_to="2026-02-01T00:00:00+08:00",
        ),
        # scope category with a stray sku_id: the scope's key is present, accepted
        row("commission_rules", rule_id="R3", scope="category", category="food"),
    ]
    write(landing, "commission_rules", "r.csv", csv_text(rules))
    result = ingest(landing, wh)
    assert result.ok and result.rows_quarantined == 0, query(
        wh, "SELECT reason FROM raw.quarantine"
    )
    got = query(
        wh,
        "SELECT is_self_operated, CAST(positive_review_rate AS VARCHAR) FROM raw.skus "
        "ORDER BY sku_id",
    )
    assert got == [
        (True, "0.000000"),
        (False, "1.000000"),
        (True, "1.000000"),
        (False, None),
        (True, "0.500000"),
    ]
    got = query(
        wh,
        "SELECT CAST(unit_price AS VARCHAR), CAST(coupon_amount AS VARCHAR) "
        "FROM raw.orders ORDER BY order_id",
    )
    assert got == [
        ("0.00", None),
        ("129.90", "0.00"),
        ("7.00", "1.00"),
        ("9999999999999999.99", "0.00"),
    ]
