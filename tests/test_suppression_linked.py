"""Suppression linked across the two buyer marts (issue #20; outputs.md: "no published
figure may let a reader compute [a suppressed cell] by arithmetic"; docs/marts.md
"Suppression").

gmv is additive across categories: per month, buyer_demographics_monthly's cell (tier,
gender) is the sum over categories of buyer_category_mix_monthly's cells (category, tier,
gender), and its total row is the sum of the category totals. A reader holding both marts
holds a two-way table with both margins. These tests read both built marts (the same
module-scoped warehouse as tests/test_marts.py) and, per month:

- try the two subtractions a reader would: (a) month gmv - sum(visible category totals),
  (b) demographics cell gmv - sum(visible category cells of that tier and gender);
- decide by linear algebra whether any hidden gmv (category cell, category total,
  demographics cell) is determined by all published gmv figures together.

Buyers and orders are not additive across categories (a buyer or an order can be in
several), so only gmv links the marts.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
import test_marts
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_marts import ATTRIBUTED_LINES, q
from test_properties import assert_no_cell_recoverable

# the fixtures of tests/test_marts.py (module-scoped: this module builds its own warehouse once)
built = test_marts.built
con = test_marts.con

NO_PROFILE = ("-", "-")  # key for buyers without tier / gender


def _key(tier, gender):
    tier = None if tier is None or pd.isna(tier) else int(tier)
    gender = None if gender is None or pd.isna(gender) else str(gender)
    return (
        tier if tier is not None else NO_PROFILE[0],
        gender if gender is not None else NO_PROFILE[1],
    )


def _true_cells(con) -> pd.DataFrame:
    """gmv per month x category x tier x gender, independently from raw."""
    df = q(
        con,
        ATTRIBUTED_LINES
        + """
        select date_trunc('month', order_date)::date as month, coalesce(s.category, 'unknown') as category,
               b.city_tier, b.gender, sum(l.paid_amount) as gmv
        from attributed_lines l left join raw.buyers b using (buyer_id)
        left join raw.skus s on s.sku_id = l.sku_id
        group by all""",
    )
    df["col"] = [_key(t, g) for t, g in zip(df.city_tier, df.gender)]
    df["gmv"] = [Decimal(str(v)) for v in df.gmv]
    return df


def _published(con):
    mix = q(con, "select * from marts.buyer_category_mix_monthly")
    demo = q(con, "select * from marts.buyer_demographics_monthly")
    for df in (mix, demo):
        df["col"] = [_key(t, g) for t, g in zip(df.city_tier, df.gender)]
    return mix, demo


def _months(con):
    """Per month: true gmv per (category, col), and the published mix and demographics
    rows as (category, col or None for a total, suppressed) / (col or None, suppressed)."""
    truth = _true_cells(con)
    mix, demo = _published(con)
    for month, cells in truth.groupby("month"):
        m, d = mix[mix.month == month], demo[demo.month == month]
        yield (
            month,
            {(c, k): g for c, k, g in zip(cells.category, cells.col, cells.gmv)},
            [
                (r.category, None if r.is_total else r.col, bool(r.suppressed))
                for r in m.itertuples()
            ],
            [(None if r.is_total else r.col, bool(r.suppressed)) for r in d.itertuples()],
        )


def check_subtractions(cells: dict, mix: list, demo: list) -> int:
    """(a) month total - visible category totals; (b) demographics cell - visible category
    cells of that tier and gender: where the marginal is visible and something is hidden,
    at least two hidden figures with a non-zero gmv share the residual (gmv >= 0, so a
    residual shared by one non-zero figure, or by zeros only, gives them away).
    Returns how many subtractions were tried."""
    tried = 0
    cat_gmv: dict = {}
    for (c, _), g in cells.items():
        cat_gmv[c] = cat_gmv.get(c, 0) + g
    month_total_hidden = next(h for k, h in demo if k is None)
    if not month_total_hidden:
        hidden = [c for c, k, h in mix if k is None and h]
        nonzero = [c for c in hidden if cat_gmv[c] != 0]
        assert not hidden or len(nonzero) >= 2, ("(a) category totals", hidden, nonzero)
        tried += 1
    for col, col_hidden in demo:
        if col is None or col_hidden:
            continue
        hidden = [c for c, k, h in mix if k == col and h]
        nonzero = [c for c in hidden if cells[(c, col)] != 0]
        assert not hidden or len(nonzero) >= 2, ("(b) column", col, hidden, nonzero)
        tried += 1
    return tried


def _determined(published: np.ndarray, f: np.ndarray) -> bool:
    """f (a linear functional of the cells) is a combination of the published ones."""
    if published.size == 0:
        return False
    y, *_ = np.linalg.lstsq(published.T, f, rcond=None)
    return bool(np.allclose(published.T @ y, f, atol=1e-7))


def check_not_determined(cells: dict, mix: list, demo: list) -> int:
    """Every published gmv of a month (visible category cells, category totals,
    demographics cells, the month total) is a sum of true category cells; no hidden
    figure of either mart may be a linear combination of them. Returns how many hidden
    figures were tried."""
    index = {key: i for i, key in enumerate(cells)}
    n = len(index)

    def functional(pred):
        v = np.zeros(n)
        for key, i in index.items():
            v[i] = 1.0 if pred(*key) else 0.0
        return v

    figures = []  # (name, functional, hidden)
    for c, k, hidden in mix:
        if k is None:
            figures.append((("category total", c), functional(lambda cc, kk, c=c: cc == c), hidden))
        else:
            figures.append(
                (
                    ("category cell", c, k),
                    functional(lambda cc, kk, c=c, k=k: (cc, kk) == (c, k)),
                    hidden,
                )
            )
    for k, hidden in demo:
        if k is None:
            figures.append((("month total",), np.ones(n), hidden))
        else:
            figures.append(
                (("demographics cell", k), functional(lambda cc, kk, k=k: kk == k), hidden)
            )
    assert sorted(((c, k) for c, k, _ in mix if k is not None), key=repr) == sorted(cells, key=repr)
    published = np.array([f for _, f, hidden in figures if not hidden])
    tried = 0
    for name, f, hidden in figures:
        if hidden:
            assert not _determined(published, f), name
            tried += 1
    return tried


def test_subtractions_across_the_two_marts_reveal_no_hidden_gmv(con):
    tried = 0
    for month, cells, mix, demo in _months(con):
        try:
            tried += check_subtractions(cells, mix, demo)
        except AssertionError as e:
            raise AssertionError((month, *e.args)) from None
    assert tried >= 3  # at least one subtraction (a) per month


def test_no_hidden_gmv_is_determined_by_both_marts_together(con):
    hidden_tried = 0
    for month, cells, mix, demo in _months(con):
        try:
            hidden_tried += check_not_determined(cells, mix, demo)
        except AssertionError as e:
            raise AssertionError((month, *e.args)) from None
    assert hidden_tried >= 10


# ---------------------------------------------------------------- generated tables
#
# The linked macro (marts_buyer_marts_linked), compiled by dbt and run by DuckDB on
# generated months: categories x (tier, gender) cells of 1..25 buyers with any gmv
# (zero included). Buyers overlap across categories within a (tier, gender), as real
# buyers do. Both marts' rows go through the same two checks as the built marts, and
# each mart on its own through the within-partition subtraction of tests/test_properties.py.


LINKED_SQL = """
with cells as (
    with lines as (select * from input_lines),
    first_month as (select buyer_id, min(month) as first_month from lines group by buyer_id),
    {{ marts_buyer_cells('lines', 'first_month') }}
),
{{ marts_buyer_marts_linked('cells', 'MART') }}
"""
CATEGORIES = ["apparel", "beauty", "food", "unknown"]
COLUMNS = [(1, "F"), (1, "M"), (2, "F"), (None, None)]


@pytest.fixture(scope="module")
def compiled_linked(tmp_path_factory):
    from ingestion import ensure_raw_schema
    from supernova.dbt_runner import dbt_invoke

    wh = tmp_path_factory.mktemp("compile-linked")
    ensure_raw_schema(wh)
    out = {}
    for mart in ("demographics", "category_mix"):
        res = dbt_invoke(
            wh,
            ["compile", "--inline", LINKED_SQL.replace("MART", mart)],
            {"settlement_month": "2026-09"},
        )
        assert res.success, res.exception
        out[mart] = res.result.results[0].node.compiled_code
    return out


def _lines(table: dict) -> list[tuple]:
    """(category, column index) -> (buyers, gmv): one order per buyer and cell, the
    cell's gmv on its first buyer's line. Buyer i of a column is the same buyer in every
    category."""
    rows = []
    for (cat, k), (buyers, gmv) in sorted(table.items()):
        tier, gender = COLUMNS[k]
        for i in range(buyers):
            rows.append(
                (
                    cat,
                    f"{cat}-{k}-{i}",
                    f"b{k}-{i}",
                    gmv if i == 0 else Decimal("0.00"),
                    tier,
                    gender,
                )
            )
    return rows


def _run_linked(compiled: dict, table: dict):
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            "create table input_lines (month date, category varchar, order_id varchar, buyer_id varchar, "
            "paid_amount decimal(18,2), city_tier integer, gender varchar)"
        )
        con.executemany(
            "insert into input_lines values (date '2026-09-01', ?, ?, ?, ?, ?, ?)", _lines(table)
        )
        out = {}
        for mart, sql in compiled.items():
            cur = con.execute(f"select * from ({sql})")
            names = [d[0] for d in cur.description]
            out[mart] = [dict(zip(names, r)) for r in cur.fetchall()]
        return out
    finally:
        con.close()


cell_values = st.tuples(
    st.integers(min_value=1, max_value=25),
    st.one_of(
        st.just(Decimal("0.00")),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2),
    ),
)
tables = st.dictionaries(
    st.tuples(st.sampled_from(CATEGORIES), st.integers(min_value=0, max_value=len(COLUMNS) - 1)),
    cell_values,
    min_size=1,
    max_size=16,
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(tables)
# one small category whose total is hidden alone ('unknown' with 6 buyers)
@example(
    {
        ("apparel", 0): (30, Decimal("100.00")),
        ("apparel", 1): (30, Decimal("90.00")),
        ("food", 0): (30, Decimal("50.00")),
        ("food", 1): (20, Decimal("40.00")),
        ("unknown", 0): (6, Decimal("60.00")),
    }
)
# one hidden category cell in a (tier, gender) whose demographics cell is shown
@example(
    {
        ("apparel", 0): (30, Decimal("100.00")),
        ("apparel", 1): (30, Decimal("90.00")),
        ("food", 0): (30, Decimal("50.00")),
        ("food", 1): (20, Decimal("40.00")),
        ("food", 2): (5, Decimal("7.00")),
        ("food", 3): (15, Decimal("9.00")),
        ("apparel", 2): (25, Decimal("70.00")),
        ("apparel", 3): (25, Decimal("80.00")),
    }
)
def test_linked_suppression_on_generated_months(compiled_linked, table):
    rows = _run_linked(compiled_linked, table)
    mix_rows, demo_rows = rows["category_mix"], rows["demographics"]

    def col(r):
        return None if r["is_total"] else _key(r["city_tier"], r["gender"])

    cells = {(cat, _key(*COLUMNS[k])): gmv for (cat, k), (_, gmv) in table.items()}
    mix = [(r["category"], col(r), r["suppressed"]) for r in mix_rows]
    demo = [(col(r), r["suppressed"]) for r in demo_rows]
    check_subtractions(cells, mix, demo)
    check_not_determined(cells, mix, demo)

    # each mart on its own: buyers, orders and gmv by subtraction within each partition
    def published(rs):
        return [
            {
                "dim": col(r),
                "suppressed": r["suppressed"],
                **{m: r[m] for m in ("buyers", "orders", "gmv")},
            }
            for r in rs
        ]

    for cat in {c for c, _ in table}:
        part = {
            (_key(*COLUMNS[k])): {"buyers": b, "orders": b, "gmv": g}
            for (c, k), (b, g) in table.items()
            if c == cat
        }
        part[None] = {m: sum(v[m] for v in part.values()) for m in ("buyers", "orders", "gmv")}
        assert_no_cell_recoverable(part, published([r for r in mix_rows if r["category"] == cat]))
    demo_truth = {}
    for (_c, k), (b, g) in table.items():
        t = demo_truth.setdefault(
            _key(*COLUMNS[k]), {"buyers": 0, "orders": 0, "gmv": Decimal("0.00")}
        )
        t["buyers"], t["orders"], t["gmv"] = max(t["buyers"], b), t["orders"] + b, t["gmv"] + g
    demo_truth[None] = {
        m: sum(v[m] for v in demo_truth.values()) for m in ("buyers", "orders", "gmv")
    }
    assert_no_cell_recoverable(demo_truth, published(demo_rows))
