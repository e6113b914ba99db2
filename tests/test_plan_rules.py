"""The plan rules (supernova/plan.py: decide) as a pure function of the facts: every rule
of what a run may do, without a warehouse. tests/test_settlement_run.py checks the same
rules end to end on built warehouses (fact gathering included)."""

from __future__ import annotations

from datetime import datetime

import pytest

from supernova.months import SHANGHAI, month_bounds
from supernova.plan import Facts, decide, input_fingerprint, loaded_file_ids
from supernova.run_request import RunRefused

AFTER_ALL = datetime(2027, 3, 1, tzinfo=SHANGHAI)
FP = "f" * 64


def facts(
    month: str, published=(), *, now=AFTER_ALL, fingerprint=FP, reopen_count=0, input_files=12
) -> Facts:
    """Facts for `month`, with `published` months each published by run `<m>-r0` whose
    inputs were `fingerprint` (the same as this run's unless said otherwise)."""
    return Facts(
        month=month,
        now=now,
        cutoff=month_bounds(month, 8)[2],
        programme_first="2026-09",
        published={
            m: {"run_id": f"{m}-r0", "settlement_month": m, "input_fingerprint": FP}
            for m in published
        },
        reopen_count=reopen_count,
        input_fingerprint=fingerprint,
        code_fingerprint="c" * 64,
        input_files=input_files,
    )


def ask(preview=False, reopen=False, scheduled=False) -> dict:
    return {"preview": preview, "reopen": reopen, "scheduled": scheduled}


def test_the_first_month_settles_after_its_cutoff():
    plan = decide(ask(), facts("2026-09"))
    assert plan == {
        "action": "settle",
        "message": "",
        "run_id": "2026-09-r0-ffffffffff",
        "first_month": "2026-09",
        "input_fingerprint": FP,
        "code_fingerprint": "c" * 64,
        "input_files": 12,
        "cutoff": "2026-10-08T00:00:00+08:00",
        "reopen_count": 0,
    }


def test_not_before_the_cutoff_unless_a_preview():
    before = datetime(2026, 10, 7, 23, 59, tzinfo=SHANGHAI)
    with pytest.raises(RunRefused, match=r"before its cutoff 2026-10-08 00:00 Asia/Shanghai"):
        decide(ask(), facts("2026-09", now=before))
    plan = decide(ask(preview=True), facts("2026-09", now=before))
    assert (plan["action"], plan["run_id"]) == ("settle", "2026-09-preview-ffffffffff")


def test_nothing_loaded_is_refused_not_published_empty():
    # every landing file still being written (or a wrong landing folder): closing the month
    # would publish an empty month that never changes again
    for request in (ask(), ask(preview=True), ask(scheduled=True)):
        with pytest.raises(RunRefused, match="no export file is loaded in this warehouse yet"):
            decide(request, facts("2026-09", input_files=0))
    assert decide(ask(), facts("2026-09", input_files=1))["action"] == "settle"


def test_not_before_the_programme():
    with pytest.raises(RunRefused, match="before the programme's first month 2026-09"):
        decide(ask(), facts("2026-08"))


def test_a_scheduled_run_starts_the_programme_only_on_its_first_month():
    with pytest.raises(RunRefused, match="a scheduled run does not start the programme"):
        decide(ask(scheduled=True), facts("2026-10"))
    assert decide(ask(scheduled=True), facts("2026-09"))["action"] == "settle"
    # a preview may look at any month
    assert decide(ask(scheduled=True, preview=True), facts("2026-10"))["action"] == "settle"


def test_months_settle_in_order():
    with pytest.raises(RunRefused, match="next one to settle is 2026-11, not 2026-12"):
        decide(ask(), facts("2026-12", ["2026-09", "2026-10"]))
    with pytest.raises(RunRefused, match="before the first settled month 2026-09"):
        decide(ask(), facts("2026-08", ["2026-09"]))
    plan = decide(ask(), facts("2026-11", ["2026-09", "2026-10"]))
    assert (plan["action"], plan["first_month"]) == ("settle", "2026-09")
    # a preview is not held to the order
    assert decide(ask(preview=True), facts("2026-12", ["2026-09"]))["action"] == "settle"


def test_a_closed_month_with_unchanged_inputs_is_unchanged():
    plan = decide(ask(), facts("2026-09", ["2026-09"]))
    assert (plan["action"], plan["run_id"]) == ("unchanged", "2026-09-r0")
    assert plan["message"] == (
        "2026-09 is closed (published by run 2026-09-r0) and the inputs are unchanged: "
        "nothing to do, nothing changed."
    )


def test_a_closed_month_never_changes_silently():
    with pytest.raises(RunRefused, match="its inputs have changed since"):
        decide(ask(), facts("2026-09", ["2026-09"], fingerprint="e" * 64))
    # a preview of a closed month recomputes it (and publishes nothing)
    plan = decide(ask(preview=True), facts("2026-09", ["2026-09"], fingerprint="e" * 64))
    assert (plan["action"], plan["run_id"]) == ("settle", "2026-09-preview-eeeeeeeeee")


def test_only_the_latest_closed_month_is_reopened():
    with pytest.raises(RunRefused, match=r"later months are published \(2026-10\)"):
        decide(ask(reopen=True), facts("2026-09", ["2026-09", "2026-10"]))
    plan = decide(ask(reopen=True), facts("2026-10", ["2026-09", "2026-10"], reopen_count=1))
    assert (plan["action"], plan["run_id"], plan["reopen_count"]) == (
        "settle",
        "2026-10-r1-ffffffffff",
        1,
    )
    with pytest.raises(RunRefused, match="has not been published, so there is nothing to reopen"):
        decide(ask(reopen=True), facts("2026-11", ["2026-09", "2026-10"]))


def test_the_input_fingerprint_covers_files_code_and_accepted_suspense():
    base = input_fingerprint("2026-09", ["a", "b"], "code", False)
    assert base == input_fingerprint("2026-09", ["a", "b"], "code", False)
    changed = [
        input_fingerprint("2026-10", ["a", "b"], "code", False),
        input_fingerprint("2026-09", ["a", "c"], "code", False),
        input_fingerprint("2026-09", ["a", "b"], "code2", False),
        input_fingerprint("2026-09", ["a", "b"], "code", True),
    ]
    assert len({base, *changed}) == 5


def test_a_loaded_file_is_its_bytes_and_where_it_was_delivered():
    # the same bytes re-sent under another delivery date win over a correction delivered
    # in between (§0): moving them changes the figures, so it changes the fingerprint
    sha = "a" * 64
    first = loaded_file_ids([("orders/2026-09-02/part-0.csv", sha)])
    moved = loaded_file_ids([("orders/2026-09-04/resent.csv", sha)])
    assert first == ["orders/2026-09-02/part-0.csv:" + sha]
    assert input_fingerprint("2026-09", first, "c", False) != input_fingerprint(
        "2026-09", moved, "c", False
    )
    # sorted: the order the manifest lists them in does not matter
    assert loaded_file_ids([("b.csv", "2"), ("a.csv", "1")]) == ["a.csv:1", "b.csv:2"]
