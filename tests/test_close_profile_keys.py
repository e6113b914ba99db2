"""The close's build no longer re-proves keys that hold by construction or that the gate
proves anyway (issue 15, docs/benchmarks.md "Where the close's time goes"), and a
duplicated settled line is still stopped before anything is published: a fan-out in the
entitlements reaches the ledger, whose key the gate proves twice (the invariant
ledger_key_unique and the GX suite payout_lines)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from supernova import gate
from supernova import settle as s
from supernova.dbt_runner import dbt_invoke

MONTH = "2026-09"

# the key tests the close's build used to run (and their models' other tests, kept)
DROPPED_KEY_TESTS = (
    "unique_int_settlement__order_attribution_order_id",
    "unique_combination_of_columns_int_settlement__new_lines_order_id__line_no",
    "unique_combination_of_columns_int_settlement__line_terms_order_id__line_no",
    "unique_combination_of_columns_int_settlement__line_entitlements_order_id__line_no",
    "unique_combination_of_columns_payout_lines_settlement_month__order_id__line_no",
)


@pytest.fixture(scope="module")
def built(tiny_landing, tmp_path_factory):
    """September ingested and built (dbt build of the close), not gated or published."""
    from ingestion import ingest
    from supernova.run_request import RunRequest

    wh = tmp_path_factory.mktemp("close-keys")
    assert ingest(tiny_landing, wh, progress=lambda *_: None).ok
    ctx = RunRequest(MONTH, str(tiny_landing), str(wh), triggered_by="test").context(
        f"test-{MONTH}"
    )
    plan = {"action": "settle", "run_id": f"{MONTH}-test", "first_month": MONTH}
    s.RunState(wh, ctx["attempt_id"]).update(started_at="2026-01-01T00:00:00+08:00")
    s.build_step(ctx, plan, log=lambda *_: None)
    results = json.loads((wh / "dbt" / "target" / "run_results.json").read_text())
    return {
        "warehouse": wh,
        "vars": {
            "settlement_month": MONTH,
            "run_id": plan["run_id"],
            "first_month": MONTH,
            "accept_suspense": False,
        },
        "nodes": [r["unique_id"] for r in results["results"]],
    }


def _sql(wh: Path, *statements: str):
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        for st in statements[:-1]:
            con.execute(st)
        return con.execute(statements[-1]).fetchall()
    finally:
        con.close()


def _violations(result: dict) -> dict[str, int]:
    return {c["check"]: c["violations"] for c in result["failed_checks"]}


def _ledger_key_expectation(result: dict) -> dict:
    (found,) = [
        r
        for r in result["results"]
        if r["suite"] == "payout_lines"
        and r["expectation"] == "expect_compound_columns_to_be_unique"
    ]
    return found


def test_the_close_does_not_rerun_keys_proven_elsewhere(built):
    ran = {uid.split(".")[2] for uid in built["nodes"] if uid.startswith("test.")}
    assert [t for t in DROPPED_KEY_TESTS if any(r.startswith(t) for r in ran)] == []
    # the keys they were derived from are still tested by the close
    assert any(
        r.startswith("unique_combination_of_columns_int_settlement__line_state_") for r in ran
    )
    assert any(r.startswith("unique_combination_of_columns_line_terms_order_id") for r in ran)


def test_a_duplicated_settled_line_is_stopped_by_the_gate(built):
    """A fan-out in int_settlement__line_entitlements (what its key test guarded against):
    one line twice, and the ledger rebuilt from it; the gate fails, naming the line."""
    wh = built["warehouse"]
    clean = gate.run_gate(wh, MONTH)
    assert clean["ok"]  # the clean build passes
    # the gate's profile (docs/benchmarks.md): every phase timed
    assert set(clean["phases"]) == {
        "invariants_seconds",
        "ledger_sorted_seconds",
        "gx_seconds",
        "validation_seconds",
    }
    line, beneficiaries = _sql(
        wh,
        "create table intermediate.entitlements_clean as "
        "select * from intermediate.int_settlement__line_entitlements",
        "select order_id || '#' || cast(line_no as varchar), "
        "1 + (level2_beneficiary_id is not null)::int "
        "from intermediate.int_settlement__line_entitlements where level1_amount > 0 "
        "order by order_id, line_no limit 1",
    )[0]
    _sql(
        wh,
        "insert into intermediate.int_settlement__line_entitlements "
        "select * from intermediate.entitlements_clean "
        f"where order_id || '#' || cast(line_no as varchar) = '{line}'",
        "select 1",
    )
    try:
        res = dbt_invoke(
            wh,
            ["run", "--select", "int_settlement__line_postings", "payout_lines"],
            built["vars"],
        )
        assert res.success
        result = gate.run_gate(wh, MONTH)
        assert not result["ok"]
        assert _violations(result)["ledger_key_unique"] == beneficiaries
        duplicated = _ledger_key_expectation(result)
        assert not duplicated["success"]
        assert duplicated["unexpected_count"] == 2 * beneficiaries
    finally:
        _sql(
            wh,
            "create or replace table intermediate.int_settlement__line_entitlements as "
            "select * from intermediate.entitlements_clean",
            "drop table intermediate.entitlements_clean",
            "select 1",
        )
        assert dbt_invoke(
            wh, ["run", "--select", "int_settlement__line_postings", "payout_lines"], built["vars"]
        ).success
    assert gate.run_gate(wh, MONTH)["ok"]
