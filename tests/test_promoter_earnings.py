"""promoter_earnings_daily (estimated earnings, 预估佣金, issue #15) and its monthly
reconciliation with the close, on generated tiny data with September 2026 settled.

- The mart equals, to the fen, an independent computation of settlement-rules §2–§3
  written here in SQL from staging (rate by precedence as three correlated look-ups,
  rounding half up as floor(x * 100 + 0.5) / 100 on non-negative amounts, inviter loops
  walked in Python), per day and promoter, for every column.
- The same arithmetic at September's cutoff, on the lines September settled, equals the
  run's accruals; the reconciliation row adds up exactly and matches the ledger.
- The contract: the mart's columns are outputs.md's, in the order the contract declares.

The attribution (§1) is the marts' own (int_marts__attributed_lines, tested in
tests/test_marts.py); what is independent here is the money.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
import yaml

from supernova import marts, settings
from supernova.dbt_runner import dbt_invoke
from supernova.warehouse import connect

MONTH = "2026-09"
CUTOFF = "2026-10-08 00:00:00"

COLUMNS = [
    "activity_date",
    "promoter_id",
    "platform",
    "orders",
    "order_lines",
    "gmv",
    "level1_estimated",
    "level1_on_completed",
    "level1_on_pending",
    "level1_lost_to_refunds_cancels",
    "level2_estimated",
    "level2_on_completed",
    "level2_on_pending",
    "level2_lost_to_refunds_cancels",
]


@pytest.fixture(scope="module")
def settled(tiny_landing, tmp_path_factory):
    """September settled through the CLI, then the mart and the reconciliation built."""
    from supernova.cli import main

    wh = tmp_path_factory.mktemp("earnings-warehouse")
    assert (
        main(["settle", "--month", MONTH, "--landing", str(tiny_landing), "--warehouse", str(wh)])
        == 0
    )
    # as the marts refresh builds it: unit tests run in tests/test_marts.py
    res = dbt_invoke(
        wh,
        ["build", "--select", "+promoter_earnings_daily", "--exclude-resource-type", "unit_test"],
    )
    assert res.success, res.exception
    # the close itself built rpt_promoter_earnings_reconciliation (settle.build_step)
    return wh


def _loops(promoters: dict[str, str | None]) -> set[str]:
    """Promoters whose inviter chain leads back to themselves (§3)."""
    out = set()
    for start in promoters:
        seen, p = set(), promoters.get(start)
        while p is not None and p not in seen:
            if p == start:
                out.add(start)
                break
            seen.add(p)
            p = promoters.get(p)
    return out


def _independent_lines(con, events_before: str | None, lines_sql: str) -> str:
    """SQL: one row per line of `lines_sql` (order_id, line_no, order_date: the order's,
    ordered_at: the line's own, which decides its rate (§2), sku_id, paid_amount, promoter_id) with the promoter's and the inviter's §2–§3 amounts
    at the paid amount and at the base, and whether the line is completed."""
    promoters = dict(
        con.execute("""
        select promoter_id, arg_max(inviter_id, (updated_at, _delivery_date, _file_name, _line_no))
        from staging.stg_exports__promoters group by promoter_id""").fetchall()
    )
    loops = sorted(_loops(promoters))
    loop_list = ", ".join(f"'{p}'" for p in loops) or "''"
    ev_filter = f"and e.event_at < timestamp '{events_before}'" if events_before else ""

    def r2(x: str) -> str:  # half up on a non-negative amount
        return f"cast(floor(({x}) * 100 + 0.5) / 100 as decimal(18,2))"

    return f"""
    with cur as (
        select promoter_id,
               arg_max(platform, (updated_at, _delivery_date, _file_name, _line_no)) as platform,
               arg_max(inviter_id, (updated_at, _delivery_date, _file_name, _line_no)) as inviter_id
        from staging.stg_exports__promoters group by promoter_id
    ),
    l as ({lines_sql}),
    st as (
        select l.*,
               exists (select 1 from staging.stg_exports__order_events e
                       where e.order_id = l.order_id and e.line_no = l.line_no and e.event = 'completed' {ev_filter}) as completed,
               exists (select 1 from staging.stg_exports__order_events e
                       where e.order_id = l.order_id and e.line_no = l.line_no
                         and (e.event = 'cancelled' or (e.event = 'refunded' and e.amount is null)) {ev_filter}) as zeroed,
               coalesce((select sum(e.amount) from staging.stg_exports__order_events e
                         where e.order_id = l.order_id and e.line_no = l.line_no and e.event = 'refunded' {ev_filter}), 0) as refunded,
               s.merchant_id, s.category, coalesce(s.is_self_operated, false) as self_op
        from l left join staging.stg_exports__skus s on s.sku_id = l.sku_id
    ),
    rated as (
        select st.*,
               case when zeroed then 0 else greatest(paid_amount - refunded, 0) end as base,
               coalesce(
                   (select max_by(r.rate, r.rule_id) from staging.stg_exports__commission_rules r
                    where r.scope = 'sku' and r.sku_id = st.sku_id
                      and r.valid_from <= st.ordered_at and (r.valid_to is null or st.ordered_at < r.valid_to)),
                   (select max_by(r.rate, r.rule_id) from staging.stg_exports__commission_rules r
                    where r.scope = 'merchant' and r.merchant_id = st.merchant_id
                      and r.valid_from <= st.ordered_at and (r.valid_to is null or st.ordered_at < r.valid_to)),
                   (select max_by(r.rate, r.rule_id) from staging.stg_exports__commission_rules r
                    where r.scope = 'category' and r.category = st.category and st.self_op
                      and r.valid_from <= st.ordered_at and (r.valid_to is null or st.ordered_at < r.valid_to)),
                   0) as rate,
               case p.platform when 'fenxiang' then 0.70 when 'jingxiaoge' then 0.80
                               when 'jingxiaofu' then 0.80 when 'yundian' then 0.60 else 0 end as s1,
               case when p.platform = 'fenxiang' and p.inviter_id in (select promoter_id from cur)
                         and st.promoter_id not in ({loop_list})
                    then p.inviter_id end as inviter
        from st left join cur p on p.promoter_id = st.promoter_id
    ),
    c as (
        select *, {r2("paid_amount * rate")} as c_paid, {r2("base * rate")} as c_base from rated
    ),
    pool as (
        select *, c_paid - {r2("c_paid * 0.10")} as p_paid, c_base - {r2("c_base * 0.10")} as p_base from c
    )
    select order_id, line_no, order_date, promoter_id, paid_amount, completed, inviter,
           {r2("p_paid * s1")} as l1_paid, {r2("p_base * s1")} as l1_base,
           case when inviter is not null then {r2("p_paid * 0.10")} else 0 end as l2_paid,
           case when inviter is not null then {r2("p_base * 0.10")} else 0 end as l2_base
    from pool
    """


def test_mart_equals_independent_arithmetic(settled):
    with connect(settled, read_only=True) as con:
        lines = _independent_lines(
            con,
            None,
            """
            select a.order_id, a.line_no, a.order_date, o.ordered_at, a.sku_id, a.paid_amount,
                   a.promoter_id
            from intermediate.int_marts__attributed_lines a
            join staging.stg_exports__orders o on o.order_id = a.order_id and o.line_no = a.line_no""",
        )
        expected = con.execute(f"""
            with x as ({lines}),
            rows as (
                select order_date, promoter_id, order_id, paid_amount as gmv,
                       l1_paid, l1_base, case when completed then l1_base else 0 end as l1_done,
                       0 as l2_paid, 0 as l2_base, 0 as l2_done
                from x
                union all
                select order_date, inviter, null, null, 0, 0, 0,
                       l2_paid, l2_base, case when completed then l2_base else 0 end
                from x where inviter is not null
            )
            select order_date, promoter_id, count(distinct order_id), count(order_id), coalesce(sum(gmv), 0),
                   sum(l1_base), sum(l1_done), sum(l1_base) - sum(l1_done), sum(l1_paid) - sum(l1_base),
                   sum(l2_base), sum(l2_done), sum(l2_base) - sum(l2_done), sum(l2_paid) - sum(l2_base)
            from rows group by all order by 1, 2""").fetchall()
        got = con.execute(f"""
            select {", ".join(c for c in COLUMNS if c != "platform")}
            from marts.promoter_earnings_daily order by 1, 2""").fetchall()
        completed_total = con.execute(
            "select sum(level1_on_completed), sum(level2_on_completed) from marts.promoter_earnings_daily"
        ).fetchone()
    norm = [
        tuple(
            Decimal(v) if isinstance(v, (Decimal, int)) and not isinstance(v, bool) else v
            for v in r
        )
        for r in expected
    ]
    got = [
        tuple(
            Decimal(v) if isinstance(v, (Decimal, int)) and not isinstance(v, bool) else v
            for v in r
        )
        for r in got
    ]
    assert len(got) > 1000 and completed_total[0] > 0 and completed_total[1] > 0
    assert got == norm


def test_estimate_of_the_settled_month_equals_its_accruals_line_by_line(settled):
    """September's lines at September's cutoff: the mart's arithmetic gives what the run
    accrued, to the fen, for each line and level (no terms changed after the cutoff)."""
    with connect(settled, read_only=True) as con:
        lines = _independent_lines(
            con,
            CUTOFF,
            f"""
            select o.order_id, o.line_no, cast(h.ordered_at as date) as order_date, o.ordered_at,
                   o.sku_id, o.paid_amount, t.promoter_id
            from settlement.line_terms t
            join staging.stg_exports__orders o on o.order_id = t.order_id and o.line_no = t.line_no
            join (select order_id, arg_min(ordered_at, line_no) as ordered_at
                  from staging.stg_exports__orders group by order_id) h on h.order_id = t.order_id
            where t.first_settlement_month = '{MONTH}'""",
        )
        diff = con.execute(f"""
            with x as ({lines}),
            est as (
                select order_id, line_no, 1 as level, l1_base as amount from x
                union all
                select order_id, line_no, 2, l2_base from x where inviter is not null
            ),
            act as (
                select order_id, line_no, level, amount from settlement.payout_lines
                where settlement_month = '{MONTH}' and kind = 'accrual'
            )
            select count(*) filter (where est.amount is distinct from act.amount), count(*),
                   sum(act.amount)
            from est full join act using (order_id, line_no, level)""").fetchone()
    assert diff[1] > 1000 and diff[2] > 0
    assert diff[0] == 0, diff


def test_reconciliation_adds_up_and_matches_the_ledger(settled):
    with connect(settled, read_only=True) as con:
        cur = con.execute("select * from settlement_build.rpt_promoter_earnings_reconciliation")
        rows = [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]
        ledger = con.execute(f"""
            select sum(l.amount),
                   sum(l.amount) filter (where p.status = 'paid'),
                   sum(l.amount) filter (where p.status = 'held'),
                   sum(l.amount) filter (where p.status = 'forfeited'),
                   sum(l.amount) filter (where p.status = 'below_threshold'),
                   count(distinct (l.order_id, l.line_no))
            from settlement.payout_lines l
            join settlement.payouts p on p.promoter_id = l.beneficiary_id and p.settlement_month = l.settlement_month
            where l.settlement_month = '{MONTH}' and l.kind = 'accrual'""").fetchone()
        settled_lines = con.execute(
            "select count(*) from settlement.line_terms where first_settlement_month = ?", [MONTH]
        ).fetchone()[0]
    assert len(rows) == 1
    r = rows[0]
    assert r["settlement_month"] == MONTH
    assert r["estimated_at_paid"] - r["accrued"] == (
        r["lost_to_refunds"] + r["lost_to_cancels"] + r["in_suspense"] + r["terms_difference"]
    )
    assert r["accrued"] == (
        r["accrued_paid"]
        + r["accrued_held"]
        + r["accrued_forfeited"]
        + r["accrued_below_threshold"]
        + r["accrued_debt"]
    )
    zero = Decimal("0")
    assert (
        r["accrued"],
        r["accrued_paid"],
        r["accrued_held"],
        r["accrued_forfeited"],
        r["accrued_below_threshold"],
    ) == tuple(v or zero for v in ledger[:5])
    assert r["lines_settled"] == settled_lines == ledger[5]
    # September's data has refunds of settled lines and a promoter of each status
    assert r["lost_to_refunds"] > 0 and r["accrued_held"] > 0 and r["accrued_forfeited"] > 0
    assert r["terms_difference"] == 0


def test_the_close_report_reconciles_estimate_with_actual(settled):
    """The published month's report shows where the estimate went, with the close's figures."""
    with connect(settled, read_only=True) as con:
        r = con.execute(
            "select estimated_at_paid, lost_to_refunds, accrued, accrued_held "
            "from settlement_build.rpt_promoter_earnings_reconciliation"
        ).fetchone()
    pages = sorted((settled / "reports" / MONTH).glob(f"{MONTH}-*.html"))
    assert pages, "no report page for the settled month"
    page = pages[-1].read_text(encoding="utf-8")
    section = page.split('id="estimates"', 1)[1].split("</table>", 1)[0]
    for amount in r:
        assert f"{amount:,.2f}" in section, amount
    assert "✗" not in section and "do NOT add up" not in page.split('id="estimates"', 1)[1]


def _parents(warehouse, model: str) -> list[str]:
    """The models a model ref()s, from the manifest of the warehouse's last dbt run."""
    manifest = json.loads((warehouse / "dbt" / "target" / "manifest.json").read_text())
    node = next(
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["name"] == model
    )
    return sorted(uid.split(".")[-1] for uid in node["depends_on"]["nodes"])


def test_estimate_and_reconciliation_share_one_split(settled):
    """The latest platform, inviter and inviter loops are written once
    (int_marts__promoter_split): the mart and the close's reconciliation read it and
    neither derives promoters from staging itself. The mart's refresh hooks compare the
    split with the one its last refresh used; a hook cannot read an ephemeral model, so
    they run the model's own SQL, the macro promoter_split_select (the mart declares
    stg_exports__promoters for them)."""
    for model in ("promoter_earnings_daily", "rpt_promoter_earnings_reconciliation"):
        assert "int_marts__promoter_split" in _parents(settled, model), model
    assert "stg_exports__promoters" not in _parents(settled, "rpt_promoter_earnings_reconciliation")
    project = settings.DBT_PROJECT_DIR
    split = (
        project / "models" / "intermediate" / "marts" / "int_marts__promoter_split.sql"
    ).read_text()
    assert split.rstrip().endswith("{{ promoter_split_select() }}")
    reads_promoters = [
        p.name
        for p in (project / "macros").glob("*.sql")
        if "ref('stg_exports__promoters')" in p.read_text()
    ]
    assert reads_promoters == ["earnings_incremental.sql"]
    macros = (project / "macros" / "earnings_incremental.sql").read_text()
    assert macros.count("ref('stg_exports__promoters')") == 1  # in promoter_split_select only


def test_the_close_reports_read_the_precomputed_attribution(settled):
    """No second attribution over all clicks and no second aggregate of every staged event
    in the close: the reconciliation takes its lines' own times from staging and their
    events as of the cutoff from the close's table (int_settlement__line_events_at_cutoff),
    the funnel its organic orders from the daily precompute and its lines' events from the
    daily summary as of the cutoff (issue 15)."""
    assert _parents(settled, "rpt_promoter_earnings_reconciliation") == [
        "int_marts__promoter_split",
        "int_settlement__line_events_at_cutoff",
        "line_terms",
        "payout_lines",
        "payouts",
        "stg_exports__commission_rules",
        "stg_exports__orders",
        "stg_exports__skus",
        "suspense",
    ]
    assert _parents(settled, "rpt_settlement_run_funnel") == [
        "int_daily__order_attribution",
        "int_settlement__line_events_at_cutoff",
        "int_settlement__line_terms",
        "int_settlement__orphan_events",
        "stg_exports__orders",
        "suspense",
    ]


def test_the_mart_reads_the_daily_event_summary(settled):
    """The mart takes its lines' events from the daily summary (int_daily__line_events),
    not from every staged event, and each line's own ordered_at from staging (§2). Its
    incremental refresh (macros/earnings_incremental.sql) reads the staged events only for
    the orders of the files it has not consumed, the manifest for which those are, the
    promoters for their split, and the versions its refresh window compares."""
    assert _parents(settled, "promoter_earnings_daily") == [
        "int_daily__line_events",
        "int_marts__attributed_lines",
        "int_marts__promoter_split",
        "stg_exports__click_versions",
        "stg_exports__commission_rule_versions",
        "stg_exports__commission_rules",
        "stg_exports__link_versions",
        "stg_exports__manifest",
        "stg_exports__order_events",
        "stg_exports__order_versions",
        "stg_exports__orders",
        "stg_exports__promoters",
        "stg_exports__skus",
    ]


SPEC_OUTPUTS = settings.PROJECT_ROOT.parent / "shared" / "spec" / "outputs.md"


@pytest.mark.skipif(
    not SPEC_OUTPUTS.exists(),
    reason="the business contract (../shared/spec) is not beside this checkout (CI lays it there)",
)
def test_columns_are_outputs_md():
    section = SPEC_OUTPUTS.read_text(encoding="utf-8").split("### promoter_earnings_daily", 1)[1]
    section = section.split("\n### ", 1)[0]
    named = re.findall(r"`([a-z_0-9]+)`", section)
    assert named == COLUMNS[:6]  # activity_date, promoter_id, platform, orders, order_lines, gmv
    # "estimated level-1 and level-2 commission ..., of which on completed lines, on lines
    # still pending, and lost to refunds and cancels": four columns per level
    assert "level-1 and level-2" in section and "completed" in section and "pending" in section


def test_contract_columns(settled):
    yml = yaml.safe_load(
        (settings.DBT_PROJECT_DIR / "models" / "marts" / "promoter_earnings_daily.yml").read_text()
    )
    model = yml["models"][0]
    assert model["config"]["contract"]["enforced"] is True
    assert [c["name"] for c in model["columns"]] == COLUMNS
    with connect(settled, read_only=True) as con:
        cols = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = 'promoter_earnings_daily' order by ordinal_position"
            ).fetchall()
        ]
    assert cols == COLUMNS
    assert not [c for c in cols if re.search("buyer|phone|name", c)]


def test_mart_is_in_the_marts_refresh():
    assert "promoter_earnings_daily" in marts.MART_TABLES
    assert marts.MART_TABLES["promoter_earnings_daily"].startswith("activity_date, promoter_id")
