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
import re
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


def test_a2_each_refresh_start_is_computed_once_per_dbt_thread(warehouse):
    """marts_first_changed_day keeps each export's start for the rest of the invocation:
    every incremental mart asks it when compiled and in its pre-hook, most marts ask the
    same exports over the same files. Each answer is one row of the cache; a dbt thread
    sees its own rows at once and the other thread's when that one's model commits, so a
    question is computed at most once per thread (two, profiles.yml). A cache that never
    hit would hold one row per question; one that outlived its invocation, rows of two."""
    wh = warehouse["wh"]
    threads = 2
    invocations, rows, queries, most = _q(
        wh,
        "select count(distinct invocation_id), sum(n), count(*), max(n) from ("
        "select invocation_id, query_md5, count(*) as n from staging.marts_refresh_cache "
        "group by all)",
    )[0]
    assert invocations == 1 and queries > 0 and most <= threads, (rows, queries)
    # the marts asked many more questions than were computed (each mart at least twice)
    log = (wh / "dbt" / "logs" / "dbt.log").read_text(errors="replace")
    last_run = log[log.rindex("Running with dbt=") :]
    asked = last_run.count('from "supernova"."staging"."marts_refresh_cache" where invocation_id')
    assert asked >= 4 * queries > 0, (asked, queries)


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


# ------------------------------------------------- promoter_earnings_daily, incremental
# The estimate of a line changes without a new order or click: an event on an old order,
# a promoter's new version, a SKU's new attributes, a back-dated rule, an event_id moved
# to another order, the configuration (macros/earnings_incremental.sql). After each batch
# the incremental mart equals a full refresh of it, and the batch changed rows before the
# refresh window's first day (so they were recomputed by the lines' path, not the window).

EARNINGS = "marts.promoter_earnings_daily"


def _earnings_full_refresh(wh: Path, tmp: Path, vars_: dict | None = None) -> Path:
    """A copy of the warehouse with the mart fully refreshed (its own dbt invocation)."""
    from supernova.dbt_runner import dbt_invoke

    full = tmp / "earnings_full"
    if full.exists():
        shutil.rmtree(full)
    shutil.copytree(
        wh, full, symlinks=True, ignore=shutil.ignore_patterns("dbt", "parquet", "logs")
    )
    args = ["run", "--select", "promoter_earnings_daily", "--full-refresh"]
    assert dbt_invoke(full, args, vars_=vars_).success
    return full


def _earnings_difference(wh: Path, tmp: Path, vars_: dict | None = None) -> tuple[int, int]:
    """Rows only in the incremental mart and only in a full refresh of it (on a copy)."""
    full = _earnings_full_refresh(wh, tmp, vars_)
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        return _rows_only_on_each_side(con, f"inc.{EARNINGS}", EARNINGS)
    finally:
        con.close()


def _assert_only_the_tampered_row_differs(wh: Path, tmp: Path, day, promoter: str) -> None:
    """The incremental mart equals a full refresh of it except for the one row _tamper
    raised by 1000 of gmv before the batch: that row was not recomputed, and every
    other row is the full refresh's. (With the tampering undone, the two are equal.)"""
    full = _earnings_full_refresh(wh, tmp)
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        untampered = f"""select * replace (case when activity_date = date '{day}'
                and promoter_id = '{promoter}' then gmv - 1000 else gmv end as gmv)
            from inc.{EARNINGS}"""
        assert _rows_only_on_each_side(con, f"({untampered})", EARNINGS) == (0, 0)
        ((tampered_rows,),) = con.execute(
            f"""select count(*) from inc.{EARNINGS} as i inner join {EARNINGS} as f
                using (activity_date, promoter_id)
            where i.activity_date = date '{day}' and i.promoter_id = '{promoter}'
                and i.gmv = f.gmv + 1000"""
        ).fetchall()
        assert tampered_rows == 1
    finally:
        con.close()


def _earnings_rows(wh: Path, where: str = "1 = 1") -> set[tuple]:
    return set(_q(wh, f"select * from {EARNINGS} where {where}"))


def _refresh_start(wh: Path) -> str:
    """The first day the last refresh recomputed whole (its compiled select)."""
    compiled = next((wh / "dbt" / "target" / "compiled").rglob("promoter_earnings_daily.sql"))
    starts = re.findall(r"order_date >= cast\('(\d{4}-\d\d-\d\d)' as date\)", compiled.read_text())
    assert len(starts) == 1, starts
    return starts[0]


def test_d_events_on_old_orders_restate_their_days(warehouse):
    landing, wh, gen = warehouse["landing"], warehouse["wh"], warehouse["generated"]
    before = _earnings_rows(wh, "activity_date <= date '2026-09-05'")
    _copy_days(gen, landing, "2026-09-07", "2026-09-07")
    _deliver(landing, wh)

    assert _refresh_start(wh) >= "2026-09-06"
    changed = before - _earnings_rows(wh, "activity_date <= date '2026-09-05'")
    assert len(changed) > 10  # completions and refunds of orders placed before the window
    assert _earnings_difference(wh, warehouse["root"]) == (0, 0)


def _csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _latest_csv_row(landing: Path, export: str, key: str, value: str) -> dict:
    rows = [r for p in sorted((landing / export).rglob("*.csv")) for r in _csv_rows(p)]
    return [r for r in rows if r[key] == value][-1]


def _write_sku_rule(landing: Path, part: str, rule_id: str, sku: str, rate: str, day: str):
    """A SKU rule valid from `day` (Shanghai midnight) to the year's end, delivered on 09-07."""
    columns = _csv_rows(next((landing / "commission_rules").rglob("*.csv")))[0]
    rule = dict.fromkeys(columns, "")
    rule.update(
        rule_id=rule_id,
        scope="sku",
        sku_id=sku,
        rate=rate,
        valid_from=f"{day}T00:00:00+08:00",
        valid_to="2026-12-31T00:00:00+08:00",
    )
    _write_csv(landing / "commission_rules" / "2026-09-07" / part, [rule])


def _tamper(wh: Path, day, promoter: str, gmv_delta: int) -> None:
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        con.execute(
            f"update {EARNINGS} set gmv = gmv + {gmv_delta} "
            f"where activity_date = date '{day}' and promoter_id = '{promoter}'"
        )
    finally:
        con.close()


def _in(values) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def test_e_promoters_skus_and_a_moved_event_restate_old_days(warehouse):
    """One batch of second parts, no new order: a promoter inviting their own invitee (a
    loop: no level 2 for either, so the former inviter's rows change too), an inviter with
    level-2 rows only changing platform, a SKU changing merchant, and a completion
    re-delivered on another order. Each change's lines are on days of their own, so that
    each row is recomputed by one path only (a path removed fails the test). A row of
    another promoter, tampered with before the batch, is not recomputed."""
    landing, wh = warehouse["landing"], warehouse["wh"]
    lines = "intermediate.int_marts__attributed_lines"
    ((p, y),) = _q(
        wh,
        f"""select p.promoter_id, y.promoter_id
        from staging.stg_exports__promoters as p
        join staging.stg_exports__promoters as y on y.inviter_id = p.promoter_id
        where p.platform = 'fenxiang' and y.platform = 'fenxiang' and p.inviter_id <> y.promoter_id
            and p.promoter_id in (select promoter_id from {lines})
            and y.promoter_id in (select promoter_id from {lines})
        order by 1, 2 limit 1""",
    )
    loop_days = f"(select order_date from {lines} where promoter_id in ('{p}', '{y}'))"
    ((z,),) = _q(
        wh,
        f"""select promoter_id from {EARNINGS}
        where orders = 0 and level2_estimated > 0 and promoter_id not in ('{p}', '{y}')
            and activity_date not in {loop_days}
        order by 1 limit 1""",
    )
    # a SKU without a SKU rule, sold on few days, none of the loop's, by other promoters
    ((s1,),) = _q(
        wh,
        f"""select sku_id from {lines}
        where sku_id not in (select sku_id from staging.stg_exports__commission_rules
                             where sku_id is not null)
        group by sku_id
        having count(*) filter (where order_date in {loop_days}
                                or promoter_id in ('{p}', '{y}', '{z}')) = 0
        order by count(distinct order_date), count(*) desc, sku_id limit 1""",
    )
    busy_days = f"""(select order_date from {lines}
        where promoter_id in ('{p}', '{y}') or sku_id = '{s1}')"""
    # a completed line's completion, and an order of another day it moves to, neither on
    # the days above
    ((event_id, order_a, order_b),) = _q(
        wh,
        f"""select e.event_id, e.order_id,
            (select min(b.order_id) from {lines} as b
             where b.line_no = 1 and b.order_date not in {busy_days}
                 and b.order_date <> a.order_date
                 and b.order_id not in (select order_id from staging.stg_exports__order_events
                                        where event = 'completed')) as other
        from staging.stg_exports__order_events as e
        join {lines} as a on a.order_id = e.order_id and a.line_no = e.line_no
        where e.event = 'completed' and e.line_no = 1 and e.event_id is not null
            and a.order_date not in {busy_days}
        order by e.order_id limit 1""",
    )
    changed_lines = f"""(promoter_id in ('{p}', '{y}', '{z}') or sku_id = '{s1}'
        or order_id in ('{order_a}', '{order_b}'))"""
    involved = {
        r[0]
        for r in _q(
            wh,
            f"""select promoter_id from {lines} where {changed_lines}
            union select inviter_id from staging.stg_exports__promoters where promoter_id in (
                select promoter_id from {lines} where {changed_lines})""",
        )
        if r[0]
    }
    ((t_day, t_promoter),) = _q(
        wh,
        f"""select activity_date, promoter_id from {EARNINGS}
        where orders > 0 and promoter_id not in ({_in(involved | {p, y, z})})
        order by activity_date, promoter_id limit 1""",
    )
    rows_of = {
        "loop": f"promoter_id in ('{p}', '{y}')",
        "former inviter": f"""promoter_id = (select inviter_id from staging.stg_exports__promoters
            where promoter_id = '{p}' order by updated_at desc limit 1)""",
        "platform": f"promoter_id = '{z}'",
        **{
            name: f"""(activity_date, promoter_id) in (
                select order_date, promoter_id from {lines} where {cond})"""
            for name, cond in (
                ("sku merchant", f"sku_id = '{s1}'"),
                ("moved event", f"order_id in ('{order_a}', '{order_b}')"),
            )
        },
    }
    before = {name: _earnings_rows(wh, where) for name, where in rows_of.items()}

    folder = "2026-09-07"
    new_version = "2026-09-07T12:00:00+08:00"
    _write_csv(
        landing / "promoters" / folder / "part-0101.csv",
        [
            dict(
                _latest_csv_row(landing, "promoters", "promoter_id", p),
                inviter_id=y,
                updated_at=new_version,
            ),
            dict(
                _latest_csv_row(landing, "promoters", "promoter_id", z),
                platform="yundian",
                updated_at=new_version,
            ),
        ],
    )
    _write_csv(
        landing / "skus" / folder / "part-0101.csv",
        [
            dict(
                _latest_csv_row(landing, "skus", "sku_id", s1),
                merchant_id="MZNEW01",
                is_self_operated="false",
            )
        ],
    )
    moved = _latest_csv_row(landing, "order_events", "event_id", event_id)
    _write_csv(landing / "order_events" / folder / "part-0101.csv", [dict(moved, order_id=order_b)])
    _tamper(wh, t_day, t_promoter, 1000)
    _deliver(landing, wh)

    assert _refresh_start(wh) == "2026-09-08"  # no new order, click or link
    for name, where in rows_of.items():
        assert _earnings_rows(wh, where) != before[name], name
    # the tampered row is the one difference: it was not recomputed
    _assert_only_the_tampered_row_differs(wh, warehouse["root"], t_day, t_promoter)
    _tamper(wh, t_day, t_promoter, -1000)


def test_f_a_back_dated_rule_restates_the_lines_ordered_since(warehouse):
    """A SKU rule delivered on 09-07, valid from 09-05: every line ordered from 09-04 is
    recomputed (the rule's first changed day, one day earlier: rare, and exact); a row of
    09-01, tampered with, is not."""
    landing, wh = warehouse["landing"], warehouse["wh"]
    ((sku,),) = _q(
        wh,
        """select sku_id from intermediate.int_marts__attributed_lines
        where order_date = date '2026-09-05'
            and sku_id not in (select sku_id from staging.stg_exports__commission_rules
                               where sku_id is not null)
        group by sku_id order by count(*) desc, sku_id limit 1""",
    )
    ((t_promoter,),) = _q(
        wh,
        f"""select min(promoter_id) from {EARNINGS}
        where activity_date = date '2026-09-01' and orders > 0""",
    )
    rows = f"""(activity_date, promoter_id) in (select order_date, promoter_id
        from intermediate.int_marts__attributed_lines where sku_id = '{sku}')"""
    before = _earnings_rows(wh, rows)
    _write_sku_rule(landing, "part-0102.csv", "RZBACKDATED", sku, "0.321", "2026-09-05")
    _tamper(wh, "2026-09-01", t_promoter, 1000)
    _deliver(landing, wh)

    assert _refresh_start(wh) == "2026-09-08"
    assert _earnings_rows(wh, rows) != before
    _assert_only_the_tampered_row_differs(wh, warehouse["root"], "2026-09-01", t_promoter)
    _tamper(wh, "2026-09-01", t_promoter, -1000)


def test_g_a_configuration_change_restates_every_row(warehouse):
    import yaml

    from supernova.dbt_runner import dbt_invoke

    wh = warehouse["wh"]
    project = yaml.safe_load((marts.settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    config = dict(project["vars"]["supernova"], platform_fee_rate="0.20")
    before = _earnings_rows(wh)
    run = ["run", "--select", "promoter_earnings_daily"]
    assert dbt_invoke(wh, run, vars_={"supernova": config}).success
    after = _earnings_rows(wh)
    assert len(after - before) > len(before) // 2
    assert _earnings_difference(wh, warehouse["root"], vars_={"supernova": config}) == (0, 0)
    # and back
    assert dbt_invoke(wh, run).success
    assert _earnings_rows(wh) == before


def test_h_rules_and_a_later_line_and_the_mart_run_alone(warehouse):
    """Three review findings (2026-12-06), each failing before its fix:
    1. the mart run alone right after an ingest (its upstream has not merged the new files)
       refuses, naming them, and changes nothing: it used to record them as consumed and
       never recompute what they change;
    2. a category rule that also carries a stray merchant_id, re-delivered with another
       category: the rule's key was compared as coalesce(sku, merchant, category), so the
       change went unseen;
    3. a line ordered after the mart's last day, added to an order of 09-05, then a rule
       for its SKU from that day: the rules path was skipped when its first day was not
       before the refresh window's, which goes by order date."""
    from supernova.dbt_runner import dbt_invoke

    landing, wh = warehouse["landing"], warehouse["wh"]
    rules = [r for p in sorted((landing / "commission_rules").rglob("*.csv")) for r in _csv_rows(p)]
    ((rule_id, category),) = _q(
        wh,
        """select rule_id, category from staging.stg_exports__commission_rules as r
        where scope = 'category' and rate > 0 and valid_from < timestamp '2026-09-01'
            and (valid_to is null or valid_to > timestamp '2026-09-10')
            and (select count(*) from staging.stg_exports__commission_rules as o
                 where o.category = r.category) = 1
        order by (
            select count(*) from intermediate.int_marts__attributed_lines as a
            join staging.stg_exports__skus as s using (sku_id)
            where s.is_self_operated and s.category = r.category) desc, rule_id
        limit 1""",
    )
    ((order_id, last_line),) = _q(
        wh,
        """select order_id, max(line_no) from intermediate.int_marts__attributed_lines
        where order_date = date '2026-09-05' group by 1 order by 1 limit 1""",
    )
    ((sku,),) = _q(
        wh,
        """select min(sku_id) from staging.stg_exports__skus where sku_id not in (
            select sku_id from staging.stg_exports__commission_rules where sku_id is not null)""",
    )
    stray = dict([r for r in rules if r["rule_id"] == rule_id][-1], merchant_id="MSTRAY")
    head = _latest_csv_row(landing, "orders", "order_id", order_id)
    later_line = dict(
        head,
        line_no=str(last_line + 1),
        sku_id=sku,
        quantity="1",
        unit_price="100.00",
        paid_amount="100.00",
        coupon_amount="0.00",
        shipping_amount="0.00",
        ordered_at="2026-09-09T10:00:00+08:00",
    )
    _write_csv(landing / "commission_rules" / "2026-09-07" / "part-0103.csv", [stray])
    _write_csv(landing / "orders" / "2026-09-05" / "part-0101.csv", [later_line])
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    before = _earnings_rows(wh)
    alone = dbt_invoke(wh, ["run", "--select", "promoter_earnings_daily"])
    assert not alone.success
    messages = " ".join(str(r.message) for r in alone.result.results)
    assert "its upstream has not merged every loaded file yet (commission_rules " in messages
    assert _earnings_rows(wh) == before
    marts.build_step(wh, log=QUIET)
    assert _earnings_difference(wh, warehouse["root"]) == (0, 0)

    other = "toys"  # a category no SKU has: the rule's lines fall back to rate 0
    rows = f"""(activity_date, promoter_id) in (select a.order_date, a.promoter_id
        from intermediate.int_marts__attributed_lines as a
        join staging.stg_exports__skus as s using (sku_id)
        where s.is_self_operated and s.category = '{category}')"""
    before = _earnings_rows(wh, rows)
    _write_csv(
        landing / "commission_rules" / "2026-09-07" / "part-0104.csv",
        [dict(stray, category=other)],
    )
    _deliver(landing, wh)
    assert _earnings_rows(wh, rows) != before
    assert _earnings_difference(wh, warehouse["root"]) == (0, 0)

    _write_sku_rule(landing, "part-0105.csv", "RZLATER", sku, "0.300", "2026-09-09")
    before = _earnings_rows(wh, "activity_date = date '2026-09-05'")
    _deliver(landing, wh)
    assert _earnings_rows(wh, "activity_date = date '2026-09-05'") != before
    assert _earnings_difference(wh, warehouse["root"]) == (0, 0)


AFFINITY = "marts.promoter_category_affinity"


def test_i_a_new_day_alone_counts_the_affinity_window_from_its_lines(warehouse):
    """The daily refresh of the last delivered day alone computes the affinity's one window
    straight from its lines (marts_trailing_window_by_day, cheaper than the spans for one
    day at scale, docs/marts.md "Trailing windows"). Its rows are a full refresh's (which
    goes by the spans), and the days before it are untouched. Only that day is compared:
    after the earlier batches' SKU and promoter changes the older days keep the attributes
    they were built with, as documented."""
    from supernova.dbt_runner import dbt_invoke

    landing, wh, gen = warehouse["landing"], warehouse["wh"], warehouse["generated"]
    day = "2026-09-08"
    older = f"select * from {AFFINITY} where as_of_date < date '{day}'"
    before = sorted(_q(wh, older))
    _copy_days(gen, landing, day, day)
    _deliver(landing, wh)

    compiled = next((wh / "dbt" / "target" / "compiled").rglob("promoter_category_affinity.sql"))
    sql = compiled.read_text()
    assert "cell_windows_days as" in sql and "_spans" not in sql
    assert sorted(_q(wh, older)) == before

    full = warehouse["root"] / "affinity_full"
    shutil.rmtree(full, ignore_errors=True)
    shutil.copytree(
        wh, full, symlinks=True, ignore=shutil.ignore_patterns("dbt", "parquet", "logs")
    )
    args = ["run", "--select", "promoter_category_affinity", "--full-refresh"]
    assert dbt_invoke(full, args).success
    compiled = next((full / "dbt" / "target" / "compiled").rglob("promoter_category_affinity.sql"))
    assert "cell_windows_spans as" in compiled.read_text()
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        on_day = f"where as_of_date = date '{day}'"
        ((rows, visible),) = con.execute(
            f"select count(*), count(*) filter (where not suppressed) from {AFFINITY} {on_day}"
        ).fetchall()
        assert rows > 100 and visible > 0
        assert _rows_only_on_each_side(
            con, f"(select * from inc.{AFFINITY} {on_day})", f"(select * from {AFFINITY} {on_day})"
        ) == (0, 0)
    finally:
        con.close()
