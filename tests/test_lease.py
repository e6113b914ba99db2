"""The warehouse lease (supernova.lock): atomic across processes, bound to its owner and
its heartbeat rather than to one process, re-entrant for the owner, and honoured by every
writer (ingest included)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import time
from pathlib import Path

import pytest

from supernova import lock

PROCESSES = 8
ATTEMPTS = 500


def _hammer(warehouse: str, worker: int, attempts: int, start_at: float, out) -> None:
    """Try to take the warehouse `attempts` times. While holding it, create a marker file
    exclusively: if it already exists, another process holds the warehouse too. Every
    tenth holder "dies" instead of releasing (its lease left with an expired heartbeat),
    so the stale-clearing path is hammered as well."""
    wh = Path(warehouse)
    marker = wh / "holder.marker"
    taken = doubles = busy = 0
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(attempts):
        owner = f"w{worker}-{i}"
        try:
            lock.acquire(wh, owner, log=lambda _m: None)
        except lock.WarehouseBusy:
            busy += 1
            continue
        taken += 1
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
        except FileExistsError:
            doubles += 1
            continue
        os.unlink(marker)
        if i % 10 == 0:  # die holding it: the heartbeat is left to expire
            data = json.loads(lock.lock_path(wh).read_text())
            if data["run_id"] == owner:
                data["heartbeat_at"] = data["acquired_at"] = 0.0
                data["pid"] = 2**22 + 12345  # a process that does not exist
                tmp = wh / f".dead-{worker}-{i}"
                tmp.write_text(json.dumps(data))
                os.replace(tmp, lock.lock_path(wh))
        else:
            lock.release(wh, owner)
    out.put((taken, doubles, busy))


def test_no_double_acquisition_under_contention(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # let every spawned interpreter start before the race
    procs = [
        ctx.Process(target=_hammer, args=(str(tmp_path), w, ATTEMPTS, start_at, out))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    taken = sum(r[0] for r in results)
    doubles = sum(r[1] for r in results)
    assert taken > PROCESSES, f"the race never let anyone in? {results}"
    assert doubles == 0, f"{doubles} of {taken} acquisitions found another holder inside: {results}"


def test_the_lease_outlives_the_process_that_took_it(tmp_path):
    """A settlement run's lease is bound to the run, not to `begin`'s process: once the
    taking process is gone, the lease still holds while its heartbeat is fresh."""
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_take_run_lease, args=(str(tmp_path), "2026-10-attempt"))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0
    holder = lock.read_lock(tmp_path)
    assert holder.run_id == "2026-10-attempt" and not holder.process_bound
    with pytest.raises(lock.WarehouseBusy, match="busy: settlement 2026-10"):
        lock.acquire(tmp_path, "marts-build-1", purpose="marts-build")
    # the next task of that run (another process) renews it; another owner cannot
    lock.renew(tmp_path, "2026-10-attempt")
    with pytest.raises(lock.LeaseLost):
        lock.renew(tmp_path, "someone-else")
    lock.release(tmp_path, "2026-10-attempt")
    assert lock.read_lock(tmp_path) is None


def _take_run_lease(warehouse: str, owner: str) -> None:
    lock.acquire(
        Path(warehouse),
        owner,
        purpose="settlement 2026-10",
        process_bound=False,
        dag_id="monthly_settlement",
        dag_run_id="manual__x",
    )


def test_an_expired_heartbeat_makes_the_lease_stale(tmp_path, monkeypatch):
    lock.acquire(tmp_path, "run-a", purpose="settlement 2026-10", process_bound=False)
    data = json.loads(lock.lock_path(tmp_path).read_text())
    data["heartbeat_at"] = time.time() - lock.ttl_seconds() - 1
    lock.lock_path(tmp_path).write_text(json.dumps(data))
    lock._HELD.clear()
    messages = []
    cleared = lock.acquire(tmp_path, "run-b", log=messages.append)
    assert cleared is not None and cleared.run_id == "run-a"
    assert any("stale" in m and "no heartbeat" in m for m in messages)
    lock.release(tmp_path, "run-b")


def test_a_fresh_run_lease_is_not_stale_although_its_pid_is_gone(tmp_path):
    (tmp_path / "run.lock").write_text(
        json.dumps(
            {
                "run_id": "run-a",
                "purpose": "settlement 2026-10",
                "host": socket.gethostname(),
                "pid": 2**22 + 12345,
                "acquired_at": time.time(),
                "heartbeat_at": time.time(),
                "ttl_seconds": 900,
                "process_bound": False,
            }
        )
    )
    with pytest.raises(lock.WarehouseBusy):
        lock.acquire(tmp_path, "run-b")


def test_held_is_reentrant_for_the_owner_and_exclusive_for_others(tmp_path):
    lock.acquire(tmp_path, "attempt-1", purpose="settlement 2026-10", process_bound=False)
    try:
        with lock.held(tmp_path, "ingest") as owner:  # the settlement's own ingest step
            assert owner == "attempt-1"
        assert lock.read_lock(tmp_path).run_id == "attempt-1", "the inner step must not release it"
    finally:
        lock.release(tmp_path, "attempt-1")
    with lock.held(tmp_path, "ingest") as owner:
        assert owner.startswith("ingest-") and lock.read_lock(tmp_path).run_id == owner
    assert lock.read_lock(tmp_path) is None


def _ingest_in_another_process(landing: str, warehouse: str, out) -> None:
    from ingestion import ingest

    try:
        result = ingest(landing, warehouse, progress=lambda _m: None)
        out.put(("loaded", len(result.by_status("loaded"))))
    except lock.WarehouseBusy as exc:
        out.put(("busy", str(exc)))


def test_ingest_takes_the_warehouse(tmp_path, tiny_landing):
    """`supernova ingest` is a writer too: while a settlement holds the warehouse it is
    refused (and loads nothing); afterwards it loads."""
    wh = tmp_path / "wh"
    lock.acquire(wh, "2026-10-attempt", purpose="settlement 2026-10", process_bound=False)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    try:
        p = ctx.Process(target=_ingest_in_another_process, args=(str(tiny_landing), str(wh), out))
        p.start()
        kind, detail = out.get(timeout=300)
        p.join(timeout=60)
        assert kind == "busy", f"ingest ran while a settlement held the warehouse: {detail}"
        assert "settlement 2026-10" in detail
        assert not (wh / "raw").exists()
    finally:
        lock.release(wh, "2026-10-attempt")


def test_files_arriving_during_a_settlement_cannot_change_what_it_settles(
    tmp_path, tiny_landing, monkeypatch
):
    """A settlement holds the warehouse from begin to finish. A file delivered between its
    plan (the input fingerprint) and its publish, and an `ingest` started then from
    another process, are refused: the month is published from exactly the files it
    planned, and the new file loads once the settlement is done."""
    import shutil

    from ingestion_cases.helpers import csv_text, row, write

    from supernova import settle as s

    monkeypatch.setenv("SUPERNOVA_INGEST_QUIET_SECONDS", "0")
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    shutil.copytree(tiny_landing, landing)
    ctx = s.begin(
        {
            "month": "2026-09",
            "landing": str(landing),
            "warehouse": str(wh),
            "preview": False,
            "reopen_reason": "",
            "accept_suspense_reason": "",
            "attempt_id": "2026-09-during",
        }
    )
    try:
        s.ingest_step(ctx)
        plan = s.plan_step(ctx)
        assert plan["action"] == "settle"

        # a late delivery, and the daily ingest from another process, mid-run
        write(
            landing,
            "orders",
            "late.csv",
            csv_text([row("orders", order_id="O-LATE-1")]),
            day="2026-09-20",
        )
        mp_ctx = mp.get_context("spawn")
        out = mp_ctx.Queue()
        p = mp_ctx.Process(target=_ingest_in_another_process, args=(str(landing), str(wh), out))
        p.start()
        kind, detail = out.get(timeout=300)
        p.join(timeout=60)
        assert kind == "busy", f"ingest ran in the middle of a settlement: {detail}"

        s.build_step(ctx, plan)
        s.gate_step(ctx, plan)
        s.publish_step(ctx, plan)
    finally:
        s.finish_step(ctx)
    assert lock.read_lock(wh) is None

    import duckdb

    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        published = con.execute(
            "select input_fingerprint, input_files from settlement.settlement_runs "
            "where status = 'published'"
        ).fetchall()
        late = con.execute(
            "select count(*) from raw.manifest where file_name = 'late.csv'"
        ).fetchone()[0]
    finally:
        con.close()
    assert published == [(plan["input_fingerprint"], plan["input_files"])]
    assert late == 0
    # once the settlement is done, the late file loads (for the next month's run)
    out = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(
        target=_ingest_in_another_process, args=(str(landing), str(wh), out)
    )
    p.start()
    assert out.get(timeout=300) == ("loaded", 1)
    p.join(timeout=60)
