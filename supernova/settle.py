"""The monthly settlement run, step by step.

Each step is a plain function so the Airflow DAG (dags/monthly_settlement.py) stays thin
and every step can be tested without a scheduler. Steps share state through the attempt's
state file (supernova/run_state.py), which is also what the run record and the report are
made from. The request and its checks: run_request.py; the plan rules: plan.py; dbt:
dbt_runner.py.

Order: begin (validate, lock) → ingest → plan (fingerprint, closed/order/cutoff checks)
→ build (one dbt invocation) → gate (SQL invariants + Great Expectations) → publish
(atomic) → finish (record the run, write the report, release the lock).
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from supernova import lock
from supernova.dbt_runner import dbt_invoke, failing_test_rows, failures
from supernova.faults import fault_point
from supernova.months import SHANGHAI
from supernova.plan import decide, gather_facts
from supernova.run_request import RunRefused, RunRequest
from supernova.run_state import (
    RunState,
    is_published,
    new_attempt_id,
    record_failed_row,
    recover_interrupted,
    run_row,
)

# the steps, in order, and what they raise (RunRefused: from begin and plan_step)
__all__ = [
    "BuildFailed",
    "GateFailed",
    "RunRefused",
    "begin",
    "ingest_step",
    "plan_step",
    "build_step",
    "gate_step",
    "publish_step",
    "finish_step",
]


class BuildFailed(RuntimeError):
    """dbt failed: a model error or a failing dbt test."""


class GateFailed(RuntimeError):
    """At least one quality check failed: nothing is published."""


def begin(
    params: dict,
    log=print,
    *,
    process_bound: bool = True,
    dag_id: str | None = None,
    dag_run_id: str | None = None,
    engine: str | None = None,
    recover=None,
) -> dict:
    """Validate the request and take the warehouse lease for this attempt (held until
    `finish_step`). `process_bound`: the whole run lives in this process (`supernova
    settle`, direct calls); under a scheduler the lease is bound to the DAG run instead.
    `engine` and `recover`: another engine's name (recorded in the state with the request)
    and its way of recording interrupted attempts (supernova/spark_settle.py); the default
    is DuckDB's. Returns the attempt context."""
    recover = recover or recover_interrupted
    req = RunRequest.from_params(params)
    attempt_id = str(params.get("attempt_id") or "").strip() or new_attempt_id(req.month)
    warehouse = Path(req.warehouse)
    stale = lock.acquire(
        warehouse,
        attempt_id,
        log=log,
        purpose=f"{lock.SETTLEMENT} {req.month}",
        process_bound=process_bound,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
    )
    # every attempt is accounted for: one whose lease was cleared here, or earlier by
    # another writer, and that never finished, is recorded as interrupted
    recover(warehouse, attempt_id, log, cleared=stale.run_id if stale else None)
    RunState(warehouse, attempt_id).update(
        request=asdict(req),
        attempt_id=attempt_id,
        **({"engine": engine} if engine else {}),
        started_at=datetime.now(SHANGHAI).isoformat(),
        host=socket.gethostname(),
    )
    log(
        f"settlement {req.month}{f' on {engine.capitalize()}' if engine else ''}: "
        f"attempt {attempt_id}"
        + (" (PREVIEW: publishes nothing)" if req.preview else "")
        + (f" (REOPEN: {req.reason})" if req.reopen else "")
    )
    return req.context(attempt_id)


def ingest_step(ctx: dict, log=print) -> dict:
    """Load every new export file first, so the run sees everything delivered."""
    from ingestion import IngestResult, ingest

    result = ingest(Path(ctx["landing"]), Path(ctx["warehouse"]), progress=log)
    pause = quiet_files_pause(Path(ctx["landing"]), result)
    if pause:
        # a month closes once: a file that is merely younger than the quiet period will be
        # readable in a few seconds, so the close waits for it once rather than closing
        # the month without it (files that keep changing are still left, with the warning)
        log(
            f"{len(result.by_status('waiting'))} landing file(s) younger than the quiet "
            f"period: waiting {pause:.0f} s for them, then reading the landing again"
        )
        log(result.summary())
        time.sleep(pause)
        # the second read reports the first one's files as already seen: the step's outcome
        # is both reads' (a file rejected before the wait still counts, no file twice)
        again = ingest(Path(ctx["landing"]), Path(ctx["warehouse"]), progress=log)
        result = IngestResult.after_wait(result, again)
    summary = {"ok": result.ok, "summary": result.summary()}
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(ingest=summary)
    fault_point("after_ingest")
    log(result.summary())
    if not result.ok:
        log(
            "WARNING: some landing files were rejected (see above and raw.manifest); the "
            "settlement continues without them and the report lists them."
        )
    waiting = result.as_dict().get("waiting") or []
    if waiting:
        # a run sees what was delivered by the time it runs (§4): a file still being written
        # is not delivered yet; say so, since a rerun after it completes would settle it
        log(
            f"WARNING: {len(waiting)} landing file(s) still being written (or younger than the "
            "quiet period) are not part of this run: the month settles what was delivered "
            "when it ran; their lines settle in a later month's run, or by a reopen."
        )
    return summary


def quiet_files_pause(landing: Path, result) -> float:
    """Seconds until every waiting file that is only younger than the quiet period has
    been unchanged for it (0 when none: temporary names wait for their rename, not time)."""
    from ingestion.landing import quiet_seconds, temporary_name

    quiet, now, pause = quiet_seconds(), time.time(), 0.0
    for waiting in result.by_status("waiting"):
        if temporary_name(waiting.path):
            continue
        try:
            age = now - (landing / waiting.path).stat().st_mtime
        except OSError:
            continue  # gone meanwhile: the next read reports it
        pause = max(pause, min(quiet, quiet - age) + 1.0)
    return pause


def plan_step(ctx: dict, log=print, now: datetime | None = None) -> dict:
    """Decide what this run does: settle, report 'unchanged', or refuse with the reason
    (the rules: supernova/plan.py)."""
    facts = gather_facts(ctx, log, now)
    decision = decide(ctx, facts)
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(plan=decision)
    log(
        decision["message"]
        or f"plan: settle {ctx['month']} as run {decision['run_id']} (first month "
        f"{decision['first_month']}, {facts.input_files} input files, cutoff "
        f"{facts.cutoff:%Y-%m-%d %H:%M})"
    )
    return decision


def build_step(ctx: dict, plan: dict, log=print) -> dict:
    """One `dbt build` of staging (incremental: new files only) → intermediate → settlement
    for the month."""
    warehouse = Path(ctx["warehouse"])
    if plan["action"] != "settle":
        return {"skipped": True}
    t0 = time.time()
    vars_ = {
        "settlement_month": ctx["month"],
        "run_id": plan["run_id"],
        "first_month": plan["first_month"],
        "accept_suspense": bool(ctx["accept_suspense"]),
    }
    # Unit tests run in the test suite, not here: they need no data and must not block a month.
    # `+path:models/settlement`: the settlement models and everything upstream of them
    # (staging, int_settlement__*), with their data tests; not the marts. Plus the
    # reconciliation of the promoters' estimated earnings with this close (issue 15).
    # Staging is incremental: it merges only files not yet staged, unless its code changed;
    # when the ingest path already merged and tested every loaded file, it is left out.
    from supernova import staging
    from supernova.summary import heartbeat

    staging_build = staging.plan_build(warehouse, log)
    with heartbeat("dbt build", log):
        res = dbt_invoke(
            warehouse,
            [
                "build",
                "--select",
                "+path:models/settlement",
                "rpt_promoter_earnings_reconciliation",
                "--exclude-resource-type",
                "unit_test",
                *staging_build.args,
            ],
            {**vars_, **staging_build.vars},
        )
    elapsed = round(time.time() - t0, 1)
    if not res.success:
        _build_failed(ctx, res, elapsed)
    staging_build.record(warehouse)
    n = len(getattr(res.result, "results", []) or [])
    fault_point("after_build")
    RunState(warehouse, ctx["attempt_id"]).update(
        build={"ok": True, "seconds": elapsed, "nodes": n}
    )
    log(f"dbt build: {n} models and tests passed in {elapsed} s")
    return {"ok": True, "seconds": elapsed}


def _build_failed(ctx: dict, res, elapsed: float) -> None:
    """Record what failed (with example rows of failing tests) and raise BuildFailed."""
    warehouse = Path(ctx["warehouse"])
    found = failures(res)
    examples = failing_test_rows(res, warehouse)
    problems = [
        {"node": f.node, "status": f.status, "message": f.message, **examples.get(f.node, {})}
        for f in found
        if not f.skipped
    ]
    skipped = [f.node for f in found if f.skipped]
    RunState(warehouse, ctx["attempt_id"]).update(
        build={"ok": False, "seconds": elapsed, "failures": problems, "skipped": skipped}
    )
    lines = [
        f"dbt build failed for {ctx['month']} ({len(problems)} problem(s)); nothing was published:"
    ]
    for f in problems:
        lines.append(f"  - {f['node']}: {f['message'][:500]}")
        for ex in f.get("examples", [])[:5]:
            lines.append(f"      e.g. {ex}")
    if skipped:
        lines.append(f"  ({len(skipped)} node(s) not run because of these)")
    raise BuildFailed("\n".join(lines))


def gate_step(ctx: dict, plan: dict, log=print) -> dict:
    """Run the quality gate; raise GateFailed (nothing published) when any check fails."""
    from supernova.gate import run_gate
    from supernova.summary import heartbeat

    warehouse = Path(ctx["warehouse"])
    if plan["action"] != "settle":
        return {"skipped": True}
    t0 = time.time()
    with heartbeat("quality gate (Great Expectations + invariants)", log):
        gate = run_gate(warehouse, ctx["month"])
    return gate_verdict(ctx, gate, time.time() - t0, log)


def gate_verdict(ctx: dict, gate: dict, seconds: float, log=print) -> dict:
    """Record the gate's result for the report and raise GateFailed (nothing published)
    when any check failed; the same for every engine's gate (supernova/spark_settle.py)."""
    from supernova.gate import describe_failures

    gate["seconds"] = round(seconds, 1)
    fault_point("during_validate")
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(gate=gate)
    if not gate["ok"]:
        raise GateFailed(
            f"quality gate FAILED for {ctx['month']}: nothing was published.\n"
            + describe_failures(gate)
        )
    log(
        f"quality gate passed: {gate['checks_passed']} expectations, "
        f"{len(gate['invariants'])} invariants with 0 violations"
    )
    return {"ok": True}


def publish_step(ctx: dict, plan: dict, log=print) -> dict:
    """Publish the month (not for previews or unchanged months)."""
    from supernova.publish import publish_month

    warehouse = Path(ctx["warehouse"])
    state = RunState(warehouse, ctx["attempt_id"])
    if plan["action"] != "settle" or ctx["preview"]:
        log("preview: nothing published" if ctx["preview"] else plan["message"])
        return {"published": False}
    row = run_row(
        ctx, plan, state.load(), "published", f"reopened: {ctx['reason']}" if ctx["reopen"] else ""
    )
    counts = publish_month(warehouse, ctx["month"], plan["run_id"], row, reopen=ctx["reopen"])
    state.update(publish={"published": True, "run_id": plan["run_id"], "rows": counts})
    log(
        f"published {ctx['month']} as run {plan['run_id']}: "
        + ", ".join(f"{t} {n}" for t, n in counts.items())
    )
    return {"published": True, "rows": counts}


def finish_step(
    ctx: dict | None,
    log=print,
    *,
    record_failed=None,
    is_month_published=None,
) -> dict:
    """Always runs last (teardown): record a failed/preview attempt, write the report,
    release the lock. A published run was already recorded inside its transaction.
    The engine decides how a failed attempt is recorded (`record_failed(warehouse, row,
    state)`) and whether its run was published (`is_month_published(ctx, run_id)`); the
    defaults are DuckDB's (supernova/spark_settle.py passes Spark's)."""
    from supernova.report import write_report

    if not ctx:
        return {}
    record_failed = record_failed or _record_failed_in_duckdb
    is_month_published = is_month_published or _published_in_duckdb
    warehouse = Path(ctx["warehouse"])
    state = RunState(warehouse, ctx["attempt_id"])
    data = state.load()
    plan = data.get("plan") or {}
    try:
        status = final_status(ctx, data, plan, is_month_published)
        if status in ("failed", "preview"):
            row = run_row(ctx, plan, data, status, data.get("error", ""))
            row["run_id"] = plan.get("run_id") or f"{ctx['month']}-unplanned"
            try:
                record_failed(warehouse, row, data)
            except Exception as exc:  # recording must not hide the original failure
                log(f"could not record the run in settlement_runs: {exc}")
        data = state.update(status=status, finished_at=datetime.now(SHANGHAI).isoformat())
        report = write_report(warehouse, data)
        log(f"report: {report}")
        return {"status": status, "report": str(report), "attempt_id": ctx["attempt_id"]}
    finally:
        lock.release(warehouse, ctx["attempt_id"])


def _record_failed_in_duckdb(warehouse: Path, row: dict, state: dict) -> None:
    record_failed_row(warehouse, row, with_totals=True)


def _published_in_duckdb(ctx: dict, run_id: str | None) -> bool:
    return is_published(Path(ctx["warehouse"]), run_id)


def final_status(ctx: dict, data: dict, plan: dict, is_month_published) -> str:
    """unchanged, published, preview or failed: what the attempt ended as."""
    if plan.get("action") == "unchanged":
        return "unchanged"
    if data.get("publish", {}).get("published") or (
        not ctx["preview"] and is_month_published(ctx, plan.get("run_id"))
    ):
        return "published"
    if ctx["preview"] and data.get("gate") is not None and "error" not in data:
        return "preview"
    return "failed"
