"""Incremental marts = --full-refresh for files that arrive late (docs/marts.md,
"Incremental refresh"): each incremental mart refreshes from the files it has not
consumed yet, whatever their delivery date, not from the rows delivered since its
greatest date.

One warehouse (generated tiny data, seed 11, 2026-09-01 .. 09-05 built first), three
batches, and after each the incremental marts equal a full refresh row for row:
  a. Shanghai day edge: an order at 2026-09-05T16:30Z (Shanghai 09-06) in folder 09-05
     makes the marts' greatest date 09-06; then a second part of folder 09-05 brings a new
     attributed order of 09-05;
  b. a correction filed under an old date: day 09-06 arrives with
     orders/2026-09-02/zz-correction.csv moving an attributed order to a buyer without
     clicks (organic now);
  c. a rewrite in place: orders/2026-09-02/part-0000.csv re-delivered without an order.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import _rows_only_on_each_side
from test_staging import QUIET, _copy_days, _rewrite

from ingestion import ingest
from supernova import marts
from supernova.tables import MART_TABLES

ORDER_COLUMNS = (
    "order_id,line_no,parent_order_id,buyer_id,sku_id,quantity,unit_price,paid_amount,"
    "coupon_amount,shipping_amount,ordered_at"
).split(",")
# every incremental mart, its attributed lines, and the full tables reading them
COMPARED = sorted(
    {f"marts.{t}" for t in MART_TABLES}
    | {"marts.promoter_category_affinity", "intermediate.int_marts__attributed_lines"}
)


def _q(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _differences(wh: Path, tmp: Path) -> dict[str, tuple[int, int]]:
    """Rows only in the incremental build and only in a full refresh of a copy, per table."""
    full = tmp / "full"
    if full.exists():
        shutil.rmtree(full)
    shutil.copytree(
        wh, full, symlinks=True, ignore=shutil.ignore_patterns("dbt", "parquet", "logs")
    )
    marts.build_step(full, full_refresh=True, log=QUIET)
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        out = {}
        for t in COMPARED:
            out[t] = _rows_only_on_each_side(con, f"inc.{t}", t)
        return out
    finally:
        con.close()


def _write_orders(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ORDER_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def _deliver(landing: Path, wh: Path) -> None:
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    marts.build_step(wh, log=QUIET)


def _earnings(wh: Path, day: str, promoter: str) -> tuple:
    return _q(
        wh,
        "select orders, order_lines, gmv, level1_estimated from marts.promoter_earnings_daily "
        f"where activity_date = date '{day}' and promoter_id = '{promoter}'",
    )[0]


NO_DIFFERENCE = dict.fromkeys(COMPARED, (0, 0))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from supernova.generator import generate

    root = tmp_path_factory.mktemp("late_files")
    gen, landing, wh = root / "generated", root / "landing", root / "warehouse"
    generate(out=gen, start="2026-09-01", days=8, scale="tiny", seed=11, mess=False)
    _copy_days(gen, landing, "2026-09-01", "2026-09-05")
    _deliver(landing, wh)
    return {"root": root, "generated": gen, "landing": landing, "wh": wh}


def test_a_late_part_of_a_folder_behind_the_shanghai_day_edge(warehouse):
    landing, wh = warehouse["landing"], warehouse["wh"]
    # an attributed order of 09-05: the same buyer's copies are attributed too
    template = _q(
        wh,
        """select o.* exclude (_delivery_date, _file_name, _line_no)
        from staging.stg_exports__orders as o
        join intermediate.int_daily__order_attribution as a using (order_id)
        where a.is_attributed and cast(a.ordered_at as date) = date '2026-09-05' and o.line_no = 1
        order by a.ordered_at desc limit 1""",
    )[0]
    row = dict(zip(ORDER_COLUMNS, template))
    row["parent_order_id"] = row["parent_order_id"] or ""
    edge = dict(row, order_id="OZEDGE0001", ordered_at="2026-09-05T16:30:00Z")
    _write_orders(landing / "orders" / "2026-09-05" / "part-0001.csv", [edge])
    _deliver(landing, wh)
    assert _q(
        wh, "select cast(max(order_date) as varchar) from intermediate.int_marts__attributed_lines"
    ) == [("2026-09-06",)]
    promoter = _q(
        wh,
        "select promoter_id from intermediate.int_marts__attributed_lines where order_id = 'OZEDGE0001'",
    )
    before = _earnings(wh, "2026-09-05", promoter[0][0])

    late = dict(
        row, order_id="OZLATE0002", ordered_at=row["ordered_at"].strftime("%Y-%m-%dT%H:%M:%S+08:00")
    )
    _write_orders(landing / "orders" / "2026-09-05" / "part-0002.csv", [late])
    _deliver(landing, wh)

    assert _q(
        wh,
        "select order_id, cast(order_date as varchar) from intermediate.int_marts__attributed_lines "
        "where order_id like 'OZ%' order by 1",
    ) == [
        ("OZEDGE0001", "2026-09-06"),
        ("OZLATE0002", "2026-09-05"),
    ]
    after = _earnings(wh, "2026-09-05", promoter[0][0])
    assert after[0] == before[0] + 1 and after[2] == before[2] + row["paid_amount"]
    assert _differences(wh, warehouse["root"]) == NO_DIFFERENCE


def test_b_a_correction_filed_under_an_old_date(warehouse):
    landing, wh, gen = warehouse["landing"], warehouse["wh"], warehouse["generated"]
    part = landing / "orders" / "2026-09-02" / "part-0000.csv"
    ((order_id, promoter),) = _q(
        wh,
        """select a.order_id, min(l.promoter_id)
        from intermediate.int_daily__order_attribution as a
        join staging.stg_exports__orders as o using (order_id)
        join intermediate.int_marts__attributed_lines as l using (order_id)
        where a.is_attributed and o._file_name like 'orders/2026-09-02/%'
        group by a.order_id having count(distinct o.line_no) = 1 order by 1 limit 1""",
    )
    assert (order_id, promoter) == ("O0000000209", "P0000146")
    assert _earnings(wh, "2026-09-02", promoter) == (14, 16, Decimal("1746.92"), Decimal("31.80"))

    _copy_days(gen, landing, "2026-09-06", "2026-09-06")
    _rewrite(
        part,
        landing / "orders" / "2026-09-02" / "zz-correction.csv",
        lambda r: dict(r, buyer_id="BZNOCLICKS") if r["order_id"] == order_id else None,
    )
    _deliver(landing, wh)

    assert _q(
        wh,
        f"select count(*) from intermediate.int_marts__attributed_lines where order_id = '{order_id}'",
    ) == [(0,)]
    assert _earnings(wh, "2026-09-02", promoter) == (13, 15, Decimal("1557.02"), Decimal("26.42"))
    assert _differences(wh, warehouse["root"]) == NO_DIFFERENCE


def test_c_a_file_rewritten_in_place(warehouse):
    landing, wh = warehouse["landing"], warehouse["wh"]
    part = landing / "orders" / "2026-09-02" / "part-0000.csv"
    # the first attributed single-line order of the file still in the mart, of a promoter
    # with other orders that day (their row stays)
    ((order_id, promoter, day),) = _q(
        wh,
        """select l.order_id, min(l.promoter_id), cast(min(l.order_date) as varchar)
        from intermediate.int_marts__attributed_lines as l
        join staging.stg_exports__orders as o using (order_id)
        join marts.promoter_earnings_daily as e
            on e.activity_date = l.order_date and e.promoter_id = l.promoter_id
        where o._file_name = 'orders/2026-09-02/part-0000.csv' and e.orders > 1
        group by l.order_id having count(*) = 1 order by 1 limit 1""",
    )
    ((gmv,),) = _q(
        wh,
        f"select paid_amount from intermediate.int_marts__attributed_lines where order_id = '{order_id}'",
    )
    before = _earnings(wh, day, promoter)

    _rewrite(part, part, lambda r: None if r["order_id"] == order_id else r)
    _deliver(landing, wh)

    assert _q(
        wh,
        f"select count(*) from intermediate.int_marts__attributed_lines where order_id = '{order_id}'",
    ) == [(0,)]
    after = _earnings(wh, day, promoter)
    assert (after[0], after[1], after[2]) == (before[0] - 1, before[1] - 1, before[2] - gmv)
    assert _differences(wh, warehouse["root"]) == NO_DIFFERENCE
