"""Analytics marts on generated tiny data: every mart against the same figure computed
independently from the raw tables, the generator's known buyer shares, small-cell
suppression, no personal data, the BI example queries (on DuckDB and on the Parquet
copies), incremental refresh == full refresh, and the analytics_marts DAG end to end.

One module-scoped warehouse: deliveries up to 2026-10-10 are ingested and the marts built,
then the remaining deliveries are ingested and the marts refreshed incrementally (the
state every other test reads), then a full refresh is compared with it.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from supernova import marts, serving
from supernova.warehouse import connect

FIRST_PART_LAST_DAY = "2026-10-10"


def QUIET(*a, **k):  # a no-op logger
    return None


# Independent attribution (settlement-rules §1) written without the project's macro:
# the order's lowest line gives buyer and time; the last click by that buyer in
# (ordered_at - 15 days, ordered_at], ties on the greatest click_id; known links only.
ATTRIBUTED_LINES = """
with heads as (
    select order_id, buyer_id, ordered_at
    from (select *, row_number() over (partition by order_id order by line_no) as rn from raw.orders)
    where rn = 1
),
candidates as (
    select h.order_id, c.link_id, c.clicked_at, c.click_id
    from heads h
    join raw.clicks c
      on c.buyer_id = h.buyer_id
     and c.clicked_at <= h.ordered_at
     and c.clicked_at > h.ordered_at - interval 15 day
),
last_click as (
    select order_id, max_by(link_id, strftime(clicked_at, '%Y%m%d%H%M%S') || '|' || click_id) as link_id
    from candidates group by order_id
),
attributed_lines as (
    select cast(h.ordered_at as date) as order_date, o.order_id, o.line_no, h.buyer_id, o.sku_id,
           o.paid_amount, k.promoter_id, k.group_id
    from heads h
    join last_click lc on lc.order_id = h.order_id
    join raw.links k on k.link_id = lc.link_id
    join raw.orders o on o.order_id = h.order_id
)
"""


def _copy_deliveries(src: Path, dst: Path, keep) -> None:
    for export_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for day_dir in sorted(p for p in export_dir.iterdir() if p.is_dir()):
            if keep(day_dir.name) and not (dst / export_dir.name / day_dir.name).exists():
                shutil.copytree(day_dir, dst / export_dir.name / day_dir.name)


def _snapshot(wh: Path) -> dict[str, pd.DataFrame]:
    out = {}
    with connect(wh, read_only=True) as con:
        for t in marts.MART_TABLES:
            df = con.execute(f"select * from marts.{t}").df()
            out[t] = df.sort_values(list(df.columns), na_position="first").reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def built(tiny_landing, tmp_path_factory):
    base = tmp_path_factory.mktemp("marts")
    landing, wh = base / "landing", base / "warehouse"
    landing.mkdir()
    _copy_deliveries(tiny_landing, landing, lambda d: d <= FIRST_PART_LAST_DAY)
    first = marts.refresh(landing, wh, log=QUIET)
    with connect(wh, read_only=True) as con:
        first_last_day = con.execute("select max(as_of_date) from marts.group_status").fetchone()[0]
    _copy_deliveries(tiny_landing, landing, lambda d: d > FIRST_PART_LAST_DAY)
    second = marts.refresh(landing, wh, log=QUIET)
    incremental = _snapshot(wh)
    return {
        "landing": landing,
        "wh": wh,
        "first": first,
        "second": second,
        "first_last_day": str(first_last_day),
        "incremental": incremental,
    }


@pytest.fixture
def con(built):
    """Read-only, per test: closed before anything else opens the file for writing."""
    c = duckdb.connect(str(built["wh"] / "supernova.duckdb"), read_only=True)
    yield c
    c.close()


def q(con, sql, params=None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


# ---------------------------------------------------------------- marts vs raw


def test_raw_keys_unique_so_raw_is_a_fair_reference(con):
    # tiny data has no re-deliveries: raw rows are the staging rows (else the independent
    # figures below would need the §0 rules too)
    assert (
        q(con, "select count(*) - count(distinct (order_id, line_no)) as d from raw.orders").d[0]
        == 0
    )
    assert q(con, "select count(*) - count(distinct click_id) as d from raw.clicks").d[0] == 0


def test_group_daily_activity_matches_raw(con):
    expected = q(
        con,
        ATTRIBUTED_LINES
        + """
        select order_date as activity_date, group_id, count(distinct order_id) as orders,
               count(*) as order_lines, count(distinct buyer_id) as buyers, sum(paid_amount) as gmv
        from attributed_lines where group_id is not null group by all""",
    )
    got = q(
        con,
        "select activity_date, group_id, orders, order_lines, buyers, gmv from marts.group_daily_activity",
    )
    assert len(got) > 1000
    m = expected.merge(
        got, on=["activity_date", "group_id"], how="outer", suffixes=("_e", "_g"), indicator=True
    )
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"].head()
    for c in ("orders", "order_lines", "buyers"):
        assert (m[f"{c}_e"] == m[f"{c}_g"]).all(), c
    assert (m["gmv_e"].astype(str) == m["gmv_g"].astype(str)).all()
    # GMV per day, exactly (decimals)
    daily_e = q(
        con,
        ATTRIBUTED_LINES
        + "select order_date, cast(sum(paid_amount) as varchar) s from attributed_lines "
        "where group_id is not null group by 1 order by 1",
    )
    daily_g = q(
        con,
        "select activity_date as order_date, cast(sum(gmv) as varchar) s from marts.group_daily_activity "
        "group by 1 order by 1",
    )
    assert daily_e.equals(daily_g)


def _status_counts_independently(con, as_of: str) -> dict:
    """Status counts for one as-of date from raw, in pandas."""
    acts = q(
        con,
        ATTRIBUTED_LINES
        + "select group_id, order_date, count(distinct order_id) n from attributed_lines "
        "where group_id is not null group by all",
    )
    groups = q(
        con,
        """select group_id, cast(created_at as date) c, cast(dissolved_at as date) d from (
                 select *, row_number() over (partition by group_id order by snapshot_date desc) rn from raw.groups)
               where rn = 1""",
    )
    day = pd.Timestamp(as_of)
    acts["order_date"] = pd.to_datetime(acts["order_date"])
    acts = acts[acts.order_date <= day]
    last = acts.groupby("group_id").order_date.max()
    counts = {}
    for g in groups.itertuples():
        c, d = pd.Timestamp(g.c), (pd.Timestamp(g.d) if pd.notna(g.d) else None)
        if c > day or (d is not None and day >= d + pd.Timedelta(days=30)):
            continue  # not yet created / dissolved more than 30 days ago: no row
        lo = last.get(g.group_id)
        if d is not None and d <= day:
            s = "dissolved"
        elif lo is not None and (day - lo).days <= 6:
            s = "active"
        elif lo is not None and (day - lo).days <= 29:
            s = "dormant"
        elif lo is None and (day - c).days <= 29:
            s = "new"
        else:
            s = "dead"
        counts[s] = counts.get(s, 0) + 1
    return counts


@pytest.mark.parametrize("as_of", ["2026-09-20", "2026-10-12", "2026-11-07"])
def test_group_status_counts_match_raw(con, as_of):
    expected = _status_counts_independently(con, as_of)
    got = dict(
        q(
            con,
            "select status, count(*) n from marts.group_status where as_of_date = ? group by 1",
            [as_of],
        ).itertuples(index=False)
    )
    assert got == expected
    assert expected.get("dead", 0) > 0 and expected.get("active", 0) > 0


def test_group_status_windows_and_summary_agree(con):
    # orders_7d / orders_30d against group_daily_activity summed over the window
    d = q(
        con,
        """
        select s.as_of_date, s.group_id, s.orders_7d, s.orders_30d,
               coalesce(sum(case when a.activity_date > s.as_of_date - 7 then a.orders end), 0) e7,
               coalesce(sum(a.orders), 0) e30
        from marts.group_status s
        left join marts.group_daily_activity a
          on a.group_id = s.group_id and a.activity_date <= s.as_of_date and a.activity_date > s.as_of_date - 30
        where s.as_of_date in (date '2026-10-01', date '2026-11-07')
        group by all""",
    )
    assert (d.orders_7d == d.e7).all() and (d.orders_30d == d.e30).all()
    # the summary's dead groups and orders per day add up to the row-level marts
    s = q(
        con,
        """select activity_date, sum(dead_groups) dead, sum(existing_groups) ex, sum(orders) o
                  from marts.group_activity_summary group by 1""",
    )
    g = q(
        con,
        """select as_of_date activity_date, count(case when status='dead' then 1 end) dead,
                  count(case when status<>'dissolved' then 1 end) ex from marts.group_status group by 1""",
    )
    a = q(con, "select activity_date, sum(orders) o from marts.group_daily_activity group by 1")
    m = s.merge(g, on="activity_date", suffixes=("", "_g")).merge(
        a, on="activity_date", how="left", suffixes=("", "_a")
    )
    assert len(m) == len(s) == len(g) == 68
    assert (m.dead == m.dead_g).all() and (m.ex == m.ex_g).all()
    assert (m.o == m.o_a.fillna(0)).all()


def test_buyer_demographics_match_raw(con):
    expected = q(
        con,
        ATTRIBUTED_LINES
        + """
        select date_trunc('month', order_date)::date as month, b.city_tier, b.gender,
               count(distinct l.buyer_id) buyers, count(distinct l.order_id) orders, sum(l.paid_amount) gmv
        from attributed_lines l left join raw.buyers b using (buyer_id)
        group by all""",
    )
    got = q(
        con,
        "select month, city_tier, gender, buyers, orders, gmv from marts.buyer_demographics_monthly "
        "where not is_total and not suppressed",
    )
    m = got.merge(expected, on=["month", "city_tier", "gender"], how="left", suffixes=("", "_e"))
    assert len(got) >= 50
    assert (m.buyers == m.buyers_e).all() and (m.orders == m.orders_e).all()
    assert (m.gmv.astype(str) == m.gmv_e.astype(str)).all()
    totals = q(
        con,
        ATTRIBUTED_LINES
        + """
        select date_trunc('month', order_date)::date as month, count(distinct buyer_id) buyers,
               count(distinct order_id) orders, cast(sum(paid_amount) as varchar) gmv
        from attributed_lines group by 1 order by 1""",
    )
    got_t = q(
        con,
        "select month, buyers, orders, cast(gmv as varchar) gmv from marts.buyer_demographics_monthly "
        "where is_total order by month",
    )
    assert totals.astype(str).equals(got_t.astype(str)), (totals, got_t)


def test_generator_shares_come_back_out(con):
    """The generator draws 60 % female buyers, 26 % tier-1, 18 % tier-6 (buyer profiles)."""
    d = q(
        con,
        """
        select month,
            sum(case when gender = 'F' then buyers end) / max(t.total) f,
            sum(case when city_tier = 1 then buyers end) / max(t.total) t1,
            sum(case when city_tier = 6 then buyers end) / max(t.total) t6
        from marts.buyer_demographics_monthly
        join (select month, buyers total from marts.buyer_demographics_monthly where is_total) t using (month)
        where not is_total and not suppressed and month < date '2026-11-01'
        group by month""",
    )
    assert len(d) == 2
    assert ((d.f - 0.60).abs() <= 0.05).all(), d
    assert ((d.t1 - 0.26).abs() <= 0.05).all(), d
    assert ((d.t6 - 0.18).abs() <= 0.05).all(), d


@pytest.mark.parametrize(
    "table,partition",
    [
        ("buyer_demographics_monthly", ["month"]),
        ("buyer_category_mix_monthly", ["month", "category"]),
    ],
)
def test_small_cells_suppressed_and_totals_right(con, table, partition):
    extra_dim = ", coalesce(s.category, 'unknown') as category" if "category" in partition else ""
    extra_join = "left join raw.skus s on s.sku_id = l.sku_id" if "category" in partition else ""
    cells = q(
        con,
        ATTRIBUTED_LINES
        + f"""
        select date_trunc('month', order_date)::date as month {extra_dim}, b.city_tier, b.gender,
               count(distinct l.buyer_id) n
        from attributed_lines l left join raw.buyers b using (buyer_id) {extra_join}
        group by all""",
    )
    mart = q(con, f"select * from marts.{table}")
    keys = partition + ["city_tier", "gender"]
    m = mart[~mart.is_total].merge(cells, on=keys, how="outer", indicator=True)
    assert (m["_merge"] == "both").all()
    # every cell under 10 buyers is hidden, and hidden means every metric empty
    assert m[m.n < 10].suppressed.all()
    assert (m.n < 10).any(), "the test data must contain small cells"
    hidden = m[m.suppressed]
    for c in ("buyers", "new_buyers", "orders", "gmv", "aov", "share_of_buyers", "share_of_gmv"):
        assert hidden[c].isna().all(), c
    # hidden cells cannot be recovered from the total: per partition none, or >= 2 cells
    # adding up to >= 10 buyers
    for _, grp in m.groupby(partition):
        h = grp[grp.suppressed]
        assert len(h) == 0 or (len(h) >= 2 and h.n.sum() >= 10) or len(h) == len(grp), grp
    # totals: one per partition, equal to the sum of all cells' buyers (a buyer is in one
    # cell within a partition: tier and gender are per buyer); hidden under 10 buyers
    tot = mart[mart.is_total].set_index(partition)
    sums = m.groupby(partition).n.sum()
    assert tot.index.is_unique and len(tot) == len(sums)
    small = sums[sums < 10].index
    assert tot.loc[small, "suppressed"].all() and tot.loc[small, "buyers"].isna().all()
    visible = sums[sums >= 10].index
    shown = tot.loc[visible]
    assert (
        shown[~shown.suppressed].buyers.values == sums[visible][~shown.suppressed.values].values
    ).all()


@pytest.mark.parametrize(
    "table,partition",
    [
        ("buyer_demographics_monthly", ["month"]),
        ("buyer_category_mix_monthly", ["month", "category"]),
    ],
)
def test_no_suppressed_cell_recoverable_by_subtraction(con, table, partition):
    """outputs.md: no published figure lets a reader compute a suppressed cell. For every
    partition of the mart, total - sum(visible cells) of buyers, orders and gmv is tried
    against every hidden cell's true value (computed independently from raw)."""
    from test_properties import assert_no_cell_recoverable

    extra_dim = ", coalesce(s.category, 'unknown') as category" if "category" in partition else ""
    extra_join = "left join raw.skus s on s.sku_id = l.sku_id" if "category" in partition else ""
    truth = q(
        con,
        ATTRIBUTED_LINES
        + f"""
        , cells as (
            select date_trunc('month', order_date)::date as month {extra_dim}, b.city_tier, b.gender,
                   l.buyer_id, l.order_id, l.paid_amount
            from attributed_lines l left join raw.buyers b using (buyer_id) {extra_join})
        select {", ".join(partition)}, city_tier, gender, false as is_total, count(distinct buyer_id) as buyers,
               count(distinct order_id) as orders, sum(paid_amount) as gmv
        from cells group by all
        union all
        select {", ".join(partition)}, null, null, true, count(distinct buyer_id), count(distinct order_id),
               sum(paid_amount)
        from cells group by all""",
    )
    mart = q(con, f"select * from marts.{table}")

    def dim(r):
        return None if r["is_total"] else (r["city_tier"], r["gender"])

    def clean(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v

    tried = 0
    for key, grp in truth.groupby(partition):
        key = key if isinstance(key, tuple) else (key,)
        sel = mart
        for c, v in zip(partition, key):
            sel = sel[sel[c] == v]
        t = {
            dim(r): {m: clean(r[m]) for m in ("buyers", "orders", "gmv")}
            for r in grp.to_dict("records")
        }
        t = {k: {**v, "gmv": Decimal(str(v["gmv"]))} for k, v in t.items()}
        published = []
        for r in sel.to_dict("records"):
            row = {"dim": dim(r), "suppressed": bool(r["suppressed"])}
            for m in ("buyers", "orders", "gmv"):
                v = clean(r[m])
                row[m] = None if v is None else (Decimal(str(v)) if m == "gmv" else int(v))
            published.append(row)
        # city_tier/gender may be empty (buyers without a profile): compare as pandas reads them
        t = {(None if k is None else tuple(clean(x) for x in k)): v for k, v in t.items()}
        for row in published:
            if row["dim"] is not None:
                row["dim"] = tuple(clean(x) for x in row["dim"])
        assert_no_cell_recoverable(t, published)
        tried += 1
    assert tried >= 3


def test_promoter_performance_matches_raw(con):
    e = q(
        con,
        ATTRIBUTED_LINES
        + """
        select date_trunc('month', order_date)::date as month, count(distinct order_id) orders,
               cast(sum(paid_amount) as varchar) gmv, count(distinct promoter_id) active
        from attributed_lines group by 1 order by 1""",
    )
    g = q(
        con,
        """select month, sum(orders) orders, cast(sum(gmv) as varchar) gmv, sum(active_promoters) active
                  from marts.promoter_performance_monthly group by 1 order by 1""",
    )
    m = e.merge(g, on="month", suffixes=("_e", "_g"))
    assert len(m) == len(e) == len(g) == 3
    assert (
        (m.orders_e == m.orders_g).all()
        and (m.gmv_e == m.gmv_g).all()
        and (m.active_e == m.active_g).all()
    )
    # dead groups at the month's last as-of date, and no commission before any settlement
    dead = q(
        con,
        """select sum(dead_groups) d from marts.promoter_performance_monthly
                     where month = date '2026-10-01'""",
    ).d[0]
    assert dead == _status_counts_independently(con, "2026-10-31")["dead"]
    assert q(con, "select sum(commission_paid) c from marts.promoter_performance_monthly").c[0] == 0


def _dec(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else Decimal(str(x))


def test_sku_ranking(con):
    day = "2026-11-07"
    got = q(con, "select * from marts.sku_ranking where ranking_date = ? order by sku_rank", [day])
    assert len(got) == q(con, "select count(distinct sku_id) n from raw.skus").n[0]
    assert list(got.sku_rank) == list(range(1, len(got) + 1))
    score = [
        (r or Decimal(0)) * c
        for r, c in zip(got.positive_review_rate.map(_dec), got.commission_rate.map(_dec))
    ]
    assert all(a >= b for a, b in itertools.pairwise(score)), (
        "rank must put high review x commission rate first"
    )
    e = q(
        con,
        ATTRIBUTED_LINES
        + """
        select sku_id, count(distinct order_id) orders, sum(paid_amount) gmv from attributed_lines
        where order_date > date '2026-11-07' - 30 and order_date <= date '2026-11-07' group by 1""",
    )
    m = got.merge(e, on="sku_id", how="left")
    assert (m.attributed_orders_30d == m.orders.fillna(0)).all()
    assert (m.gmv_30d.astype(float).round(2) == m.gmv.fillna(0).astype(float).round(2)).all()
    # a SKU-scoped rule in force at the end of the day wins over everything else
    r = q(
        con,
        """select sku_id, rate from (
                      select *, row_number() over (partition by rule_id
                          order by _delivery_date desc, _file_name desc, _line_no desc) rn
                      from raw.commission_rules)
                  where rn = 1 and scope = 'sku'
                  and valid_from < date '2026-11-08' and (valid_to is null or valid_to >= date '2026-11-08')""",
    )
    assert len(r) > 0
    mr = got.merge(r, on="sku_id")
    assert (mr.commission_rate.map(_dec) == mr.rate.map(_dec)).all()


def test_an_order_with_two_dates_stops_the_marts_build(built, tmp_path):
    """The affinity's windows and the buyer marts' cells add per-order figures up across
    days and buyers, exact only when an order has one date, buyer and promoter: the data
    test one_value_per_key on int_marts__attributed_lines fails the build otherwise. The
    line is moved by hand, so its day is recorded as not yet verified, as the refresh
    that wrote it would (macros/marts_tests_window.sql); `marts_verify_all` finds it
    without the record too."""
    from supernova.dbt_runner import dbt_invoke, failures

    wh = tmp_path / "wh"
    shutil.copytree(built["wh"], wh, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    test = (
        "one_value_per_key_int_marts__attributed_lines_order_date__buyer_id__promoter_id__order_id"
    )
    assert dbt_invoke(wh, ["test", "--select", test]).success
    with duckdb.connect(str(wh / "supernova.duckdb")) as c:
        (order,) = c.execute(
            "select order_id from intermediate.int_marts__attributed_lines "
            "group by order_id having count(*) > 1 order by order_id limit 1"
        ).fetchone()
        c.execute(
            "update intermediate.int_marts__attributed_lines set order_date = order_date + 1 "
            "where order_id = ? and line_no = (select max(line_no) from "
            "intermediate.int_marts__attributed_lines where order_id = ?)",
            [order, order],
        )
    expected = [f"{test}: fail: Got 1 result, configured to fail if != 0"]
    res = dbt_invoke(wh, ["test", "--select", test], {"marts_verify_all": True})
    assert [f.line() for f in failures(res)] == expected
    with duckdb.connect(str(wh / "supernova.duckdb")) as c:
        c.execute(
            "update intermediate_state.tests_unverified set unverified_from = ("
            "select max(order_date) from intermediate.int_marts__attributed_lines "
            "where order_id = ?) where model = 'int_marts__attributed_lines'",
            [order],
        )
    res = dbt_invoke(wh, ["test", "--select", test])
    assert not res.success
    assert [f.line() for f in failures(res)] == expected


# ---------------------------------------------------------------- no personal data

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
BUYER_ID = re.compile(r"^B\d{8}$")


def test_no_personal_data_in_marts(con, built):
    cols = q(
        con,
        "select table_name, column_name from information_schema.columns where table_schema = 'marts'",
    )
    assert set(cols.table_name) == set(marts.MART_TABLES)
    bad = cols[cols.column_name.str.contains("phone|name|buyer_id|birth", regex=True)]
    assert bad.empty, bad
    for t in marts.MART_TABLES:
        df = q(con, f"select * from marts.{t}")
        for c in df.columns:
            if df[c].dtype == object:
                values = df[c].dropna().astype(str)
                assert not values.str.contains(PHONE).any(), (t, c)
                assert not values.str.match(BUYER_ID).any(), (t, c)
    # and the Parquet copies hold exactly the tables' rows, one file per month of the
    # mart's date column (a DATE in every mart), or per day for the marts copied by day,
    # each with that period's rows only
    assert marts.DAILY_COPIES == {"group_status", "promoter_category_affinity"}
    for t, n in built["second"]["rows"].items():
        col = marts.split_column(t)
        assert q(
            con,
            f"select data_type from information_schema.columns where table_schema = 'marts' "
            f"and table_name = '{t}' and column_name = '{col}'",
        ).data_type.tolist() == ["DATE"]
        folder = built["wh"] / "parquet" / "marts" / t
        period = "%Y-%m-%d" if t in marts.DAILY_COPIES else "%Y-%m"
        periods = q(
            con, f"select distinct strftime({col}, '{period}') as p from marts.{t} order by 1"
        ).p
        assert sorted(p.name for p in folder.iterdir()) == [f"part-{p}.parquet" for p in periods], t
        per_file = (
            duckdb.connect()
            .execute(
                f"select filename, count(*), count(distinct strftime({col}, '{period}')) "
                f"from read_parquet('{folder}/*.parquet', filename = true) group by filename"
            )
            .fetchall()
        )
        assert sum(r[1] for r in per_file) == n and {r[2] for r in per_file} == {1}, t
    assert not list((built["wh"] / "parquet" / "marts").glob(".*"))


# ---------------------------------------------------------------- BI queries


def test_bi_queries_run_on_duckdb_and_parquet(con, built):
    queries = marts.bi_queries()
    assert set(queries) == {
        "female_buyer_share_by_month",
        "gmv_aov_by_city_tier",
        "dead_group_rate_by_platform_and_owner_role",
        "orders_per_group_per_day",
        "top_categories_by_city_tier",
    }
    doc = (marts.settings.PROJECT_ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    # the BI views file: views over the Parquet copies only, opened read-only like a BI tool
    pq_con = duckdb.connect(str(serving.catalog_path(built["wh"])), read_only=True)
    for name, sql in queries.items():
        assert name in doc, f"docs/bi.md does not mention {name}"
        a, b = con.execute(sql).df(), pq_con.execute(sql).df()
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    female = con.execute(queries["female_buyer_share_by_month"]).df()
    assert ((female.female_share[:2] - 0.60).abs() <= 0.05).all()
    per_day = con.execute(queries["orders_per_group_per_day"]).df()
    assert len(per_day) == 68
    top = con.execute(queries["top_categories_by_city_tier"]).df()
    assert set(top.city_tier) == {1, 2, 3, 4, 5, 6}


# ---------------------------------------------------------------- incremental


def test_incremental_refresh_equals_full_refresh(built, monkeypatch):
    wh = built["wh"]
    assert built["first_last_day"] == FIRST_PART_LAST_DAY
    assert built["second"]["ingest"]["files_loaded"] > 0
    incremental = built["incremental"]
    assert str(incremental["group_status"].as_of_date.max())[:10] == "2026-11-07"
    monkeypatch.delenv("SUPERNOVA_DBT_THREADS", raising=False)
    marts.build_step(wh, full_refresh=True, log=QUIET)
    # a marts build runs one model at a time (marts.build_threads: memory and disk at scale)
    log = (wh / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert [line for line in log.splitlines() if "Concurrency:" in line][-1].endswith(
        "Concurrency: 1 threads (target='duckdb')"
    )
    full = _snapshot(wh)
    for t in marts.MART_TABLES:
        assert len(incremental[t]) > 0, t
        pd.testing.assert_frame_equal(incremental[t], full[t], obj=t)


def test_a_build_out_of_memory_says_what_to_do(monkeypatch):
    """DuckDB out of its memory limit in the marts build (what the affinity's first build
    does at `target3x` with the default 6 GB, docs/benchmarks.md): the failure says which
    limit was in force and what to do; any other failure gets no such advice."""
    monkeypatch.setenv("SUPERNOVA_DUCKDB_MEMORY_LIMIT", "6GB")
    oom = (
        "promoter_category_affinity: error: Runtime Error in model promoter_category_affinity "
        "(models/marts/promoter_category_affinity.sql)\n  Out of Memory Error: failed to "
        "allocate data of size 2.0 MiB (5.5 GiB/5.5 GiB used)"
    )
    advice = marts.out_of_memory_advice([oom])
    assert "SUPERNOVA_DUCKDB_MEMORY_LIMIT=6GB" in advice
    assert "--full-refresh" in advice and "temporary files" in advice
    assert marts.out_of_memory_advice(["sku_ranking: fail: Got 1 result"]) == ""


def test_incremental_run_only_recomputes_new_days(built):
    """With no new delivery, an incremental run recomputes nothing: it starts the day after
    the watermark (every file is consumed), not at the whole history."""
    from supernova.dbt_runner import dbt_invoke

    wh = built["wh"]
    models = [
        "int_marts__attributed_lines",
        "int_marts__buyer_cells",
        "group_daily_activity",
        "group_status",
        "group_activity_summary",
        "sku_ranking",
    ]
    res = dbt_invoke(wh, ["compile", "--select", *models])
    assert res.success
    compiled = {p.stem: p.read_text() for p in (wh / "dbt" / "target" / "compiled").rglob("*.sql")}
    assert "as_of_date >= cast('2026-11-08' as date)" in compiled["group_status"]
    for m in models:
        # every date literal is the refresh start (or, for group_status's windows, 29 days
        # before it); a full rebuild would start at the first order day 2026-09-01
        starts = re.findall(r"cast\('(\d{4}-\d\d-\d\d)' as date\)", compiled[m])
        assert starts and min(starts) >= "2026-10-09", (m, starts)


ONE_DAY_MODELS = {
    # model: (a CTE only the one-day path compiles, one only the path over every day has)
    "promoter_category_affinity": ("cell_windows_days as", "cell_windows_spans as"),
    "group_status": ("group by gd.as_of_date, gd.group_id", "rows between 29 preceding"),
}


def test_a_one_day_refresh_computes_that_day_alone(built, tmp_path):
    """The daily refresh of the last delivered day alone computes that day's windows
    directly: the affinity counts its one window straight from its 30 days of lines
    (marts_trailing_window_by_day), group_status aggregates each group's activity of the
    30 days instead of running windows over every day (docs/marts.md): both cheaper for
    one day at scale. On a copy: a full refresh (the path over every day) is kept as the
    reference, the two marts then forget the last day's files and refresh that day by
    themselves: every row is the reference's."""
    from conftest import _rows_only_on_each_side

    from supernova.dbt_runner import dbt_invoke

    wh = tmp_path / "wh"
    shutil.copytree(built["wh"], wh, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    compiled_dir = wh / "dbt" / "target" / "compiled" / "supernova" / "models" / "marts"
    select = ["--select", *ONE_DAY_MODELS]
    assert dbt_invoke(wh, ["run", *select, "--full-refresh"]).success
    for model, (one_day, every_day) in ONE_DAY_MODELS.items():
        sql = (compiled_dir / f"{model}.sql").read_text()
        assert every_day in sql and one_day not in sql, model
    with duckdb.connect(str(wh / "supernova.duckdb")) as c:
        for model in ONE_DAY_MODELS:
            c.execute(f"create table marts.{model}__reference as select * from marts.{model}")
        ((forgotten,),) = c.execute(
            "delete from staging.staged_files where model in "
            f"({', '.join(repr(m) for m in ONE_DAY_MODELS)}) "
            "and file_path like '%/2026-11-07/%'"
        ).fetchall()
    assert forgotten > 0
    assert dbt_invoke(wh, ["run", *select]).success
    for model, (one_day, every_day) in ONE_DAY_MODELS.items():
        sql = (compiled_dir / f"{model}.sql").read_text()
        assert one_day in sql and every_day not in sql, model
        # the refresh starts on the last delivered day and reads the 29 days before it
        days = sorted(set(re.findall(r"cast\('(\d{4}-\d\d-\d\d)' as date\)", sql)))
        assert days == ["2026-10-09", "2026-11-07"], (model, days)
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as c:
        ((rows, visible),) = c.execute(
            f"select count(*), count(*) filter (where not suppressed) from {AFFINITY} "
            "where as_of_date = date '2026-11-07'"
        ).fetchall()
        assert rows > 500 and visible > 0
        statuses = c.execute(
            "select status, count(*) from marts.group_status "
            "where as_of_date = date '2026-11-07' group by 1"
        ).fetchall()
        assert {"active", "dormant", "dead"} <= {s for s, _ in statuses}, statuses
        for model in ONE_DAY_MODELS:
            reference = f"marts.{model}__reference"
            assert _rows_only_on_each_side(c, f"marts.{model}", reference) == (0, 0), model


CELLS = "intermediate.int_marts__buyer_cells"


def _cells_full_refresh_differences(wh: Path, tmp: Path, tampered_month: str) -> tuple:
    """Compare the incremental int_marts__buyer_cells (with its month_total row of
    `tampered_month` raised by 1000 of gmv before the batch) with a --full-refresh of it on
    a copy: (rows only on each side with the tampering undone, rows still tampered)."""
    from conftest import _rows_only_on_each_side

    from supernova.dbt_runner import dbt_invoke

    full = tmp / "full"
    shutil.rmtree(full, ignore_errors=True)
    shutil.copytree(wh, full, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    args = ["run", "--select", "int_marts__buyer_cells", "--full-refresh"]
    assert dbt_invoke(full, args).success
    with duckdb.connect(str(full / "supernova.duckdb"), read_only=True) as c:
        c.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        tampered = f"grain = 'month_total' and month = date '{tampered_month}'"
        untampered = f"""(select * replace (case when {tampered} then gmv - 1000 else gmv end
            as gmv) from inc.{CELLS})"""
        differences = _rows_only_on_each_side(c, untampered, CELLS)
        ((still_tampered,),) = c.execute(
            f"""select count(*) from inc.{CELLS} as i join {CELLS} as f using (grain, month)
            where i.{tampered} and i.gmv = f.gmv + 1000"""
        ).fetchall()
    return differences, still_tampered


def _tamper_cells(wh: Path, month: str, gmv_delta: int) -> None:
    with duckdb.connect(str(wh / "supernova.duckdb")) as c:
        c.execute(
            f"update {CELLS} set gmv = gmv + {gmv_delta} "
            f"where grain = 'month_total' and month = date '{month}'"
        )


def test_buyer_cells_restate_the_old_months_of_changed_buyers_and_skus(built, tmp_path):
    """int_marts__buyer_cells refreshes by month (macros/marts_months.sql): a buyer's new
    profile and a SKU's new category restate the months their lines fall in, and only
    those (and the latest month, always recomputed). Two batches with no new order: a
    buyer seen only in September changes tier and gender, then a SKU sold only in October
    changes category. After each the cells equal a --full-refresh, except one month_total
    row of the month the batch does not touch, raised by 1000 before it: not recomputed.
    Either path removed leaves its month stale and fails."""
    from test_marts_late_files import _write_csv

    from ingestion import ingest

    landing, wh = tmp_path / "landing", tmp_path / "wh"
    shutil.copytree(built["landing"], landing)
    shutil.copytree(built["wh"], wh, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    lines = "intermediate.int_marts__attributed_lines"
    month_of = "date_trunc('month', order_date)"
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as c:
        ((buyer, tier, gender),) = c.execute(
            f"""select b.buyer_id, b.city_tier, b.gender
            from staging.stg_exports__buyers as b join {lines} as l using (buyer_id)
            where b.city_tier is not null and b.gender in ('F', 'M')
            group by all having max({month_of}) = date '2026-09-01'
            order by count(*) desc, 1 limit 1"""
        ).fetchall()
        buyer_row = _row_as_csv(
            c,
            "select buyer_id, gender, birth_year, city, city_tier, "
            "strftime(registered_at, '%Y-%m-%dT%H:%M:%S+08:00') as registered_at "
            f"from staging.stg_exports__buyers where buyer_id = '{buyer}'",
        )
        ((sku, category),) = c.execute(
            f"""select s.sku_id, s.category
            from staging.stg_exports__skus as s join {lines} as l using (sku_id)
            group by all having min({month_of}) = date '2026-10-01'
                and max({month_of}) = date '2026-10-01'
            order by count(*) desc, 1 limit 1"""
        ).fetchall()
        sku_row = _row_as_csv(
            c,
            "select sku_id, merchant_id, category, is_self_operated, positive_review_rate, "
            f"title from staging.stg_exports__skus where sku_id = '{sku}'",
        )
        september = c.execute(f"select * from {CELLS} where month = date '2026-09-01'").df()
        october = c.execute(f"select * from {CELLS} where month = date '2026-10-01'").df()

    def deliver(export: str, row: dict) -> None:
        _write_csv(landing / export / "2026-11-08" / f"part-{export}.csv", [row])
        assert ingest(landing, wh, progress=QUIET, quiet_seconds=0).ok
        marts.build_step(wh, log=QUIET)

    # 1. the buyer's new profile: September restated, October not
    _tamper_cells(wh, "2026-10-01", 1000)
    deliver("buyers", dict(buyer_row, city_tier=tier % 6 + 1, gender={"F": "M", "M": "F"}[gender]))
    assert _cells_full_refresh_differences(wh, tmp_path, "2026-10-01") == ((0, 0), 1)
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as c:
        after = c.execute(f"select * from {CELLS} where month = date '2026-09-01'").df()
    assert not _same_rows(september, after)  # the batch did change September
    _tamper_cells(wh, "2026-10-01", -1000)

    # 2. the SKU's new category: October restated, September not
    _tamper_cells(wh, "2026-09-01", 1000)
    deliver("skus", dict(sku_row, category=f"{category}-renamed"))
    assert _cells_full_refresh_differences(wh, tmp_path, "2026-09-01") == ((0, 0), 1)
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as c:
        after = c.execute(f"select * from {CELLS} where month = date '2026-10-01'").df()
        (categories,) = c.execute(
            f"select count(*) from {CELLS} where category = '{category}-renamed'"
        ).fetchone()
    assert categories > 0 and not _same_rows(october, after)


def _row_as_csv(con, sql: str) -> dict:
    """The one row of `sql` as CSV field values (null: empty)."""
    cur = con.execute(sql)
    (row,) = cur.fetchall()
    return {d[0]: "" if v is None else str(v) for d, v in zip(cur.description, row)}


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    key = list(a.columns)
    a = a.sort_values(key, na_position="first").reset_index(drop=True)
    b = b.sort_values(key, na_position="first").reset_index(drop=True)
    return a.equals(b)


AFFINITY = "marts.promoter_category_affinity"
AFFINITY_KEY_TEST = (
    "unique_combination_of_columns_promoter_category_affinity_as_of_date__promoter_id__"
    "platform__category"
)
TESTS_STATE = "marts_state.tests_unverified"


def test_incremental_marts_tests_check_the_rows_not_yet_verified(built, tmp_path):
    """An incremental mart's data tests check the rows from U, the earliest refresh start
    since its tests last all passed (macros/marts_tests_window.sql), not the whole table
    every day. A duplicate key planted at an old day stands for a run whose tests failed:
    with U at that day the next build fails on it and keeps U; a test selection leaving
    out some of the mart's tests verifies nothing; a passing build verifies (U null), and
    then an old row is no longer read by the daily tests, but is by `marts_verify_all`
    and by the whole-table test of a mart without a record."""
    from supernova.dbt_runner import dbt_invoke, failures

    wh = tmp_path / "wh"
    shutil.copytree(built["wh"], wh, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    db = str(wh / "supernova.duckdb")
    with duckdb.connect(db, read_only=True) as c:
        state = dict(c.execute(f"select model, unverified_from from {TESTS_STATE}").fetchall())
        (old_day,) = c.execute(f"select min(as_of_date) + 3 from {AFFINITY}").fetchone()
    assert state == dict.fromkeys(
        [
            "group_activity_summary",
            "group_daily_activity",
            "group_status",
            "promoter_category_affinity",
            "promoter_earnings_daily",
            "sku_ranking",
        ]
    )

    def plant_duplicate() -> None:
        with duckdb.connect(db) as c:
            c.execute(
                f"insert into {AFFINITY} select * from {AFFINITY} "
                f"where as_of_date = date '{old_day}' order by all limit 1"
            )

    def remove_duplicate() -> None:
        with duckdb.connect(db) as c:
            c.execute(
                f"create temp table kept as select distinct * from {AFFINITY} "
                f"where as_of_date = date '{old_day}'"
            )
            c.execute(f"delete from {AFFINITY} where as_of_date = date '{old_day}'")
            c.execute(f"insert into {AFFINITY} select * from kept")

    def unverified_from():
        with duckdb.connect(db, read_only=True) as c:
            rows = c.execute(
                f"select unverified_from from {TESTS_STATE} "
                "where model = 'promoter_category_affinity'"
            ).fetchall()
        return rows[0][0] if rows else "no record"

    def failed_tests(args, vars_=None) -> list[str]:
        res = dbt_invoke(wh, args, vars_)
        return sorted(f.line().split(":")[0] for f in failures(res) if not f.skipped)

    build = ["build", "--select", "promoter_category_affinity"]
    # 1. a run whose tests failed left a duplicate at old_day and U = old_day
    plant_duplicate()
    with duckdb.connect(db) as c:
        c.execute(
            f"update {TESTS_STATE} set unverified_from = date '{old_day}' "
            "where model = 'promoter_category_affinity'"
        )
    assert failed_tests(build) == [AFFINITY_KEY_TEST]
    assert str(unverified_from()) == str(old_day)
    # 2. the duplicate removed, one of the mart's tests alone passes but verifies nothing
    remove_duplicate()
    assert failed_tests(["test", "--select", AFFINITY_KEY_TEST]) == []
    assert str(unverified_from()) == str(old_day)
    # 3. every test passes: verified
    assert failed_tests(build) == []
    assert unverified_from() is None
    # 4. a verified row is not read again by the daily tests, but is on request ...
    plant_duplicate()
    assert failed_tests(build) == []
    verify_all = ["test", "--select", "promoter_category_affinity"]
    assert failed_tests(verify_all, {"marts_verify_all": True}) == [AFFINITY_KEY_TEST]
    # ... and when the mart has no record (the first run after this was deployed): its
    # tests run alone read every row, and so do those of its first build, which records
    # every row as unverified
    with duckdb.connect(db) as c:
        c.execute(f"delete from {TESTS_STATE} where model = 'promoter_category_affinity'")
    assert failed_tests(verify_all) == [AFFINITY_KEY_TEST]
    assert unverified_from() == "no record"
    assert failed_tests(build) == [AFFINITY_KEY_TEST]
    assert str(unverified_from()) == "0001-01-01"


def test_attributed_lines_tests_read_whole_orders_from_the_unverified_day(built, tmp_path):
    """int_marts__attributed_lines' key (order_id, line_no) has no date in it: its tests
    read every line of the orders with a line from U (macros/marts_tests_window.sql), so a
    line copied from an old order onto a recent day is caught by the key test and by
    one_value_per_key, though the old copy lies before U (a filter on the date alone would
    see one copy and pass)."""
    from supernova.dbt_runner import dbt_invoke, failures

    wh = tmp_path / "wh"
    shutil.copytree(built["wh"], wh, symlinks=True, ignore=shutil.ignore_patterns("parquet"))
    lines = "intermediate.int_marts__attributed_lines"
    with duckdb.connect(str(wh / "supernova.duckdb")) as c:
        ((unverified, group),) = c.execute(
            "select unverified_from, group_column from intermediate_state.tests_unverified "
            "where model = 'int_marts__attributed_lines'"
        ).fetchall()
        assert (unverified, group) == (None, "order_id")  # verified by the fixture's builds
        (last_day,) = c.execute(f"select max(order_date) from {lines}").fetchone()
        c.execute(
            f"""insert into {lines}
            select * replace (date '{last_day}' as order_date) from {lines}
            where order_id = (select min(order_id) from {lines}
                              where order_date = (select min(order_date) from {lines}))
                and line_no = 1"""
        )
        c.execute(
            f"update intermediate_state.tests_unverified set unverified_from = date '{last_day}' "
            "where model = 'int_marts__attributed_lines'"
        )
    res = dbt_invoke(wh, ["test", "--select", "int_marts__attributed_lines"])
    assert sorted(f.name for f in failures(res)) == [
        "one_value_per_key_int_marts__attributed_lines_order_date__buyer_id__promoter_id__order_id",
        "unique_combination_of_columns_int_marts__attributed_lines_order_id__line_no",
    ]


# ---------------------------------------------------------------- DAG


def test_dag_loads(dagbag):
    assert "analytics_marts" not in dagbag.import_errors
    dag = dagbag.dags["analytics_marts"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait_for_warehouse",
        "ingest",
        "build",
        "parquet",
    ]
    assert {"landing", "warehouse", "full_refresh", "verify_all"} <= set(dag.params.keys())
    assert "supernova://warehouse/raw" in str(dag.timetable.asset_condition)


def test_dag_runs_end_to_end(airflow_db, dagbag, built):
    wh = built["wh"]
    for p in (wh / "parquet" / "marts").iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    dag = dagbag.dags["analytics_marts"]
    run = dag.test(run_conf={"landing": str(built["landing"]), "warehouse": str(wh)})
    assert str(run.state).endswith("success")
    assert sorted(p.name for p in (wh / "parquet" / "marts").iterdir()) == sorted(marts.MART_TABLES)
    after = _snapshot(wh)
    for t in marts.MART_TABLES:
        pd.testing.assert_frame_equal(built["incremental"][t], after[t], obj=t)


def test_dag_fails_on_a_broken_warehouse_path(airflow_db, dagbag, tmp_path):
    dag = dagbag.dags["analytics_marts"]
    run = dag.test(
        run_conf={"landing": str(tmp_path / "missing"), "warehouse": str(tmp_path / "wh")}
    )
    assert not str(run.state).endswith("success")


# ---------------------------------------------------------------- dbt unit tests of the marts


@pytest.fixture(scope="module")
def empty_marts_warehouse(tmp_path_factory):
    """Raw views and empty staging / marts tables: unit tests need their inputs' types."""
    from ingestion import ensure_raw_schema
    from supernova.dbt_runner import dbt_invoke

    wh = tmp_path_factory.mktemp("empty-marts")
    ensure_raw_schema(wh)
    res = dbt_invoke(wh, ["run", "--empty", "--select", "+path:models/marts"], {})
    assert res.success, res.exception
    return wh


def test_every_marts_unit_test_passes(empty_marts_warehouse):
    from supernova.dbt_runner import dbt_invoke

    res = dbt_invoke(
        empty_marts_warehouse, ["test", "--select", "test_type:unit,path:models/marts"], {}
    )
    ran = [r for r in res.result.results if r.node.resource_type == "unit_test"]
    assert {r.node.name for r in ran} >= {
        "promoter_category_affinity_window_shares_lift_and_suppression"
    }
    failed = [(r.node.name, r.message) for r in ran if str(r.status) != "pass"]
    assert res.success and not failed, failed


def test_every_intermediate_marts_unit_test_passes(empty_marts_warehouse):
    """The marts' shared intermediate models (path:models/intermediate/marts, outside the
    selection above): int_marts__promoter_split's latest version and inviter loops."""
    from supernova.dbt_runner import dbt_invoke

    res = dbt_invoke(
        empty_marts_warehouse,
        ["test", "--select", "test_type:unit,path:models/intermediate/marts"],
        {},
    )
    ran = [r for r in res.result.results if r.node.resource_type == "unit_test"]
    assert {r.node.name for r in ran} >= {
        "int_marts__promoter_split_latest_version_and_inviter_loops"
    }
    failed = [(r.node.name, r.message) for r in ran if str(r.status) != "pass"]
    assert res.success and not failed, failed


def test_promoter_category_affinity_matches_raw(con):
    """The mart against the same figures computed from raw for three as-of dates: every
    cell's buyers / orders / gmv over the 30 days ending that day, visible exactly when
    the suppression rule allows, shares exact; and no hidden cell recoverable from the
    promoter's total (which the shares imply)."""
    from test_properties import assert_no_cell_recoverable

    for as_of in ("2026-10-01", "2026-10-31", "2026-11-07"):
        truth = q(
            con,
            ATTRIBUTED_LINES
            + f"""
            , w as (
                select l.*, coalesce(s.category, 'unknown') as category
                from attributed_lines l left join raw.skus s using (sku_id)
                where l.order_date between date '{as_of}' - 29 and date '{as_of}')
            select promoter_id, category, count(distinct buyer_id) as buyers, count(distinct order_id) as orders,
                   sum(paid_amount) as gmv
            from w group by all
            union all
            select promoter_id, null, count(distinct buyer_id), count(distinct order_id), sum(paid_amount)
            from w group by all""",
        )
        mart = q(
            con, "select * from marts.promoter_category_affinity where as_of_date = ?", [as_of]
        )
        cells = truth[truth.category.notna()]
        assert len(mart) == len(cells) > 0
        m = mart.merge(cells, on=["promoter_id", "category"], suffixes=("", "_raw"))
        assert len(m) == len(mart)
        assert (m[m.buyers_raw < 10].suppressed).all()
        shown = m[~m.suppressed]
        assert len(shown) > 0
        assert (shown.buyers == shown.buyers_raw).all() and (shown.orders == shown.orders_raw).all()
        assert all(Decimal(str(a)) == Decimal(str(b)) for a, b in zip(shown.gmv, shown.gmv_raw))
        totals = truth[truth.category.isna()].set_index("promoter_id")
        for r in shown.itertuples():
            want = (
                Decimal(str(r.gmv_raw)) / Decimal(str(totals.loc[r.promoter_id, "gmv"]))
            ).quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP")
            assert Decimal(str(r.share_of_promoter_gmv)) == want, r
        for promoter, grp in m.groupby("promoter_id"):
            t = {
                r.category: {
                    "buyers": int(r.buyers_raw),
                    "orders": int(r.orders_raw),
                    "gmv": Decimal(str(r.gmv_raw)),
                }
                for r in grp.itertuples()
            }
            tot = totals.loc[promoter]
            t[None] = {
                "buyers": int(tot.buyers),
                "orders": int(tot.orders),
                "gmv": Decimal(str(tot.gmv)),
            }
            published = [
                {
                    "dim": r.category,
                    "suppressed": bool(r.suppressed),
                    **{
                        k: (
                            None
                            if r.suppressed
                            else (Decimal(str(getattr(r, k))) if k == "gmv" else int(getattr(r, k)))
                        )
                        for k in ("buyers", "orders", "gmv")
                    },
                }
                for r in grp.itertuples()
            ]
            # the promoter's total is implied by any visible cell's share: gmv / share
            published.append({"dim": None, "suppressed": not (~grp.suppressed).any(), **t[None]})
            assert_no_cell_recoverable(t, published, metrics=("gmv",))
