"""The record of one settlement attempt: its state file, its id, and its row in
settlement_runs when it fails, is a preview, or was interrupted.

Steps share state through a small JSON file per attempt
(<warehouse>/runs/<attempt_id>/state.json), which is also what the run record and the
report are made from. Stale-run recovery lives here, on one floor: the lease
(supernova/lock.py) reports the stale owner it cleared, and `recover_interrupted` records
every attempt that started and never finished.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from supernova.months import SHANGHAI
from supernova.warehouse import connect, table_exists


class RunState:
    """The attempt's state file: what each step found, for the next steps and the report."""

    def __init__(self, warehouse: Path, attempt_id: str):
        self.dir = Path(warehouse) / "runs" / attempt_id
        self.path = self.dir / "state.json"

    def load(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def update(self, **items) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = self.load()
        data.update(items)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        os.replace(tmp, self.path)
        return data


def new_attempt_id(month: str) -> str:
    return f"{month}-{datetime.now(SHANGHAI):%Y%m%dT%H%M%S}-{os.getpid()}"


def now_naive() -> datetime:
    """Asia/Shanghai wall-clock time, as settlement_runs stores it."""
    return datetime.now(SHANGHAI).replace(tzinfo=None)


def run_row(ctx: dict, plan: dict, state: dict, status: str, message: str = "") -> dict:
    """The attempt's row of settlement.settlement_runs."""
    gate = state.get("gate") or {}
    checks = {"invariants": gate.get("invariants"), "failed": gate.get("failed_checks")}
    return {
        "attempt_id": ctx["attempt_id"],
        "settlement_month": ctx["month"],
        "status": status,
        "started_at": datetime.fromisoformat(state["started_at"]).replace(tzinfo=None),
        "finished_at": now_naive(),
        "triggered_by": ctx.get("triggered_by"),
        "reopen_reason": ctx["reason"] if ctx.get("reopen") else None,
        "accept_suspense_reason": (
            ctx["accept_suspense_reason"] if ctx.get("accept_suspense") else None
        ),
        "input_fingerprint": plan.get("input_fingerprint"),
        "code_fingerprint": plan.get("code_fingerprint"),
        "input_files": plan.get("input_files"),
        "checks_passed": gate.get("checks_passed"),
        "checks_failed": gate.get("checks_failed"),
        "checks": json.dumps(checks, default=str, ensure_ascii=False) if gate else None,
        "message": message or None,
    }


def is_published(warehouse: Path, run_id: str | None) -> bool:
    """True when run_id's publish transaction committed (even if a later step failed)."""
    if not run_id:
        return False
    try:
        with connect(warehouse) as con:
            return table_exists(con, "settlement", "settlement_runs") and bool(
                con.execute(
                    "select count(*) from settlement.settlement_runs "
                    "where run_id = ? and status = 'published'",
                    [run_id],
                ).fetchone()[0]
            )
    except Exception:
        return False


def record_failed_row(warehouse: Path, row: dict, *, with_totals: bool) -> None:
    """Write a failed, preview or interrupted attempt's row to settlement_runs;
    `with_totals`: add the run totals of whatever the build left (none if it failed early)."""
    from supernova.publish import build_totals, ensure_settlement_schema, record_run

    with connect(warehouse) as con:
        ensure_settlement_schema(con)
        if with_totals:
            try:
                row.update(build_totals(con))
            except Exception:
                pass  # no build output (the run failed before or during dbt)
        record_run(con, row)


def recover_interrupted(
    warehouse: Path, by_attempt: str, log=print, cleared: str | None = None
) -> list[str]:
    """Called by `begin` once it holds the lease: every earlier attempt that started and
    never finished can no longer be running (the lease admits one owner), so it is
    recorded as interrupted. `cleared` is the owner of a stale lease `begin` just cleared
    (lock.acquire reports it); attempts whose lease another writer cleared are found by
    their unfinished state file. Returns the attempts recorded."""
    done = []
    candidates = sorted(p.parent.name for p in (Path(warehouse) / "runs").glob("*/state.json"))
    if cleared and cleared not in candidates:
        candidates.append(cleared)
    for attempt in candidates:
        if attempt == by_attempt:
            continue
        data = RunState(warehouse, attempt).load()
        if data.get("engine") == "spark":
            # published or not is told by Spark's commit markers and recorded in Spark's
            # run record (supernova/spark_runs.py): the next Spark run's begin records it
            if data.get("request") and not data.get("finished_at"):
                log(f"attempt {attempt} ran on Spark: its next Spark run records it")
            continue
        if data.get("request") and not data.get("finished_at"):
            record_interrupted(warehouse, attempt, by_attempt, log)
            done.append(attempt)
    return done


def record_interrupted(warehouse: Path, stale_attempt: str, by_attempt: str, log=print) -> None:
    """An attempt whose process died (its stale lock was just cleared) gets its row in
    settlement_runs as `failed`, so every attempt is accounted for. Whatever it had
    published (a committed transaction) stays published and is repaired by `plan`."""
    state = RunState(warehouse, stale_attempt)
    data = state.load()
    if not data.get("request") or data.get("finished_at"):
        return
    req = data["request"]
    ctx = {**req, "attempt_id": stale_attempt}
    plan = data.get("plan") or {}
    if is_published(warehouse, plan.get("run_id")) and not req.get("preview"):
        state.update(status="published", finished_at=datetime.now(SHANGHAI).isoformat())
        return
    message = (
        f"interrupted: the process died during this attempt (found by attempt {by_attempt}); "
        "nothing of it was published"
    )
    row = run_row(ctx, plan, data, "failed", message)
    row["run_id"] = plan.get("run_id") or f"{req['month']}-unplanned"
    record_failed_row(warehouse, row, with_totals=False)
    state.update(status="failed", error=message, finished_at=datetime.now(SHANGHAI).isoformat())
    log(f"recorded interrupted attempt {stale_attempt} as failed in settlement_runs")


def record_error(ctx: dict, exc: BaseException) -> None:
    """Keep the failure's text for the run record and the report."""
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(error=str(exc))
