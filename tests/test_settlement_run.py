"""The monthly settlement run end to end: the real monthly_settlement DAG under
`dag.test()` (and once through the CLI), on generated tiny data, in one warehouse:

  a. September with a planted bad payout → the gate fails, nothing is published
  b. September through `supernova settle` (CLI, in process) → published
  c. October as a preview → computed and reported, nothing published
  d. October → published, with clawbacks of September lines (both levels)
  e. October again, same inputs → "unchanged", Parquet untouched
  f. November (before its cutoff 2026-12-08) → refused
  g. October reopened with a reason → republished and recorded
plus a second, fresh warehouse that settles September again: byte-identical Parquet.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import _latest_state, _parquet_digest, _rows, _run

from ingestion import ingest
from supernova import settle as s


@pytest.fixture(scope="module")
def scenario(settlement_scenario):
    return settlement_scenario


def test_planted_bad_payout_fails_the_gate_and_publishes_nothing(scenario):
    assert scenario["a_state"].endswith("failed")
    run = scenario["a_run"]
    assert run["status"] == "failed"
    failed = {c["check"]: c for c in run["gate"]["failed_checks"]}
    assert "payout_identity" in failed and failed["payout_identity"]["violations"] == 1
    assert "quality gate FAILED" in run["error"]
    assert scenario["a_published"] == 0, (
        "no settlement.payouts table may exist after a failed first run"
    )
    assert not scenario["a_parquet"]
    report = Path(scenario["warehouse"]) / "reports" / "2026-09" / f"{run['attempt_id']}.md"
    assert "payout_identity" in report.read_text()


def test_cli_settles_september(scenario):
    assert scenario["b_rc"] == 0
    rows = _rows(
        scenario["warehouse"],
        "select status from settlement.settlement_runs where settlement_month = '2026-09' order by started_at",
    )
    assert [r[0] for r in rows] == ["failed", "published"]


def test_preview_publishes_nothing(scenario):
    assert scenario["c_state"].endswith("success")
    assert scenario["c_run"]["status"] == "preview"
    assert scenario["c_months"] == [("2026-09",)]


def test_october_published_with_clawbacks_on_both_levels(scenario):
    wh = scenario["warehouse"]
    assert scenario["d_state"].endswith("success")
    kinds = dict(
        _rows(
            wh,
            "select kind || ':' || coalesce(cast(level as varchar), '-'), count(*) from settlement.payout_lines "
            "where settlement_month = '2026-10' group by 1",
        )
    )
    assert kinds.get("clawback:1", 0) > 0 and kinds.get("clawback:2", 0) > 0, kinds
    # every clawback is on a line first posted in September
    bad = _rows(
        wh,
        "select count(*) from settlement.payout_lines c join settlement.line_terms t using (order_id, line_no) "
        "where c.kind = 'clawback' and t.first_settlement_month <> '2026-09'",
    )[0][0]
    assert bad == 0


def test_carried_balances_chain_and_identity_holds_in_exact_decimals(scenario):
    wh = scenario["warehouse"]
    sept = dict(
        _rows(
            wh,
            "select promoter_id, carried_out from settlement.payouts where settlement_month = '2026-09' and carried_out <> 0",
        )
    )
    octo = {
        r[0]: r
        for r in _rows(
            wh,
            "select promoter_id, carried_in, level1_amount, level2_amount, tier_bonus, clawback_amount, "
            "adjustment_amount, net_paid, tax_withheld, carried_out, forfeited_amount, gross_due "
            "from settlement.payouts where settlement_month = '2026-10'",
        )
    }
    assert sept, "the tiny data must carry some balances into October"
    for pid, carried in sept.items():
        assert pid in octo and octo[pid][1] == carried
    for pid, (_, cin, l1, l2, bonus, claw, adj, net, tax, cout, forf, gross) in octo.items():
        assert isinstance(cin, Decimal)
        assert cin + l1 + l2 + bonus + claw + adj == net + tax + cout + forf == gross, pid


def test_cumulative_ledger_equals_cumulative_entitlement(scenario):
    """After two months the ledger per line and beneficiary equals the entitlement that
    the published line terms give, recomputed here in Python from the raw tables."""
    from decimal import ROUND_HALF_UP

    wh = scenario["warehouse"]
    q = Decimal("0.01")

    def r(x: Decimal) -> Decimal:
        return x.quantize(q, rounding=ROUND_HALF_UP)

    terms = _rows(
        wh,
        """
        select t.order_id, t.line_no, t.promoter_id, t.level2_beneficiary_id, t.rate, t.platform_fee_rate,
               t.level1_share, t.level2_share, o.paid_amount,
               coalesce((select sum(amount) from stg_refunds e where e.order_id = t.order_id and e.line_no = t.line_no), 0) as refunded,
               (select count(*) from stg_refunds e where e.order_id = t.order_id and e.line_no = t.line_no and e.amount is null) as full_refunds,
               (select count(*) from staging.stg_exports__order_events e where e.order_id = t.order_id and e.line_no = t.line_no
                    and e.event = 'cancelled' and e.event_at < timestamp '2026-11-08') as cancels
        from settlement.line_terms t
        join staging.stg_exports__orders o using (order_id, line_no)
    """.replace(
            "stg_refunds",
            "(select * from staging.stg_exports__order_events where event = 'refunded' and event_at < timestamp '2026-11-08')",
        ),
    )
    ledger = {
        (o, ln, b, lv): a
        for o, ln, b, lv, a in _rows(
            wh,
            "select order_id, line_no, beneficiary_id, level, sum(amount) from settlement.payout_lines "
            "where kind <> 'tier_bonus' group by all",
        )
    }
    assert len(terms) > 1000
    for o, ln, p1, p2, rate, fee, s1, s2, paid, refunded, full, cancels in terms:
        base = Decimal(0) if (full or cancels) else max(paid - refunded, Decimal(0))
        c = r(base * rate)
        pool = c - r(c * fee)
        assert ledger[(o, ln, p1, 1)] == r(pool * s1), (o, ln)
        if p2 is not None:
            assert ledger[(o, ln, p2, 2)] == r(pool * s2), (o, ln)


def test_every_payout_line_traces_back_to_order_click_rule_and_rate(scenario):
    wh = scenario["warehouse"]
    untraced = _rows(
        wh,
        """
        select count(*) from settlement.payout_lines pl
        left join settlement.line_terms t using (order_id, line_no)
        left join staging.stg_exports__orders o using (order_id, line_no)
        left join staging.stg_exports__clicks c on c.click_id = t.click_id
        left join staging.stg_exports__links l on l.link_id = t.link_id
        where pl.kind <> 'tier_bonus'
          and (t.order_id is null or o.order_id is null or c.click_id is null or l.link_id is null
               or pl.rate <> t.rate or c.buyer_id <> o.buyer_id
               or (pl.level = 1 and pl.beneficiary_id <> l.promoter_id)
               or (pl.level = 2 and pl.beneficiary_id <> t.level2_beneficiary_id))
    """,
    )[0][0]
    assert untraced == 0


def test_parquet_copies_match_duckdb(scenario):
    wh = Path(scenario["warehouse"])
    con = duckdb.connect()
    pq_total = con.execute(
        f"select settlement_month, count(*), sum(net_paid) from read_parquet('{wh}/parquet/settlement/payouts/*/*.parquet', "
        "hive_partitioning = true) group by 1 order by 1"
    ).fetchall()
    db_total = _rows(
        wh,
        "select settlement_month, count(*), sum(net_paid) from settlement.payouts group by 1 order by 1",
    )
    assert [(str(m), n, t) for m, n, t in pq_total] == db_total


def test_rerun_with_same_inputs_is_unchanged(scenario):
    assert scenario["e_state"].endswith("success")
    assert scenario["e_run"]["status"] == "unchanged"
    assert scenario["e_digest"] == scenario["d_digest"]


def test_month_before_its_cutoff_is_refused(scenario):
    assert scenario["f_state"].endswith("failed")
    assert "before its cutoff" in scenario["f_run"]["error"]
    assert scenario["f_run"]["status"] == "failed"


def test_reopen_republishes_and_is_recorded(scenario):
    wh = scenario["warehouse"]
    assert scenario["g_state"].endswith("success")
    runs = _rows(
        wh,
        "select run_id, status, reopen_reason, reopened_by_run_id from settlement.settlement_runs "
        "where settlement_month = '2026-10' and status in ('published', 'reopened') order by started_at",
    )
    assert [r[1] for r in runs] == ["reopened", "published"]
    assert runs[1][0].startswith("2026-10-r1-") and runs[1][2] == "test: finance asked to recompute"
    assert runs[0][3] == runs[1][0]
    # same inputs: the republished month has the same postings; the old ones are archived
    assert (
        _rows(
            wh,
            "select count(*), sum(amount) from settlement.payout_lines where settlement_month = '2026-10'",
        )[0]
        == scenario["oct_lines_before_reopen"]
    )
    assert (
        _rows(
            wh,
            "select count(*) from settlement.reopened_payout_lines where settlement_month = '2026-10'",
        )[0][0]
        == scenario["oct_lines_before_reopen"][0]
    )


def test_fresh_warehouse_publishes_byte_identical_parquet(
    scenario, tiny_landing, tmp_path, dagbag, airflow_db
):
    fresh = tmp_path / "fresh"
    state = _run(
        dagbag, airflow_db, month="2026-09", landing=str(tiny_landing), warehouse=str(fresh)
    )
    assert state.endswith("success")
    first = {k: v for k, v in scenario["d_digest"].items() if "2026-09" in k}
    assert first and _parquet_digest(fresh) == first


def _ctx(warehouse: Path, landing: Path, month: str, **kw) -> dict:
    ctx = s.RunRequest(month, str(landing), str(warehouse), triggered_by="test").context(
        f"{month}-plan-test"
    )
    ctx.update(kw)
    return ctx


def test_months_settle_in_order_and_not_before_the_first(scenario, tiny_landing):
    from datetime import datetime

    wh = scenario["warehouse"]
    later = datetime(2027, 3, 1, tzinfo=s.SHANGHAI)
    with pytest.raises(s.RunRefused, match="next one to settle is 2026-11"):
        s.plan_step(_ctx(wh, tiny_landing, "2026-12"), now=later)
    with pytest.raises(s.RunRefused, match="before the first settled month 2026-09"):
        s.plan_step(_ctx(wh, tiny_landing, "2026-08"), now=later)
    # the next month is allowed once its cutoff has passed
    assert s.plan_step(_ctx(wh, tiny_landing, "2026-11"), now=later)["action"] == "settle"


def test_only_the_latest_closed_month_can_be_reopened(scenario, tiny_landing):
    with pytest.raises(s.RunRefused, match="later months are published"):
        s.plan_step(_ctx(scenario["warehouse"], tiny_landing, "2026-09", reopen=True, reason="why"))


def test_cli_exit_codes(scenario, tiny_landing, capsys):
    from supernova.cli import main

    wh = str(scenario["warehouse"])
    assert (
        main(["settle", "--month", "2026-11", "--landing", str(tiny_landing), "--warehouse", wh])
        == 1
    )
    out = capsys.readouterr().out
    assert "FAILED" in out and "before its cutoff" in out and "next" in out
    assert main(["settle", "--month", "2026-10", "--reopen", "--warehouse", wh]) == 2


def test_a_second_run_on_a_busy_warehouse_is_refused(scenario, tiny_landing, dagbag, airflow_db):
    from supernova import lock

    wh = scenario["warehouse"]
    lock.acquire(wh, "someone-else")  # held by this (live) process under another run id
    try:
        assert _run(
            dagbag, airflow_db, month="2026-10", landing=str(tiny_landing), warehouse=str(wh)
        ).endswith("failed")
        assert lock.read_lock(wh).run_id == "someone-else", (
            "the refused run must not take or clear the lock"
        )
    finally:
        lock.release(wh, "someone-else")
    assert lock.read_lock(wh) is None


def test_a_stale_lock_is_cleared(tmp_path):
    import json
    import socket

    from supernova import lock

    (tmp_path / "run.lock").write_text(
        json.dumps(
            {
                "run_id": "crashed",
                "host": socket.gethostname(),
                "pid": 2**22 + 12345,
                "acquired_at": 0,
            }
        )
    )
    messages = []
    lock.acquire(tmp_path, "next-run", log=messages.append)
    assert lock.read_lock(tmp_path).run_id == "next-run"
    assert any("stale" in m for m in messages)
    with pytest.raises(lock.WarehouseBusy, match="busy"):
        lock.acquire(tmp_path, "third-run")


def test_a_scheduled_run_never_starts_the_programme_on_another_month(tmp_path, tiny_landing):
    """Issue 14 finding 3: the scheduler's own run for the previous month must not become
    the warehouse's first month (which would refuse the programme's real first month
    for good). The first month is configuration: vars.supernova.first_month."""
    from datetime import datetime

    later = datetime(2027, 3, 1, tzinfo=s.SHANGHAI)
    wh = tmp_path / "empty"
    # nothing settled yet, the exports loaded (a warehouse with nothing loaded is refused
    # whatever the month: tests/test_plan_rules.py)
    ingest(tiny_landing, wh, quiet_seconds=0, progress=lambda _m: None)
    with pytest.raises(
        s.RunRefused,
        match="a scheduled run does not start the programme.* first month is 2026-09, not 2026-10",
    ):
        s.plan_step(_ctx(wh, tiny_landing, "2026-10", scheduled=True), now=later)
    assert (
        s.plan_step(_ctx(wh, tiny_landing, "2026-09", scheduled=True), now=later)["action"]
        == "settle"
    )
    with pytest.raises(s.RunRefused, match="before the programme's first month 2026-09"):
        s.plan_step(_ctx(wh, tiny_landing, "2026-08"), now=later)


def test_triggered_by_names_the_user_who_started_the_run(
    scenario, tiny_landing, dagbag, airflow_db, monkeypatch
):
    """Under `dag.test()` (what `supernova settle` runs) the triggering user is the OS
    user, found even when the environment names nobody (as in an Airflow task)."""
    import getpass
    import pwd

    for var in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(var, raising=False)
    wh = scenario["warehouse"]
    state = _run(dagbag, airflow_db, month="2026-11", landing=str(tiny_landing), warehouse=str(wh))
    assert state.endswith("failed")  # before its cutoff: refused, and recorded
    run = _latest_state(wh, "2026-11")
    user = pwd.getpwuid(os.getuid()).pw_name
    assert getpass.getuser() == user and run["request"]["triggered_by"] == user
    recorded = _rows(
        wh,
        "select triggered_by from settlement.settlement_runs where attempt_id = ?",
        [run["attempt_id"]],
    )
    assert recorded == [(user,)]
    report = (Path(wh) / "reports" / "2026-11" / f"{run['attempt_id']}.md").read_text()
    assert f"triggered by: {user}" in report


def test_an_unchanged_rerun_after_a_reopen_names_the_published_run(
    scenario, tiny_landing, dagbag, airflow_db
):
    """Issue 14 finding 7: the report of an `unchanged` rerun names the run that published
    the month (after a reopen: the reopened run), not the one it superseded."""
    wh = scenario["warehouse"]
    [(published,)] = _rows(
        wh,
        "select run_id from settlement.settlement_runs "
        "where settlement_month = '2026-10' and status = 'published'",
    )
    assert published.startswith("2026-10-r1-")
    state = _run(dagbag, airflow_db, month="2026-10", landing=str(tiny_landing), warehouse=str(wh))
    assert state.endswith("success")
    run = _latest_state(wh, "2026-10")
    assert run["status"] == "unchanged" and run["plan"]["run_id"] == published
    report = (Path(wh) / "reports" / "2026-10" / f"{run['attempt_id']}.md").read_text()
    assert f"run id: `{published}`" in report
