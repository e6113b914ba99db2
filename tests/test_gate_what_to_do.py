"""A failed gate tells finance what to do next (issue #19): each failed invariant carries
its way out as data (`what_to_do`) in the gate result stored in the run state, and the
failure message (CLI summary, report) prints it under the check and its example rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from supernova import gate, settings


@pytest.fixture()
def checks():
    """A settlement_checks result as the gate reads it (one row per invariant)."""
    con = duckdb.connect()
    try:
        return con.execute("""
            select * from (values
                ('ledger_reconciles_to_entitlement', 'per line and beneficiary: posted = entitlement', 2,
                 'O0000000003#3; O0000000004#2'),
                ('suspense_within_limit', 'suspense base <= limit x (...)', 1,
                 'suspense base 5000004.00 of 1000000000.00 (limit 0.005)'),
                ('payout_identity', 'carried in + postings = ...', 0, null)
            ) as t(check_name, description, violations, examples)""").df()
    finally:
        con.close()


def test_failed_checks_carry_their_way_out(checks):
    failed = {c["check"]: c for c in gate.failed_checks(checks)}
    assert set(failed) == {"ledger_reconciles_to_entitlement", "suspense_within_limit"}
    suspense = failed["suspense_within_limit"]["what_to_do"]
    assert "deliver the missing reference data" in suspense
    assert "run it again with accept_suspense and a reason" in suspense
    assert "--accept-suspense --reason TEXT" in suspense
    ledger = failed["ledger_reconciles_to_entitlement"]["what_to_do"]
    assert "listed lines (order#line)" in ledger
    assert (
        "a completion withdrawn or moved past the cutoff is a clawback and no longer fails here"
        in ledger
    )
    assert failed["ledger_reconciles_to_entitlement"]["examples"] == "O0000000003#3; O0000000004#2"


def test_failure_message_names_check_examples_way_out_and_that_nothing_was_published(checks):
    text = gate.describe_failures(
        {
            "failed_checks": gate.failed_checks(checks),
            "results": [
                {
                    "suite": "payouts",
                    "expectation": "expect_column_values_to_be_unique",
                    "column": "promoter_id",
                    "success": False,
                    "unexpected_count": 2,
                    "examples": ["P1", "P1"],
                    "observed": "",
                    "error": None,
                }
            ],
        }
    )
    lines = text.splitlines()
    i = lines.index(next(line for line in lines if "invariant suspense_within_limit" in line))
    assert "suspense base 5000004.00 of 1000000000.00" in lines[i]
    assert lines[i + 1].startswith("    what to do: Too much base is in suspense")
    j = lines.index(
        next(line for line in lines if "invariant ledger_reconciles_to_entitlement" in line)
    )
    assert "O0000000003#3" in lines[j] and lines[j + 1].startswith(
        "    what to do: What has been posted"
    )
    k = lines.index(next(line for line in lines if line.startswith("  - payouts:")))
    assert lines[k + 1].startswith("    what to do: A candidate table (payouts) failed")
    assert lines[-1] == "  " + gate.NOTHING_PUBLISHED


def test_every_invariant_has_its_own_way_out():
    suite = json.loads(
        (settings.EXPECTATIONS_DIR / "settlement_checks.json").read_text(encoding="utf-8")
    )
    names = suite["expectations"][0]["kwargs"]["value_set"]
    assert sorted(gate.WHAT_TO_DO) == sorted(names)
    assert len(set(gate.WHAT_TO_DO.values())) == len(names)


def test_the_stored_gate_result_and_the_report_carry_the_way_out(settlement_scenario):
    """Run a of the shared scenario: a planted bad payout fails payout_identity."""
    run = settlement_scenario["a_run"]
    assert run["gate"]["what_to_do"] == gate.NOTHING_PUBLISHED
    [failed] = [c for c in run["gate"]["failed_checks"] if c["check"] == "payout_identity"]
    assert failed["what_to_do"] == gate.WHAT_TO_DO["payout_identity"]
    assert "what to do: " + gate.WHAT_TO_DO["payout_identity"] in run["error"]
    report = (
        Path(settlement_scenario["warehouse"]) / "reports" / "2026-09" / f"{run['attempt_id']}.md"
    )
    assert gate.WHAT_TO_DO["payout_identity"] in report.read_text()
