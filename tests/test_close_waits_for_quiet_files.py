"""The close's ingest step (supernova/settle.py ingest_step) waits once for landing files
that are only younger than the quiet period, instead of closing the month without them: a
month closes once, and such a file is readable seconds later (exports.md "Files arrive
while they are being written"). Temporary names wait for their rename, not for time."""

from __future__ import annotations

import os
import re
import time

from ingestion_cases.helpers import csv_text, query, row, write

from ingestion import ingest
from ingestion.landing import QUIET_ENV
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
