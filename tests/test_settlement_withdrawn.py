"""Withdrawn and renewed completions (settlement-rules §2, 2026-12-03) settled end to end
through the real monthly_settlement DAG (`dag.test()`), on generated tiny data
(2026-09-01 .. 2026-12-08, so that November can settle too):

  1. September settles and publishes. Two September lines with accruals on both levels
     are picked: A and B (only a `paid` and one `completed` event each, no refund).
  2. Upstream corrects both completions (same event_id, a later delivery): A's is
     withdrawn (the event is now `paid`), B's moves to 2026-11-20, after October's cutoff.
     The same delivery holds an event of an order line never delivered (an orphan).
  3. October settles and publishes: A and B are clawed back on both levels, exactly what
     September posted; every invariant holds; the orphan is a finding.
  4. A completes again (a new event on 2026-11-15); B's moved completion is in November;
     meanwhile A's promoter moved to yundian (no level 2, 60 %). Upstream also rewrites,
     in place, the orders file of a third September line C without C's row.
  5. November settles and publishes: A and B post `adjustment` rows on both levels with
     the frozen September terms (fenxiang 70 % / 10 %, the September inviter); C is
     clawed back on both levels and its events are orphan findings.

Expected amounts are computed here in SQL from the staged order and the spec's
arithmetic (commission = round(base x rate), fee = round(commission x 10 %), shares of
the pool = commission - fee), not read from the models' entitlements.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import _latest_state, _rows, _run
from ingestion_cases.helpers import csv_text, write

from supernova import settle as s

# the spec's fenxiang shares and platform fee (§3), independent of the configuration
FEE, L1_SHARE, L2_SHARE = "0.10", "0.70", "0.10"


def _age(path: Path) -> None:
    """Date a file an hour back: a finished delivery, not one still being written (the
    ingest leaves files alone during its quiet period)."""
    old = time.time() - 3600
    os.utime(path, (old, old))


def _deliver(landing: Path, export: str, name: str, rows: list[dict], day: str) -> None:
    _age(write(landing, export, name, csv_text(rows), day=day))


def _expected_shares(
    wh: Path, lines: list[tuple[str, int]]
) -> dict[tuple[str, int], tuple[Decimal, Decimal]]:
    """(level 1, level 2) entitlement of each line at its full paid amount on its frozen
    rate, by the spec's arithmetic in exact DECIMAL SQL."""
    keys = " or ".join(f"(t.order_id = '{o}' and t.line_no = {n})" for o, n in lines)
    rows = _rows(
        wh,
        f"""
        with c as (
            select t.order_id, t.line_no, round(o.paid_amount * t.rate, 2) as commission
            from settlement.line_terms t join staging.stg_exports__orders o using (order_id, line_no)
            where {keys}
        ), p as (
            select order_id, line_no, commission - round(commission * {FEE}, 2) as pool from c
        )
        select order_id, line_no, round(pool * {L1_SHARE}, 2), round(pool * {L2_SHARE}, 2) from p""",
    )
    return {(o, n): (Decimal(a), Decimal(b)) for o, n, a, b in rows}


def _postings(wh: Path, month: str, lines, kind: str) -> dict:
    keys = " or ".join(f"(order_id = '{o}' and line_no = {n})" for o, n in lines)
    return {
        (o, n, lv): (b, a)
        for o, n, lv, b, a in _rows(
            wh,
            f"select order_id, line_no, level, beneficiary_id, amount from settlement.payout_lines "
            f"where settlement_month = '{month}' and kind = '{kind}' and ({keys})",
        )
    }


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, dagbag, airflow_db):
    from supernova.generator import generate

    root = tmp_path_factory.mktemp("withdrawn")
    landing, wh = root / "landing", root / "warehouse"
    generate(out=landing, start="2026-09-01", days=99, scale="tiny", seed=7)
    for f in landing.rglob("*"):  # finished deliveries: past any ingest quiet period
        if f.is_file():
            _age(f)
    common = {"landing": str(landing), "warehouse": str(wh)}
    out: dict = {"warehouse": wh}

    # 1. September
    out["sep_state"] = _run(dagbag, airflow_db, month="2026-09", **common)
    candidates = _rows(
        wh,
        """
        select t.order_id, t.line_no, t.promoter_id, t.level2_beneficiary_id, t.platform,
               max(case when e.event = 'completed' then e.event_id end) as completion_id,
               max(case when e.event = 'completed' then e.event_at end) as completed_at
        from settlement.line_terms t
        join staging.stg_exports__order_events e using (order_id, line_no)
        where t.first_settlement_month = '2026-09' and t.level2_beneficiary_id is not null
          and t.platform = 'fenxiang'
          and (select count(*) from settlement.payout_lines p where p.order_id = t.order_id
               and p.line_no = t.line_no and p.kind = 'accrual' and p.amount > 0) = 2
        group by all
        having count(*) = 2 and count(case when e.event = 'completed' then 1 end) = 1
           and count(case when e.event = 'paid' then 1 end) = 1
        order by t.order_id, t.line_no""",
    )
    a = candidates[0]
    b = next(c for c in candidates[1:] if c[2] != a[2])  # another promoter
    out["A"], out["B"] = a, b
    out["lines"] = [(a[0], a[1]), (b[0], b[1])]
    out["sep_accruals"] = _postings(wh, "2026-09", out["lines"], "accrual")

    # 2. the corrections: same event_id, delivered later
    def event(line, **kw):
        return {
            "order_id": line[0],
            "line_no": str(line[1]),
            "event": "completed",
            "event_at": "",
            "amount": "",
            "event_id": "",
            **kw,
        }

    _deliver(
        landing,
        "order_events",
        "corrections.csv",
        [
            event(
                a, event="paid", event_at=f"{a[6]:%Y-%m-%dT%H:%M:%S}+08:00", event_id=a[5]
            ),  # withdrawn
            event(b, event_at="2026-11-20T10:00:00+08:00", event_id=b[5]),  # moved past the cutoff
            event(
                ("O-NEVER-DELIVERED", 1),
                event_at="2026-10-10T10:00:00+08:00",
                event_id="E-orphan-1",
            ),  # orphan
        ],
        day="2026-11-21",
    )

    # 3. October
    out["oct_state"] = _run(dagbag, airflow_db, month="2026-10", **common)
    out["oct_run"] = _latest_state(wh, "2026-10")
    out["oct_clawbacks"] = _postings(wh, "2026-10", out["lines"], "clawback")
    out["oct_findings"] = _rows(
        wh,
        "select kind, row_key, detail from settlement.findings "
        "where settlement_month = '2026-10' and kind = 'orphan_event'",
    )
    out["oct_net"] = [
        _rows(
            wh,
            "select level, sum(amount) from settlement.payout_lines where order_id = ? "
            "and line_no = ? group by level order by level",
            [o, n],
        )
        for o, n in out["lines"]
    ]

    # 4. A completes again; A's promoter moves to yundian (new terms would differ)
    _deliver(
        landing,
        "order_events",
        "renewed.csv",
        [
            event(a, event_at="2026-11-15T10:00:00+08:00", event_id="E-renewed-" + a[0]),
        ],
        day="2026-11-16",
    )
    [prom] = _rows(
        wh,
        """
        select promoter_id, role, inviter_id, joined_at, city, city_tier, gender, status
        from staging.stg_exports__promoters where promoter_id = ? order by updated_at desc limit 1""",
        [a[2]],
    )
    cols = [
        "promoter_id",
        "role",
        "inviter_id",
        "joined_at",
        "city",
        "city_tier",
        "gender",
        "status",
    ]
    moved = {k: ("" if v is None else str(v)) for k, v in zip(cols, prom)}
    moved["joined_at"] = f"{prom[3]:%Y-%m-%dT%H:%M:%S}+08:00"
    moved.update(platform="yundian", updated_at="2026-11-10T09:00:00+08:00")
    _deliver(landing, "promoters", "platform-change.csv", [moved], day="2026-11-10")

    # ... and upstream rewrites the orders file of a third September line C in place, without
    # C's row (the ingest supersedes the earlier load): C's order line is gone
    [c] = _rows(
        wh,
        """
        select t.order_id, t.line_no, t.promoter_id, t.level2_beneficiary_id, o._file_name
        from settlement.line_terms t join staging.stg_exports__orders o using (order_id, line_no)
        where t.first_settlement_month = '2026-09' and t.level2_beneficiary_id is not null
          and t.order_id not in (?, ?)
          and (select count(*) from staging.stg_exports__orders o2 where o2.order_id = t.order_id) = 1
          and (select count(*) from settlement.payout_lines p where p.order_id = t.order_id
               and p.line_no = t.line_no and p.kind = 'accrual' and p.amount > 0) = 2
        order by t.order_id, t.line_no limit 1""",
        [a[0], b[0]],
    )
    out["C"] = c
    out["c_expected"] = _expected_shares(wh, [(c[0], c[1])])[(c[0], c[1])]
    out["c_events"] = _rows(
        wh,
        "select count(*), count(case when event = 'completed' then 1 end) "
        "from staging.stg_exports__order_events where order_id = ? and line_no = ?",
        [c[0], c[1]],
    )[0]
    orders_file = landing / c[4]
    kept = [
        line
        for line in orders_file.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith(f"{c[0]},{c[1]},")
    ]
    assert len(kept) == len(orders_file.read_text(encoding="utf-8").splitlines()) - 1
    orders_file.write_text("".join(kept), encoding="utf-8")
    _age(orders_file)

    # 5. November, as if run after its cutoff (2026-12-08)
    real_plan = s.plan_step
    s.plan_step = lambda ctx, log=print, now=None: real_plan(
        ctx, log, now=datetime(2026, 12, 9, 2, tzinfo=s.SHANGHAI)
    )
    try:
        out["nov_state"] = _run(dagbag, airflow_db, month="2026-11", **common)
    finally:
        s.plan_step = real_plan
    out["nov_run"] = _latest_state(wh, "2026-11")
    out["nov_adjustments"] = _postings(wh, "2026-11", out["lines"], "adjustment")
    out["nov_c_clawbacks"] = _postings(wh, "2026-11", [(c[0], c[1])], "clawback")
    out["nov_findings"] = _rows(
        wh,
        "select row_key, detail from settlement.findings "
        "where settlement_month = '2026-11' and kind = 'orphan_event' order by 1",
    )
    return out


def test_september_accrues_both_lines_on_both_levels(scenario):
    assert scenario["sep_state"].endswith("success")
    a, b = scenario["A"], scenario["B"]
    expected = _expected_shares(scenario["warehouse"], scenario["lines"])
    for line in (a, b):
        l1, l2 = expected[(line[0], line[1])]
        assert l1 > 0 and l2 > 0
        assert scenario["sep_accruals"][(line[0], line[1], 1)] == (line[2], l1)
        assert scenario["sep_accruals"][(line[0], line[1], 2)] == (line[3], l2)


def test_withdrawn_and_moved_completions_are_clawed_back_and_october_publishes(scenario):
    wh = scenario["warehouse"]
    run = scenario["oct_run"]
    assert scenario["oct_state"].endswith("success"), run.get("error")
    assert run["status"] == "published"
    assert all(i["violations"] == 0 for i in run["gate"]["invariants"])
    assert {i["check"] for i in run["gate"]["invariants"]} >= {
        "ledger_reconciles_to_entitlement",
        "month_totals_reconcile",
    }
    expected = _expected_shares(wh, scenario["lines"])
    want = {}
    for line in (scenario["A"], scenario["B"]):
        l1, l2 = expected[(line[0], line[1])]
        want[(line[0], line[1], 1)] = (line[2], -l1)
        want[(line[0], line[1], 2)] = (line[3], -l2)
    assert scenario["oct_clawbacks"] == want
    # the clawback carries the whole base and commission back (like a cancel)
    for o, n in scenario["lines"]:
        [(base, paid)] = _rows(
            wh,
            "select sum(p.base_amount), min(o.paid_amount) from settlement.payout_lines p "
            "join staging.stg_exports__orders o using (order_id, line_no) "
            "where p.settlement_month = '2026-10' and p.kind = 'clawback' and p.level = 1 "
            "and order_id = ? and line_no = ?",
            [o, n],
        )
        assert base == -paid
    # net nothing posted to date for either line
    assert scenario["oct_net"] == [[(1, Decimal("0.00")), (2, Decimal("0.00"))]] * 2


def test_an_event_of_a_line_never_delivered_is_an_orphan_finding(scenario):
    assert scenario["oct_findings"] == [
        (
            "orphan_event",
            "O-NEVER-DELIVERED#1",
            "1 event(s) before the cutoff, 1 of them completions, for an order line that is not in the orders "
            "export; nothing settles for it until the line is delivered",
        )
    ]


def test_renewed_completions_post_adjustments_on_the_frozen_terms_in_november(scenario):
    wh = scenario["warehouse"]
    run = scenario["nov_run"]
    assert scenario["nov_state"].endswith("success"), run.get("error")
    assert run["status"] == "published"
    assert all(i["violations"] == 0 for i in run["gate"]["invariants"])
    a = scenario["A"]
    assert _rows(
        wh,
        "select platform from settlement.payouts where settlement_month = '2026-11' "
        "and promoter_id = ?",
        [a[2]],
    ) == [("yundian",)], "A's promoter moved to yundian"
    expected = _expected_shares(wh, scenario["lines"])
    want = {}
    for line in (scenario["A"], scenario["B"]):
        l1, l2 = expected[(line[0], line[1])]
        want[(line[0], line[1], 1)] = (line[2], l1)  # fenxiang 70 %, not yundian 60 %
        want[(line[0], line[1], 2)] = (line[3], l2)  # the September inviter still gets level 2
    assert scenario["nov_adjustments"] == want
    # terms stay those of the first posting
    terms = _rows(
        wh,
        "select first_settlement_month, platform, level1_share from settlement.line_terms "
        "where order_id = ? and line_no = ?",
        [a[0], a[1]],
    )
    assert terms == [("2026-09", "fenxiang", Decimal("0.700000"))]
    # nothing else was posted for these lines in November (no accrual: they were settled before)
    kinds = _rows(
        wh,
        "select distinct kind from settlement.payout_lines where settlement_month = '2026-11' "
        "and order_id in (?, ?)",
        [a[0], scenario["B"][0]],
    )
    assert kinds == [("adjustment",)]


def test_a_settled_line_whose_order_row_is_gone_is_clawed_back_and_its_events_are_orphans(scenario):
    """C's order row disappeared when upstream rewrote its orders file in place: November
    claws back what September paid on both levels (it does not block the month), and C's
    events are orphan events."""
    c = scenario["C"]
    l1, l2 = scenario["c_expected"]
    assert scenario["nov_state"].endswith("success")
    assert scenario["nov_c_clawbacks"] == {
        (c[0], c[1], 1): (c[2], -l1),
        (c[0], c[1], 2): (c[3], -l2),
    }
    events, completions = scenario["c_events"]
    assert (
        f"{c[0]}#{c[1]}",
        f"{events} event(s) before the cutoff, {completions} of them completions, for an order line that "
        "is not in the orders export; nothing settles for it until the line is delivered",
    ) in scenario["nov_findings"]
