"""The production deployment, run for real (issue #14): PostgreSQL, `airflow-init`, and the
api-server, scheduler, dag-processor and triggerer of docker-compose.yml as separate
processes of an unprivileged user on 127.0.0.1 (fixture `stack`, tests/deployment/conftest.py),
driven only through the REST API, as operations and finance would.

The tests run in file order on one stack and one warehouse:

1. operations: an ingest_exports run that loads files triggers analytics_marts once
   through the Asset; a run that loads nothing triggers nothing;
2. finance settles the programme's first month (2026-09) the way the UI's trigger dialog
   does it: trigger, then unpause (the scheduler's own run for the latest cutoff, 2026-10,
   must not settle its month first; run after September it may);
3. the next month (2026-10; "unchanged" when the scheduler's run settled it already);
4. 2026-10 reopened with a reason;
5. bad requests refused at trigger time (HTTP 400), before any run exists;
6. every run records the user who triggered it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.deployment

RAW_ASSET = "supernova://warehouse/raw"
TERMINAL = {"success", "failed"}
RUN_TIMEOUT = 900  # seconds; a tiny month takes ~1-2 min on 2 cores
# an ingest that loaded nothing skips the task that updates the Asset
INGEST_MAY_SKIP = ("announce_new_data",)


def _wait_run(stack, dag_id: str, run_id: str) -> dict:
    """The run once finished (its state terminal and its end date set)."""

    def finished():
        run = stack.api.run(dag_id, run_id)
        return run if run["state"] in TERMINAL and run["end_date"] else None

    return stack.wait_for(finished, RUN_TIMEOUT, f"{dag_id} run {run_id} to finish", interval=2)


def _wait_idle(stack, dag_id: str, *, states=("queued", "running")) -> list[dict]:
    """Wait until dag_id has runs and none in `states`; return its runs."""

    def idle():
        runs = stack.api.runs(dag_id)
        return runs if runs and not any(r["state"] in states for r in runs) else None

    return stack.wait_for(idle, RUN_TIMEOUT, f"no {'/'.join(states)} run of {dag_id}", interval=2)


def _trigger(stack, dag_id: str, conf: dict) -> str:
    status, payload = stack.api.trigger(dag_id, conf)
    assert status == 200, f"trigger {dag_id} {conf}: HTTP {status} {payload}"
    return payload["dag_run_id"]


def _assert_succeeded(stack, dag_id: str, run: dict, *, may_skip=()) -> None:
    """The run succeeded and so did every task (but those in may_skip, which may be skipped)."""
    tis = {ti["task_id"]: ti["state"] for ti in stack.api.task_instances(dag_id, run["dag_run_id"])}
    ok = all(
        state == "success" or (task in may_skip and state == "skipped")
        for task, state in tis.items()
    )
    assert run["state"] == "success" and tis and ok, (
        f"{dag_id} {run['dag_run_id']}: {run['state']} {tis}\n"
        f"{stack.task_logs(dag_id, run['dag_run_id'])}"
    )


def _settlement_runs(warehouse: Path) -> list[dict]:
    path = warehouse / "parquet" / "settlement" / "settlement_runs" / "settlement_runs.parquet"
    if not path.exists():
        return []
    rel = duckdb.sql(f"select * from read_parquet('{path}') order by started_at, attempt_id")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def _published(warehouse: Path, month: str) -> list[dict]:
    return [
        r
        for r in _settlement_runs(warehouse)
        if r["settlement_month"] == month and r["status"] == "published"
    ]


def _payouts_partition(warehouse: Path, month: str) -> list[Path]:
    part = warehouse / "parquet" / "settlement" / "payouts" / f"settlement_month={month}"
    return sorted(part.glob("*.parquet"))


# ------------------------------------------------------------------------ operations


def test_ingest_that_loads_files_triggers_marts_once_and_a_noop_ingest_nothing(stack):
    api = stack.api
    api.set_paused("analytics_marts", False)
    loading = _trigger(stack, "ingest_exports", {})
    api.set_paused("ingest_exports", False)
    first = _wait_run(stack, "ingest_exports", loading)
    _assert_succeeded(stack, "ingest_exports", first, may_skip=INGEST_MAY_SKIP)
    # Every landing file is loaded now (by this run, or a catch-up run that ran before it).
    # The next ingest run loads nothing: a catch-up run if the DAG catches up (queued runs
    # start in logical-date order, so a manual run would wait for all of them), else ours.
    if not any(r["state"] in ("queued", "running") for r in api.runs("ingest_exports")):
        _trigger(stack, "ingest_exports", {})

    def next_finished():
        later = [
            r
            for r in api.runs("ingest_exports")
            if r["state"] in TERMINAL and r["start_date"] and r["start_date"] > first["end_date"]
        ]
        return min(later, key=lambda r: r["start_date"]) if later else None

    second = stack.wait_for(
        next_finished, RUN_TIMEOUT, "an ingest run after the loading one", interval=2
    )
    noop = second["dag_run_id"]
    api.set_paused("ingest_exports", True)  # further catch-up runs stay queued from here on
    _assert_succeeded(stack, "ingest_exports", second, may_skip=INGEST_MAY_SKIP)
    _wait_idle(stack, "ingest_exports", states=("running",))
    marts = _wait_idle(stack, "analytics_marts")

    events = api.asset_events(RAW_ASSET)
    sources = [(e["source_dag_id"], e["source_run_id"]) for e in events]
    assert len(events) == 1, (
        f"one ingest loaded the files, yet {RAW_ASSET} was updated by {sources}"
    )
    assert sources[0][1] != noop, "the ingest run that loaded nothing updated the Asset"
    assert [(r["run_type"], r["state"]) for r in marts] == [("asset_triggered", "success")], (
        marts,
        stack.task_logs("analytics_marts", marts[0]["dag_run_id"]) if marts else "",
    )
    assert (stack.warehouse / "parquet" / "marts").is_dir()
    # the scheduler's staging step recorded its stamp as verified (supernova/staging.py):
    # the next build's staging tests read only the rows written after it
    with duckdb.connect(str(stack.warehouse / "supernova.duckdb"), read_only=True) as con:
        (verified_through,) = con.execute(
            "select verified_through from staging.staging_code"
        ).fetchone()
        written = con.execute(
            "select count(*), max(_staged_at) from staging.stg_exports__orders"
        ).fetchone()
    assert verified_through is not None and written[0] > 0 and written[1] <= verified_through, (
        verified_through,
        written,
    )


# --------------------------------------------------------------------------- finance


def test_first_month_settles_under_the_scheduler(stack):
    api = stack.api
    september = _trigger(stack, "monthly_settlement", {"month": "2026-09"})
    api.set_paused("monthly_settlement", False)  # as the trigger dialog does
    run = _wait_run(stack, "monthly_settlement", september)
    _wait_idle(stack, "monthly_settlement")  # the scheduler's own run for the latest cutoff too
    _assert_succeeded(stack, "monthly_settlement", run)

    published = [r for r in _settlement_runs(stack.warehouse) if r["status"] == "published"]
    assert published and published[0]["settlement_month"] == "2026-09", (
        "the first month published must be the programme's first month, 2026-09: "
        f"{[(r['settlement_month'], r['status'], r['started_at']) for r in published]}"
    )
    assert _payouts_partition(stack.warehouse, "2026-09")


def test_next_month_settles(stack):
    run = _wait_run(
        stack, "monthly_settlement", _trigger(stack, "monthly_settlement", {"month": "2026-10"})
    )
    _assert_succeeded(stack, "monthly_settlement", run)
    assert len(_published(stack.warehouse, "2026-10")) == 1
    assert _payouts_partition(stack.warehouse, "2026-10")


REOPEN_REASON = "finance: a late refund to correct (deployment test)"


def test_reopen_with_a_reason(stack):
    before = _published(stack.warehouse, "2026-10")
    run = _wait_run(
        stack,
        "monthly_settlement",
        _trigger(stack, "monthly_settlement", {"month": "2026-10", "reopen_reason": REOPEN_REASON}),
    )
    _assert_succeeded(stack, "monthly_settlement", run)
    now = _published(stack.warehouse, "2026-10")
    assert len(now) == 1 and now[0]["reopen_reason"] == REOPEN_REASON, now
    assert now[0]["run_id"] != before[0]["run_id"]
    old = [r for r in _settlement_runs(stack.warehouse) if r["run_id"] == before[0]["run_id"]]
    assert {r["status"] for r in old} == {"reopened"}, old
    assert _payouts_partition(stack.warehouse, "2026-10")


@pytest.mark.parametrize(
    "conf, words",
    [
        ({"month": "2026-13"}, "2026-13"),
        ({"Month": "2026-09"}, "Month"),
    ],
    ids=["month-13", "misspelt-key"],
)
def test_bad_requests_are_refused_at_trigger_time(stack, conf, words):
    runs_before = len(stack.api.runs("monthly_settlement"))
    status, payload = stack.api.trigger("monthly_settlement", conf)
    assert status == 400, f"{conf}: HTTP {status} {payload}"
    assert words in str(payload), payload
    assert len(stack.api.runs("monthly_settlement")) == runs_before


def test_runs_record_the_triggering_user(stack):
    """Finance's runs name the Airflow user who triggered them; the scheduler's own run
    (2026-10, when it ran after September was published) names the scheduler."""
    user, _ = stack.admin
    rows = _settlement_runs(stack.warehouse)
    september = _published(stack.warehouse, "2026-09")
    reopen = [r for r in rows if r["reopen_reason"] == REOPEN_REASON]
    assert september and september[0]["triggered_by"] == user, september
    assert reopen and reopen[0]["triggered_by"] == user, reopen
    assert {r["triggered_by"] for r in rows} <= {user, "scheduler"}, [
        (r["settlement_month"], r["status"], r["triggered_by"]) for r in rows
    ]
