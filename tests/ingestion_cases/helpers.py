"""Small hand-made export files for the ingestion tests (no generator needed)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from supernova.contract import EXPORTS

DAY = "2026-10-01"

# One valid row per export (strings, as an upstream CSV would carry them).
VALID: dict[str, dict[str, str]] = {
    "promoters": {
        "promoter_id": "P1",
        "platform": "fenxiang",
        "role": "mom",
        "inviter_id": "",
        "joined_at": "2026-01-05T10:00:00+08:00",
        "city": "杭州",
        "city_tier": "2",
        "gender": "F",
        "status": "active",
        "updated_at": "2026-09-30T12:00:00+08:00",
    },
    "groups": {
        "group_id": "G1",
        "owner_id": "P1",
        "created_at": "2026-02-01T08:00:00+08:00",
        "member_count": "120",
        "dissolved_at": "",
        "snapshot_date": "2026-09-30",
    },
    "links": {
        "link_id": "L1",
        "promoter_id": "P1",
        "group_id": "G1",
        "sku_id": "S1",
        "created_at": "2026-09-01T09:00:00+08:00",
    },
    "clicks": {
        "click_id": "C1",
        "link_id": "L1",
        "buyer_id": "B1",
        "clicked_at": "2026-09-30T20:00:00+08:00",
    },
    "orders": {
        "order_id": "O1",
        "line_no": "1",
        "parent_order_id": "",
        "buyer_id": "B1",
        "sku_id": "S1",
        "quantity": "2",
        "unit_price": "64.95",
        "paid_amount": "129.90",
        "coupon_amount": "0",
        "shipping_amount": "6.00",
        "ordered_at": "2026-09-30T21:00:00+08:00",
    },
    "order_events": {
        "order_id": "O1",
        "line_no": "1",
        "event": "paid",
        "event_at": "2026-09-30T21:00:05+08:00",
        "amount": "",
        "event_id": "E1",
    },
    "skus": {
        "sku_id": "S1",
        "merchant_id": "M1",
        "category": "food",
        "is_self_operated": "true",
        "positive_review_rate": "0.97",
        "title": '五常大米 5kg, "新米"',
    },
    "commission_rules": {
        "rule_id": "R1",
        "scope": "sku",
        "sku_id": "S1",
        "merchant_id": "",
        "category": "",
        "rate": "0.05",
        "valid_from": "2026-01-01T00:00:00+08:00",
        "valid_to": "",
    },
    "buyers": {
        "buyer_id": "B1",
        "gender": "M",
        "birth_year": "1990",
        "city": "北京",
        "city_tier": "1",
        "registered_at": "2025-12-01T10:00:00+08:00",
        "phone": "13800138000",
    },
}


def row(export: str, **overrides) -> dict[str, str]:
    r = dict(VALID[export])
    r.update(overrides)
    return r


def csv_text(rows: list[dict], columns: list[str] | None = None, newline: str = "\n") -> str:
    columns = columns or list(rows[0])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue()


def write(
    landing: Path,
    export: str,
    name: str,
    content: bytes | str,
    day: str = DAY,
    encoding: str = "utf-8",
) -> Path:
    p = Path(landing) / export / day / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode(encoding)
    p.write_bytes(content)
    return p


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(Path(warehouse) / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def columns(export: str) -> list[str]:
    return EXPORTS[export].column_names
