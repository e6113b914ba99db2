"""The close's ingest step (supernova/settle.py ingest_step) waits once for landing files
that are only younger than the quiet period, instead of closing the month without them: a
month closes once, and such a file is readable seconds later (exports.md "Files arrive
while they are being written"). Temporary names wait for their rename, not for time."""

from __future__ import annotations

import os
import re
import time

from ingestion_cases.helpers import columns, csv_text, query, row, write

from ingestion import FileOutcome, IngestResult, ingest
from ingestion.landing import QUIET_ENV
from supernova.run_state import RunState
from supernova.settle import ingest_step, quiet_files_pause


def _age(path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_the_close_waits_for_a_file_younger_than_the_quiet_period(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    _age(write(landing, "orders", "part-0.csv", csv_text([row("orders")])), 3600)
    ingest(landing, wh, quiet_seconds=0)  # the warehouse exists: the step's first read is quick
    monkeypatch.setenv(QUIET_ENV, "5")
    write(landing, "orders", "part-1.csv", csv_text([row("orders", order_id="O2")]))
    said: list[str] = []
    ctx = {"landing": str(landing), "warehouse": str(wh), "attempt_id": "a-1"}
    t0 = time.monotonic()
    summary = ingest_step(ctx, log=said.append)
    waited = time.monotonic() - t0
    assert any(
        re.search(r"1 landing file\(s\) younger than the quiet period: waiting [1-6] s", s)
        for s in said
    ), said
    assert waited >= 1.0
    assert summary["ok"] and "waiting" not in summary["summary"]
    assert sorted(query(wh, "select order_id from raw.orders")) == [("O1",), ("O2",)]
    assert sorted(query(wh, "select file_name, status from raw.manifest")) == [
        ("part-0.csv", "loaded"),
        ("part-1.csv", "loaded"),
    ]


def test_the_step_after_the_wait_accounts_for_both_reads(tmp_path, monkeypatch):
    """The second read reports the first read's files as already seen: the step's outcome
    (ok, the summary in the run state, which the report and the CLI show) is both reads',
    so a file rejected before the wait still fails the step, and no file counts twice."""
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    (tmp_path / "empty").mkdir()
    ingest(tmp_path / "empty", wh, quiet_seconds=0)  # the warehouse exists: a quick first read
    _age(write(landing, "orders", "part-0.csv", csv_text([row("orders")])), 3600)
    no_paid = [c for c in columns("orders") if c != "paid_amount"]
    _age(write(landing, "orders", "no_paid.csv", csv_text([row("orders")], no_paid)), 3600)
    monkeypatch.setenv(QUIET_ENV, "3")
    write(landing, "orders", "part-1.csv", csv_text([row("orders", order_id="O2")]))
    said: list[str] = []
    ctx = {"landing": str(landing), "warehouse": str(wh), "attempt_id": "a-1"}
    summary = ingest_step(ctx, log=said.append)
    assert any("younger than the quiet period: waiting" in s for s in said), said
    recorded = RunState(wh, "a-1").load()["ingest"]
    assert recorded == summary
    assert not summary["ok"]
    text = summary["summary"]
    assert "FAILED: file(s) rejected" in text
    assert "REJECTED orders/2026-10-01/no_paid.csv: required column(s) missing" in text
    # part-0 (first read) and part-1 (after the wait) loaded, each counted once
    assert "files: 2 loaded, 0 duplicate, 1 rejected, 0 already seen" in text, text
    assert "rows: 2 read = 2 loaded + 0 quarantined" in text, text
    assert "waiting" not in text
    assert any(s.startswith("WARNING: some landing files were rejected") for s in said), said
    assert sorted(query(wh, "select order_id from raw.orders")) == [("O1",), ("O2",)]


def test_two_reads_combined_count_each_file_once():
    def read(run_id, *files):
        return IngestResult(run_id, "landing", "wh", [FileOutcome(*f) for f in files], 1.0)

    first = read(
        "r1",
        ("old.csv", "a", "skipped"),  # seen by an earlier run
        ("bad.csv", "b", "rejected"),
        ("good.csv", "c", "loaded"),
        ("young.csv", "", "waiting"),
        ("gone.csv", "", "vanished"),
        ("tmp.csv.part", "", "waiting"),
    )
    second = read(
        "r2",
        ("old.csv", "a", "skipped"),
        ("bad.csv", "b", "skipped"),
        ("good.csv", "c", "skipped"),
        ("young.csv", "d", "loaded"),
        ("tmp.csv.part", "", "waiting"),
        ("new.csv", "e", "loaded"),
    )
    both = IngestResult.after_wait(first, second)
    assert sorted((f.path, f.status) for f in both.files) == [
        ("bad.csv", "rejected"),
        ("gone.csv", "vanished"),  # not seen again: the first read's word stands
        ("good.csv", "loaded"),
        ("new.csv", "loaded"),
        ("old.csv", "skipped"),
        ("tmp.csv.part", "waiting"),
        ("young.csv", "loaded"),
    ]
    assert not both.ok and both.run_id == "r1 + r2" and both.seconds == 2.0
    assert IngestResult.after_wait(read("r1", ("good.csv", "c", "loaded")), second).ok


def test_no_pause_for_temporary_names_or_when_nothing_waits(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    monkeypatch.setenv(QUIET_ENV, "60")
    _age(write(landing, "orders", ".part-0.csv", csv_text([row("orders")])), 1)
    result = ingest(landing, wh)
    assert [f.status for f in result.files] == ["waiting"]
    assert quiet_files_pause(landing, result) == 0.0
    fresh = write(landing, "orders", "part-1.csv", csv_text([row("orders", order_id="O2")]))
    _age(fresh, 50)
    result = ingest(landing, wh)
    # the young file: 60 - 50 s left, plus a second of margin; never more than the period + 1
    assert 10.0 < quiet_files_pause(landing, result) <= 11.5
    _age(fresh, -3600)  # a clock in the future: at most the quiet period
    assert quiet_files_pause(landing, result) == 61.0


def test_a_landing_still_being_copied_in_is_summarised_not_listed_file_by_file(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    for i in range(14):
        write(landing, "orders", f"part-{i:02d}.csv", csv_text([row("orders", order_id=f"O{i}")]))
    summary = ingest(landing, wh, quiet_seconds=600).summary()
    assert "14 waiting" in summary
    assert summary.count("  WAITING orders/2026-10-01/part-") == 10
    assert summary.rstrip().endswith("... and 4 more waiting")
