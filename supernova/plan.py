"""What a settlement run does: settle the month, report it unchanged, or refuse it.

`gather_facts` reads what the decision needs (published runs, loaded files, the code's
fingerprint, the calendar); `decide` is the plan rules as a pure function of those facts
and the request, so every rule is testable without a warehouse (tests/test_plan_rules.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from supernova import settings
from supernova.months import SHANGHAI, month_bounds, next_month, settlement_config
from supernova.run_request import RunRefused
from supernova.warehouse import connect, table_exists


@dataclass(frozen=True)
class Facts:
    """Everything the plan rules look at, gathered before deciding."""

    month: str
    now: datetime
    cutoff: datetime
    programme_first: str  # vars.supernova.first_month
    published: dict[str, dict]  # settlement month -> the run that published it
    reopen_count: int  # runs that published or reopened `month` so far
    input_fingerprint: str
    code_fingerprint: str
    input_files: int


def decide(ctx: dict, facts: Facts) -> dict:
    """The plan for a request (`ctx`: preview, reopen, scheduled) given the facts; raises
    RunRefused with the reason when the run may not proceed."""
    month = facts.month
    # the first month settled in this warehouse is the programme's first month (§4)
    first_month = min(facts.published) if facts.published else month
    action, message, run_id, reopen_count = "settle", "", "", 0
    if month in facts.published:
        action, message, run_id, reopen_count = _closed_month(ctx, facts)
    else:
        _check_open_month(ctx, facts, first_month)
    fingerprint = facts.input_fingerprint
    if ctx["preview"]:
        run_id = f"{month}-preview-{fingerprint[:10]}"
    elif action != "unchanged":
        run_id = f"{month}-r{reopen_count}-{fingerprint[:10]}"
    return {
        "action": action,
        "message": message,
        "run_id": run_id,
        "first_month": first_month,
        "input_fingerprint": fingerprint,
        "code_fingerprint": facts.code_fingerprint,
        "input_files": facts.input_files,
        "cutoff": facts.cutoff.isoformat(),
        "reopen_count": reopen_count,
    }


def _closed_month(ctx: dict, facts: Facts) -> tuple[str, str, str, int]:
    """A published month: reopen it (the latest only), preview it, report it unchanged,
    or refuse a silent change. Returns (action, message, run_id, reopen_count)."""
    month, current = facts.month, facts.published[facts.month]
    if ctx["reopen"]:
        later = sorted(m for m in facts.published if m > month)
        if later:
            raise RunRefused(
                f"{month} cannot be reopened while later months are published "
                f"({', '.join(later)}): their ledgers build on it. Reopen is only allowed for "
                "the latest closed month."
            )
        return "settle", "", "", facts.reopen_count
    if ctx["preview"]:
        return "settle", "", "", 0
    if current["input_fingerprint"] == facts.input_fingerprint:
        # this attempt reports on the run that published the month (after a reopen, the
        # reopened run, not the one it superseded)
        message = (
            f"{month} is closed (published by run {current['run_id']}) and the inputs are "
            "unchanged: nothing to do, nothing changed."
        )
        return "unchanged", message, current["run_id"], 0
    raise RunRefused(
        f"{month} is closed (published by run {current['run_id']}) and its inputs have changed "
        "since (new or corrected files, code or configuration). A closed month never changes "
        "silently: late refunds become clawbacks in the next month's run. To change "
        f"{month} itself, run it again with reopen and a reason."
    )


def _check_open_month(ctx: dict, facts: Facts, first_month: str) -> None:
    """A month not yet published: nothing to reopen; not before the programme; the
    programme started by hand; months in order; not before the cutoff (unless preview);
    some export file loaded."""
    month, published, first = facts.month, facts.published, facts.programme_first
    if ctx["reopen"]:
        raise RunRefused(f"{month} has not been published, so there is nothing to reopen.")
    if not published:
        _check_programme_start(ctx, month, first)
    elif not ctx["preview"]:
        _check_order(month, max(published), first_month)
    if facts.now < facts.cutoff and not ctx["preview"]:
        raise RunRefused(
            f"{month} cannot be settled before its cutoff {facts.cutoff:%Y-%m-%d %H:%M} "
            "Asia/Shanghai (the 7-day no-reason return window). Run it as a preview to see "
            "the figures; a preview publishes nothing."
        )
    if facts.input_files == 0:
        # a month closes once and never changes: closing it on nothing (every file still
        # being written, or a wrong landing folder) would publish an empty month for good
        raise RunRefused(
            f"nothing to settle {month} from: no export file is loaded in this warehouse "
            "yet. Files still being written are read once unchanged for the quiet period "
            "(the ingest step above lists them as waiting); check the landing folder and "
            "run again once the exports are delivered."
        )


def _check_programme_start(ctx: dict, month: str, first: str) -> None:
    if month < first:
        raise RunRefused(
            f"{month} is before the programme's first month {first} "
            "(vars.supernova.first_month in dbt_project/dbt_project.yml): lines completed "
            "before it are out of scope."
        )
    if ctx.get("scheduled") and month != first and not ctx["preview"]:
        raise RunRefused(
            f"a scheduled run does not start the programme: nothing is published in this "
            f"warehouse yet, and the programme's first month is {first}, not {month}. "
            f"Settle {first} first (trigger the monthly_settlement DAG by hand with "
            f"month {first}); the schedule then continues month by month."
        )


def _check_order(month: str, latest: str, first_month: str) -> None:
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


# ---------------------------------------------------------------- gathering the facts


def gather_facts(ctx: dict, log=print, now: datetime | None = None) -> Facts:
    """Read the warehouse for the decision. Repairs the Parquet copies of a publish
    interrupted after its DuckDB commit first, so the facts are those of a whole publish."""
    from ingestion import ensure_raw_schema
    from supernova.publish import sync_parquet

    warehouse, month = Path(ctx["warehouse"]), ctx["month"]
    ensure_raw_schema(warehouse)
    repaired = sync_parquet(warehouse)
    if repaired:
        log(f"repaired Parquet copies of published months: {', '.join(repaired)}")
    with connect(warehouse) as con:
        files = loaded_file_ids(
            con.execute(
                "select file_path, sha256 from raw.manifest where status = 'loaded'"
            ).fetchall()
        )
        published = {r["settlement_month"]: r for r in published_runs(con)}
        reopen_count = _reopen_count(con, month) if month in published else 0
    return facts_of(ctx, files, published, reopen_count, now)


def facts_of(
    ctx: dict,
    loaded_files: list[str],
    published: dict[str, dict],
    reopen_count: int,
    now: datetime | None = None,
) -> Facts:
    """The facts from what an engine read: every loaded file (loaded_file_ids), the published
    runs by month and the month's reopen count (DuckDB: gather_facts; Spark:
    spark_settle.gather_facts). The cutoff, the code and the fingerprint are computed here,
    the same way for both."""
    month = ctx["month"]
    cfg = settlement_config()
    _, _, cutoff = month_bounds(month, cfg["cutoff_day"])
    code = code_fingerprint()
    return Facts(
        month=month,
        now=now or datetime.now(SHANGHAI),
        cutoff=cutoff,
        programme_first=cfg["first_month"],
        published=published,
        reopen_count=reopen_count,
        input_fingerprint=input_fingerprint(month, loaded_files, code, ctx["accept_suspense"]),
        code_fingerprint=code,
        input_files=len(loaded_files),
    )


def loaded_file_ids(rows) -> list[str]:
    """`path:sha256` of every loaded file, sorted: a file is its bytes AND where it was
    delivered, since the delivery date in its path decides which version of a row wins
    (§0): the same bytes moved to another date folder can change the figures."""
    return sorted(f"{path}:{sha}" for path, sha in rows)


def input_fingerprint(month: str, loaded_files: list[str], code: str, accept_suspense) -> str:
    """What a closed month's figures depend on: the month, every loaded file
    (loaded_file_ids), the code and whether suspense above the limit is accepted."""
    h = hashlib.sha256()
    h.update(month.encode())
    for file_id in loaded_files:
        h.update(file_id.encode())
    h.update(code.encode())
    h.update(b"accept_suspense" if accept_suspense else b"")
    return h.hexdigest()


def code_fingerprint() -> str:
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
        "select run_id, settlement_month, input_fingerprint, finished_at "
        "from settlement.settlement_runs where status = 'published' order by settlement_month"
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def _reopen_count(con, month: str) -> int:
    return con.execute(
        "select count(*) from settlement.settlement_runs "
        "where settlement_month = ? and status in ('published', 'reopened')",
        [month],
    ).fetchone()[0]
