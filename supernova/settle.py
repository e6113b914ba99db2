"""The monthly settlement run, step by step.

Each step is a plain function so the Airflow DAG (dags/monthly_settlement.py) stays thin
and every step can be tested without a scheduler. Steps share state through a small
JSON file per attempt (<warehouse>/runs/<attempt_id>/state.json), which is also what
the run record and the report are made from.

Order: begin (validate, lock) → ingest → plan (fingerprint, closed/order/cutoff checks)
→ build (one dbt invocation) → gate (SQL invariants + Great Expectations) → publish
(atomic) → finish (record the run, write the report, release the lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from supernova import lock, settings
from supernova.faults import dbt_callbacks, fault_point
from supernova.warehouse import connect, table_exists, wait_until_free

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTH_RE = settings.MONTH_RE


class RunRefused(RuntimeError):
    """The run may not proceed (closed month, order, cutoff, bad request)."""


class BuildFailed(RuntimeError):
    """dbt failed: a model error or a failing dbt test."""


class GateFailed(RuntimeError):
    """At least one quality check failed: nothing is published."""


# ---------------------------------------------------------------- request and state


# The parameters of a settlement run (the monthly_settlement DAG's params, the REST API's
# `conf`, `supernova settle`'s flags). A reopen is expressed by its reason, and so is
# accepting suspense above the limit: a reopen without a reason cannot be asked for.
REQUEST_KEYS = (
    "month",
    "preview",
    "reopen_reason",
    "accept_suspense_reason",
    "landing",
    "warehouse",
    "attempt_id",
)
# set by the DAG's begin task from the Airflow run itself, never by whoever triggers it
INTERNAL_KEYS = ("triggered_by", "scheduled")
MONTH_WORDS = "month must be a calendar month written YYYY-MM, e.g. 2026-10"


def request_problems(conf: dict, *, month_required: bool = True) -> list[str]:  # noqa: C901 - to split (issue 18)
    """Everything wrong with a run's parameters, in words (empty list: fine). Used by the
    first task and by the API server's trigger guard (supernova/trigger_guard.py), so a
    bad request is refused the same way wherever it comes in."""
    import difflib

    problems = []
    if not isinstance(conf, dict):
        return ['the run\'s parameters must be a JSON object such as {"month": "2026-10"}']
    for key in conf:
        if key not in REQUEST_KEYS and key not in INTERNAL_KEYS:
            near = difflib.get_close_matches(str(key).lower(), REQUEST_KEYS, n=1)
            problems.append(
                f"unknown parameter {key!r}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f": the parameters are {', '.join(REQUEST_KEYS)}"
            )
    month = conf.get("month")
    if month is None or month == "":
        if month_required:
            problems.append(f"{MONTH_WORDS}; it is empty")
    elif not isinstance(month, str) or not MONTH_RE.match(month.strip()):
        problems.append(f"{MONTH_WORDS}, not {month!r}")
    if not isinstance(conf.get("preview", False), bool):
        problems.append(f"preview must be true or false, not {conf['preview']!r}")
    for key, what in (
        ("reopen_reason", "why the closed month is reopened"),
        ("accept_suspense_reason", "why suspense above the limit is accepted"),
    ):
        value = conf.get(key, "")
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(f"{key} must be text ({what}), not {value!r}")
        elif value and not value.strip():
            problems.append(f"{key} is blank: write {what}, or leave it empty")
    for key in ("landing", "warehouse", "attempt_id"):
        if conf.get(key) is not None and not isinstance(conf.get(key), str):
            problems.append(f"{key} must be text, not {conf[key]!r}")
    if (
        conf.get("preview") is True
        and isinstance(conf.get("reopen_reason"), str)
        and conf["reopen_reason"].strip()
    ):
        problems.append(
            "preview and reopen_reason exclude each other: a preview publishes nothing, "
            "so it cannot reopen a month; leave reopen_reason empty or turn preview off"
        )
    attempt = conf.get("attempt_id")
    if (
        isinstance(attempt, str)
        and attempt.strip()
        and not re.match(r"^[0-9A-Za-z_.-]+$", attempt.strip())
    ):
        problems.append(
            f"attempt_id may only hold letters, digits, '.', '_' and '-', not {attempt!r}"
        )
    return problems


@dataclass
class RunRequest:
    month: str
    landing: str
    warehouse: str
    preview: bool = False
    # derived from reopen_reason / accept_suspense_reason (kept for the report and the record)
    reopen: bool = False
    reason: str = ""
    accept_suspense: bool = False
    accept_suspense_reason: str = ""
    triggered_by: str = ""
    scheduled: bool = False  # started by the schedule, not by a person

    def context(self, attempt_id: str) -> dict:
        """The attempt context every step takes (what `begin` returns)."""
        return {"attempt_id": attempt_id, **asdict(self)}

    @classmethod
    def from_params(cls, params: dict) -> RunRequest:
        problems = request_problems(params)
        if problems:
            raise RunRefused("the run's parameters are refused: " + "; ".join(problems))
        reopen_reason = str(params.get("reopen_reason") or "").strip()
        suspense_reason = str(params.get("accept_suspense_reason") or "").strip()
        return cls(
            month=str(params["month"]).strip(),
            landing=str(Path(params.get("landing") or settings.default_landing()).resolve()),
            warehouse=str(Path(params.get("warehouse") or settings.default_warehouse()).resolve()),
            preview=bool(params.get("preview", False)),
            reopen=bool(reopen_reason),
            reason=reopen_reason,
            accept_suspense=bool(suspense_reason),
            accept_suspense_reason=suspense_reason,
            triggered_by=str(params.get("triggered_by") or _os_user()),
            scheduled=bool(params.get("scheduled", False)),
        )


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name for this uid (a container): say so rather than guess
        return f"uid {os.getuid()}"


def month_bounds(month: str, cutoff_day: int) -> tuple[datetime, datetime, datetime]:
    """(start of M, start of M+1, cutoff of M) as Asia/Shanghai datetimes."""
    y, m = int(month[:4]), int(month[5:7])
    start = datetime(y, m, 1, tzinfo=SHANGHAI)
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    nxt = datetime(ny, nm, 1, tzinfo=SHANGHAI)
    return start, nxt, nxt.replace(day=cutoff_day)


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}"


def settlement_config() -> dict:
    """The settlement configuration (vars.supernova of dbt_project.yml). dbt validates
    all of it at the start of every invocation; Python reads what orchestration needs."""
    import yaml

    with open(settings.DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as f:
        cfg = yaml.safe_load(f)["vars"]["supernova"]
    day = cfg.get("cutoff_day")
    if not isinstance(day, int) or not 1 <= day <= 28:
        raise ValueError(f"settlement config: cutoff_day must be a whole number 1..28, got {day!r}")
    first = cfg.get("first_month")
    if not isinstance(first, str) or not MONTH_RE.match(first):
        raise ValueError(
            "settlement config: first_month (the programme's first month) must be a "
            f'calendar month written YYYY-MM in quotes, e.g. "2026-09", got {first!r}'
        )
    return cfg


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


# ---------------------------------------------------------------- steps


def new_attempt_id(month: str) -> str:
    return f"{month}-{datetime.now(SHANGHAI):%Y%m%dT%H%M%S}-{os.getpid()}"


def begin(
    params: dict,
    log=print,
    *,
    process_bound: bool = True,
    dag_id: str | None = None,
    dag_run_id: str | None = None,
) -> dict:
    """Validate the request and take the warehouse lease for this attempt (held until
    `finish_step`). `process_bound`: the whole run lives in this process (`supernova
    settle`, direct calls); under a scheduler the lease is bound to the DAG run instead.
    Returns the attempt context."""
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
    recover_interrupted(warehouse, attempt_id, log, cleared=stale.run_id if stale else None)
    state = RunState(Path(req.warehouse), attempt_id)
    state.update(
        request=asdict(req),
        attempt_id=attempt_id,
        started_at=datetime.now(SHANGHAI).isoformat(),
        host=socket.gethostname(),
    )
    log(
        f"settlement {req.month}: attempt {attempt_id}"
        + (" (PREVIEW: publishes nothing)" if req.preview else "")
        + (f" (REOPEN: {req.reason})" if req.reopen else "")
    )
    return req.context(attempt_id)


def ingest_step(ctx: dict, log=print) -> dict:
    """Load every new export file first, so the run sees everything delivered."""
    from ingestion import ingest

    result = ingest(Path(ctx["landing"]), Path(ctx["warehouse"]), progress=log)
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


def _code_fingerprint() -> str:
    h = hashlib.sha256()
    root = settings.DBT_PROJECT_DIR
    # what the settlement depends on: its models and their upstream, macros and tests;
    # not the analytics marts (a mart change must not reopen a closed month)
    candidates = [
        p for d in ("models", "macros", "tests") for p in (root / d).rglob("*") if p.is_file()
    ]
    files = [root / "dbt_project.yml"] + sorted(
        p
        for p in candidates
        if "marts" not in p.relative_to(root).parts and not p.name.startswith("marts_")
    )
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def published_runs(con) -> list[dict]:
    if not table_exists(con, "settlement", "settlement_runs"):
        return []
    cur = con.execute(
        "select run_id, settlement_month, input_fingerprint, finished_at from settlement.settlement_runs "
        "where status = 'published' order by settlement_month"
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def plan_step(ctx: dict, log=print, now: datetime | None = None) -> dict:  # noqa: C901 - to split (issue 18)
    """Decide what this run does: settle, report 'unchanged', or refuse with the reason."""
    from ingestion import ensure_raw_schema

    warehouse = Path(ctx["warehouse"])
    month = ctx["month"]
    cfg = settlement_config()
    _, _, cutoff = month_bounds(month, cfg["cutoff_day"])
    now = now or datetime.now(SHANGHAI)
    ensure_raw_schema(warehouse)
    from supernova.publish import sync_parquet

    repaired = sync_parquet(warehouse)  # finishes a publish interrupted after its DuckDB commit
    if repaired:
        log(f"repaired Parquet copies of published months: {', '.join(repaired)}")
    with connect(warehouse) as con:
        files = con.execute(
            "select sha256 from raw.manifest where status = 'loaded' order by sha256"
        ).fetchall()
        runs = published_runs(con)
    h = hashlib.sha256()
    h.update(month.encode())
    for (sha,) in files:
        h.update(sha.encode())
    code = _code_fingerprint()
    h.update(code.encode())
    h.update(b"accept_suspense" if ctx["accept_suspense"] else b"")
    fingerprint = h.hexdigest()
    published = {r["settlement_month"]: r for r in runs}
    programme_first = cfg["first_month"]  # vars.supernova.first_month
    # the first month settled in this warehouse is the programme's first month (§4)
    first_month = min(published) if published else month
    reopen_count = 0
    action = "settle"
    message = ""

    if month in published:
        current = published[month]
        if ctx["reopen"]:
            later = sorted(m for m in published if m > month)
            if later:
                raise RunRefused(
                    f"{month} cannot be reopened while later months are published ({', '.join(later)}): "
                    "their ledgers build on it. Reopen is only allowed for the latest closed month."
                )
            with connect(warehouse) as con:
                reopen_count = con.execute(
                    "select count(*) from settlement.settlement_runs where settlement_month = ? and status in ('published', 'reopened')",
                    [month],
                ).fetchone()[0]
        elif ctx["preview"]:
            action = "settle"
        elif current["input_fingerprint"] == fingerprint:
            action = "unchanged"
            # this attempt reports on the run that published the month (after a reopen,
            # the reopened run, not the one it superseded)
            unchanged_run_id = current["run_id"]
            message = (
                f"{month} is closed (published by run {current['run_id']}) and the inputs are "
                "unchanged: nothing to do, nothing changed."
            )
        else:
            raise RunRefused(
                f"{month} is closed (published by run {current['run_id']}) and its inputs have changed "
                "since (new or corrected files, code or configuration). A closed month never changes "
                "silently: late refunds become clawbacks in the next month's run. To change "
                f"{month} itself, run it again with reopen and a reason."
            )
    else:
        if ctx["reopen"]:
            raise RunRefused(f"{month} has not been published, so there is nothing to reopen.")
        if not published and month < programme_first:
            raise RunRefused(
                f"{month} is before the programme's first month {programme_first} "
                "(vars.supernova.first_month in dbt_project/dbt_project.yml): lines completed "
                "before it are out of scope."
            )
        if (
            not published
            and ctx.get("scheduled")
            and month != programme_first
            and not ctx["preview"]
        ):
            raise RunRefused(
                f"a scheduled run does not start the programme: nothing is published in this "
                f"warehouse yet, and the programme's first month is {programme_first}, not {month}. "
                f"Settle {programme_first} first (trigger the monthly_settlement DAG by hand with "
                f"month {programme_first}); the schedule then continues month by month."
            )
        if published and not ctx["preview"]:
            latest = max(published)
            if month < first_month:
                raise RunRefused(
                    f"{month} is before the first settled month {first_month} of this warehouse: "
                    "lines completed before the programme's first month are out of scope."
                )
            if month != next_month(latest):
                raise RunRefused(
                    f"months settle in order: the latest closed month is {latest}, so the next one "
                    f"to settle is {next_month(latest)}, not {month}."
                )
        if now < cutoff and not ctx["preview"]:
            raise RunRefused(
                f"{month} cannot be settled before its cutoff {cutoff:%Y-%m-%d %H:%M} Asia/Shanghai "
                "(the 7-day no-reason return window). Run it as a preview to see the figures; "
                "a preview publishes nothing."
            )

    if ctx["preview"]:
        run_id = f"{month}-preview-{fingerprint[:10]}"
    elif action == "unchanged":
        run_id = unchanged_run_id
    else:
        run_id = f"{month}-r{reopen_count}-{fingerprint[:10]}"
    plan = {
        "action": action,
        "message": message,
        "run_id": run_id,
        "first_month": first_month,
        "input_fingerprint": fingerprint,
        "code_fingerprint": code,
        "input_files": len(files),
        "cutoff": cutoff.isoformat(),
        "reopen_count": reopen_count,
    }
    RunState(warehouse, ctx["attempt_id"]).update(plan=plan)
    log(
        message
        or f"plan: settle {month} as run {run_id} (first month {first_month}, "
        f"{len(files)} input files, cutoff {cutoff:%Y-%m-%d %H:%M})"
    )
    return plan


def dbt_invoke(warehouse: Path, args: list[str], vars_: dict | None = None):
    """One dbt invocation in this process against the warehouse file."""
    from dbt.cli.main import dbtRunner

    warehouse = Path(warehouse)
    wait_until_free(warehouse)  # dbt opens the file itself: wait (bounded) for a reader holding it
    os.environ["SUPERNOVA_DUCKDB_PATH"] = str(settings.duckdb_path(warehouse))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    full = args + [
        "--project-dir",
        str(settings.DBT_PROJECT_DIR),
        "--profiles-dir",
        str(settings.DBT_PROJECT_DIR),
        "--target-path",
        str(warehouse / "dbt" / "target"),
        "--log-path",
        str(warehouse / "dbt" / "logs"),
    ]
    if vars_ is not None:
        full += ["--vars", json.dumps(vars_)]
    try:
        return dbtRunner(callbacks=dbt_callbacks()).invoke(full)
    finally:
        _release_dbt_duckdb()


def _release_dbt_duckdb() -> None:
    """dbt-duckdb keeps the database open in this process after the invocation; close it
    so the next step (or another process) can open the file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None and hasattr(env, "close"):
            env.close()


def _failures(res, warehouse: Path) -> list[dict]:
    """Failed dbt nodes with their message and, for failing tests, example rows."""
    out = []
    results = getattr(res.result, "results", None) or []
    examples_sql = []
    for r in results:
        status = str(getattr(r, "status", ""))
        if status.lower() in ("error", "fail", "runtimeerr"):
            node = r.node
            item = {"node": node.unique_id, "status": status, "message": (r.message or "").strip()}
            if node.resource_type == "test" and getattr(node, "compiled_code", None):
                examples_sql.append((item, node.compiled_code))
            out.append(item)
    if examples_sql:
        with connect(warehouse, read_only=True) as con:
            for item, sql in examples_sql:
                try:
                    cur = con.execute(f"select * from ({sql}) as failing limit 5")
                    cols = [d[0] for d in cur.description]
                    item["examples"] = [dict(zip(cols, map(str, row))) for row in cur.fetchall()]
                except Exception as exc:  # the example query is a courtesy; the failure stands
                    item["examples_error"] = str(exc)
    if res.exception is not None:
        out.append({"node": "dbt", "status": "exception", "message": str(res.exception)})
    return out


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
    from supernova import staging
    from supernova.summary import heartbeat

    # staging is incremental: it merges only files not yet staged, unless its code changed;
    # when the ingest path already merged and tested every loaded file, it is left out
    staging_args = staging.invocation_args(warehouse, log)
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
                *staging_args,
            ],
            vars_,
        )
    elapsed = round(time.time() - t0, 1)
    if not res.success:
        failures = _failures(res, warehouse)
        RunState(warehouse, ctx["attempt_id"]).update(
            build={"ok": False, "seconds": elapsed, "failures": failures}
        )
        lines = [
            f"dbt build failed for {ctx['month']} ({len(failures)} problem(s)); nothing was published:"
        ]
        for f in failures:
            lines.append(f"  - {f['node']}: {f['message'][:500]}")
            for ex in f.get("examples", [])[:5]:
                lines.append(f"      e.g. {ex}")
        raise BuildFailed("\n".join(lines))
    staging.record_built(warehouse)
    n = len(getattr(res.result, "results", []) or [])
    fault_point("after_build")
    RunState(warehouse, ctx["attempt_id"]).update(
        build={"ok": True, "seconds": elapsed, "nodes": n}
    )
    log(f"dbt build: {n} models and tests passed in {elapsed} s")
    return {"ok": True, "seconds": elapsed}


def gate_step(ctx: dict, plan: dict, log=print) -> dict:
    """Run the quality gate; raise GateFailed (nothing published) when any check fails."""
    from supernova.gate import describe_failures, run_gate

    warehouse = Path(ctx["warehouse"])
    if plan["action"] != "settle":
        return {"skipped": True}
    from supernova.summary import heartbeat

    t0 = time.time()
    with heartbeat("quality gate (Great Expectations + invariants)", log):
        gate = run_gate(warehouse, ctx["month"])
    gate["seconds"] = round(time.time() - t0, 1)
    fault_point("during_validate")
    RunState(warehouse, ctx["attempt_id"]).update(gate=gate)
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


def _run_row(ctx: dict, plan: dict, state: dict, status: str, message: str = "") -> dict:
    gate = state.get("gate") or {}
    return {
        "attempt_id": ctx["attempt_id"],
        "settlement_month": ctx["month"],
        "status": status,
        "started_at": datetime.fromisoformat(state["started_at"]).replace(tzinfo=None),
        "finished_at": datetime.now(SHANGHAI).replace(tzinfo=None),
        "triggered_by": ctx.get("triggered_by"),
        "reopen_reason": ctx["reason"] if ctx.get("reopen") else None,
        "accept_suspense_reason": ctx["accept_suspense_reason"]
        if ctx.get("accept_suspense")
        else None,
        "input_fingerprint": plan.get("input_fingerprint"),
        "code_fingerprint": plan.get("code_fingerprint"),
        "input_files": plan.get("input_files"),
        "checks_passed": gate.get("checks_passed"),
        "checks_failed": gate.get("checks_failed"),
        "checks": json.dumps(
            {"invariants": gate.get("invariants"), "failed": gate.get("failed_checks")},
            default=str,
            ensure_ascii=False,
        )
        if gate
        else None,
        "message": message or None,
    }


def publish_step(ctx: dict, plan: dict, log=print) -> dict:
    """Publish the month (not for previews or unchanged months)."""
    from supernova.publish import publish_month

    warehouse = Path(ctx["warehouse"])
    state = RunState(warehouse, ctx["attempt_id"])
    if plan["action"] != "settle" or ctx["preview"]:
        log("preview: nothing published" if ctx["preview"] else plan["message"])
        return {"published": False}
    row = _run_row(
        ctx, plan, state.load(), "published", f"reopened: {ctx['reason']}" if ctx["reopen"] else ""
    )
    counts = publish_month(warehouse, ctx["month"], plan["run_id"], row, reopen=ctx["reopen"])
    state.update(publish={"published": True, "run_id": plan["run_id"], "rows": counts})
    log(
        f"published {ctx['month']} as run {plan['run_id']}: "
        + ", ".join(f"{t} {n}" for t, n in counts.items())
    )
    return {"published": True, "rows": counts}


def finish_step(ctx: dict | None, log=print) -> dict:
    """Always runs last (teardown): record a failed/preview attempt, write the report,
    release the lock. A published run was already recorded inside its transaction."""
    from supernova.publish import build_totals, ensure_settlement_schema, record_run
    from supernova.report import write_report

    if not ctx:
        return {}
    warehouse = Path(ctx["warehouse"])
    state = RunState(warehouse, ctx["attempt_id"])
    data = state.load()
    plan = data.get("plan") or {}
    try:
        if plan.get("action") == "unchanged":
            status = "unchanged"
        elif data.get("publish", {}).get("published") or (
            not ctx["preview"] and _is_published(warehouse, plan.get("run_id"))
        ):
            status = "published"
        elif ctx["preview"] and data.get("gate") is not None and "error" not in data:
            status = "preview"
        else:
            status = "failed"
        if status in ("failed", "preview"):
            row = _run_row(ctx, plan, data, status, data.get("error", ""))
            row["run_id"] = plan.get("run_id") or f"{ctx['month']}-unplanned"
            try:
                with connect(warehouse) as con:
                    ensure_settlement_schema(con)
                    try:
                        row.update(build_totals(con))
                    except Exception:
                        pass  # no build output (the run failed before or during dbt)
                    record_run(con, row)
            except Exception as exc:  # recording must not hide the original failure
                log(f"could not record the run in settlement_runs: {exc}")
        data = state.update(status=status, finished_at=datetime.now(SHANGHAI).isoformat())
        report = write_report(warehouse, data)
        log(f"report: {report}")
        return {"status": status, "report": str(report)}
    finally:
        lock.release(warehouse, ctx["attempt_id"])


def _is_published(warehouse: Path, run_id: str | None) -> bool:
    """True when run_id's publish transaction committed (even if a later step failed)."""
    if not run_id:
        return False
    try:
        with connect(warehouse) as con:
            return table_exists(con, "settlement", "settlement_runs") and bool(
                con.execute(
                    "select count(*) from settlement.settlement_runs where run_id = ? and status = 'published'",
                    [run_id],
                ).fetchone()[0]
            )
    except Exception:
        return False


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
        if data.get("request") and not data.get("finished_at"):
            record_interrupted(warehouse, attempt, by_attempt, log)
            done.append(attempt)
    return done


def record_interrupted(warehouse: Path, stale_attempt: str, by_attempt: str, log=print) -> None:
    """An attempt whose process died (its stale lock was just cleared) gets its row in
    settlement_runs as `failed`, so every attempt is accounted for. Whatever it had
    published (a committed transaction) stays published and is repaired by `plan`."""
    from supernova.publish import ensure_settlement_schema, record_run

    state_obj = RunState(warehouse, stale_attempt)
    data = state_obj.load()
    if not data.get("request") or data.get("finished_at"):
        return
    req = data["request"]
    ctx = {**req, "attempt_id": stale_attempt}
    plan = data.get("plan") or {}
    if _is_published(warehouse, plan.get("run_id")) and not req.get("preview"):
        state_obj.update(status="published", finished_at=datetime.now(SHANGHAI).isoformat())
        return
    message = (
        f"interrupted: the process died during this attempt (found by attempt {by_attempt}); "
        "nothing of it was published"
    )
    row = _run_row(ctx, plan, data, "failed", message)
    row["run_id"] = plan.get("run_id") or f"{req['month']}-unplanned"
    with connect(warehouse) as con:
        ensure_settlement_schema(con)
        record_run(con, row)
    state_obj.update(status="failed", error=message, finished_at=datetime.now(SHANGHAI).isoformat())
    log(f"recorded interrupted attempt {stale_attempt} as failed in settlement_runs")


def record_error(ctx: dict, exc: BaseException) -> None:
    """Keep the failure's text for the run record and the report."""
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(error=str(exc))
