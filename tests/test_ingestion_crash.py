"""Crash safety: a SIGKILL at any point of a run leaves the warehouse so that the next
run ends in exactly the state of an uninterrupted run (a file is loaded whole or not
at all; no half-written Parquet is ever referenced)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ingestion_cases.helpers import csv_text, query, row, write

from ingestion import ingest

ROOT = Path(__file__).resolve().parent.parent


def _landing(base: Path) -> Path:
    landing = base / "landing"
    write(
        landing,
        "orders",
        "a.csv",
        csv_text(
            [row("orders", order_id=f"A{i}") for i in range(4)]
            + [row("orders", order_id="AX", quantity="-1")]
        ),
    )
    write(landing, "orders", "b.csv", csv_text([row("orders", order_id=f"B{i}") for i in range(3)]))
    write(
        landing,
        "orders",
        "b-again.csv",
        csv_text([row("orders", order_id=f"B{i}") for i in range(3)]),
    )
    write(
        landing,
        "clicks",
        "c.csv",
        csv_text([row("clicks", click_id="C1", clicked_at="bad")] + [row("clicks", click_id="C2")]),
    )
    write(landing, "links", "broken.csv", "link_id\nL1\n")
    return landing


def _state(wh: Path) -> dict:
    """Everything except run ids and timestamps."""
    return {
        "manifest": query(
            wh,
            "SELECT file_path, export, delivery_date, file_name, sha256, size_bytes, "
            "encoding, rows_read, rows_loaded, rows_quarantined, status, reason, "
            "extra_columns FROM raw.manifest ORDER BY file_path",
        ),
        "quarantine": query(
            wh,
            "SELECT export, file_path, sha256, line_no, raw_row, reason "
            "FROM raw.quarantine ORDER BY file_path, line_no",
        ),
        "orders": query(wh, "SELECT * FROM raw.orders ORDER BY _file_name, _line_no"),
        "clicks": query(wh, "SELECT * FROM raw.clicks ORDER BY _file_name, _line_no"),
        "files": sorted(
            p.relative_to(wh).as_posix() for p in (wh / "raw").rglob("*") if p.is_file()
        ),
    }


def _run_killed(landing: Path, wh: Path, fault: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SUPERNOVA_INGEST_FAULT=fault)
    code = "import sys; from ingestion import ingest; ingest(sys.argv[1], sys.argv[2])"
    return subprocess.run(
        [sys.executable, "-c", code, str(landing), str(wh)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("ref")
    landing = _landing(base)
    ingest(landing, base / "wh")
    return landing, _state(base / "wh")


# processing order (date, export in contract order, path): links/broken.csv(1, rejected),
# clicks/c.csv(2), orders/a.csv(3),
# orders/b-again.csv(4), orders/b.csv(5: duplicate of 4)
@pytest.mark.parametrize(
    "fault",
    ["before_commit:1", "before_commit:3", "after_commit:3", "before_commit:4", "before_commit:5"],
)
def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path, reference, fault):
    landing, expected = reference
    wh = tmp_path / "wh"
    proc = _run_killed(landing, wh, fault)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    n = int(fault.split(":")[1])
    committed = n if fault.startswith("after") else n - 1
    assert query(wh, "SELECT count(*) FROM raw.manifest") == [(committed,)]
    if fault == "before_commit:3":
        # the Parquet of file 3 was renamed into place but never committed:
        # the view does not read it
        orphan = list((wh / "raw" / "orders").rglob("*.parquet"))
        assert len(orphan) == 1
        assert query(wh, "SELECT count(*) FROM raw.orders") == [(0,)]
    result = ingest(landing, wh)
    assert [f.status == "skipped" for f in result.files] == [i < committed for i in range(5)]
    assert _state(wh) == expected


def test_external_sigkill_while_loading(tmp_path, reference):
    """Kill from outside at a random moment of a longer run (no hook)."""
    landing, expected = reference
    wh = tmp_path / "wh"
    code = (
        "import sys; from ingestion import ingest; ingest(sys.argv[1], sys.argv[2], progress=print)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, str(landing), str(wh)], cwd=ROOT, stdout=subprocess.PIPE
    )
    line = proc.stdout.readline()  # first progress line: the run has started
    assert b"file(s) under" in line
    proc.stdout.readline()  # first file done
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    ingest(landing, wh)
    assert _state(wh) == expected


def test_stray_temp_files_are_removed(tmp_path, reference):
    landing, expected = reference
    wh = tmp_path / "wh"
    ingest(landing, wh)
    junk = wh / "raw" / "orders" / "delivery_date=2026-10-01" / ".deadbeef.parquet.tmp-x"
    junk.write_bytes(b"partial")
    ingest(landing, wh)
    assert not junk.exists()
    assert _state(wh) == expected
