"""What a person reads on the terminal: progress while `supernova settle` runs, and a short
summary at the end (status, the month's figures, checks, where the outputs are, what to
do next).

Progress: `progress_logger()` is a drop-in for the `log` callable the settle steps take
(timestamps and time since the run started), and `heartbeat(label, log)` prints a
"still running" line every N seconds around a long step (dbt build, gate).

Quiet by default: `details_to(log_file)` sends everything the run prints (Airflow, dbt,
ingestion's per-file lines) to a log file under the warehouse and gives the caller a
`say` for the few lines a person reads; `follow_settlement` turns the run's state file
into one line per stage. `--verbose` (details_to(..., verbose=True)) shows everything.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from supernova.report import next_steps, run_totals
from supernova.run_state import RunState


def progress_logger(prefix: str = "supernova", stream=None):
    """A `log(msg)` that prints `[supernova 12:03:04 +35s] msg`, flushed at once."""
    t0 = time.monotonic()

    def log(msg: str) -> None:
        out = stream or sys.stdout
        stamp = f"[{prefix} {datetime.now():%H:%M:%S} +{time.monotonic() - t0:.0f}s]"
        for i, line in enumerate(str(msg).splitlines() or [""]):
            print(f"{stamp if i == 0 else ' ' * len(stamp)} {line}", file=out, flush=True)

    return log


@contextlib.contextmanager
def heartbeat(label: str, log=print, every: float = 15.0):
    """Print `label ... still running (45 s)` every `every` seconds until the block ends,
    then `label done in 52 s`. For steps with no progress of their own (dbt build)."""
    stop = threading.Event()
    t0 = time.monotonic()

    def beat():
        while not stop.wait(every):
            log(f"{label} ... still running ({time.monotonic() - t0:.0f} s)")

    th = threading.Thread(target=beat, daemon=True)
    log(f"{label} ...")
    th.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        th.join(timeout=1)
        log(f"{label} {'done' if ok else 'stopped'} in {time.monotonic() - t0:.0f} s")


def _m(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


def format_summary(warehouse: Path, attempt_id: str, dag_state: str) -> str:
    warehouse = Path(warehouse)
    state = RunState(warehouse, attempt_id).load()
    month = (state.get("request") or {}).get("month", "?")
    status = state.get("status") or "failed"
    plan = state.get("plan") or {}
    out = ["", f"=== settlement {month}: {status.upper()} (DAG run {dag_state.split('.')[-1]}) ==="]
    if not state:
        out.append(
            "The run stopped before it started: the parameters were refused or another run holds the "
            "warehouse (see the messages above). Nothing was published."
        )
        out.append("next        fix what the message above says, then run the same command again.")
        return "\n".join(out)
    if status == "failed":
        out += _why_lines(state)
    if plan.get("message"):
        out.append(f"note        {plan['message']}")
    if status == "preview":
        out.append("PREVIEW     nothing was published; figures below are the candidate tables.")
    out += _totals_lines(_summary_totals(warehouse, attempt_id, status, plan))
    out += _gate_lines(state.get("gate"))
    out += _where_lines(warehouse, attempt_id, month, status)
    if status == "published":
        # a command that works as printed (the report's wording leaves out the warehouse)
        out.append(
            f"next        nothing to do; statements: {supernova_command()} statements --month {month} "
            f"--warehouse {display_path(warehouse)}"
        )
    else:
        out.append(f"next        {next_steps(state)}")
    return "\n".join(out)


def _why_lines(state: dict) -> list[str]:
    err = (
        state.get("error") or "the run stopped without a message (see the task log above)"
    ).strip()
    lines = err.splitlines()
    out = [f"why         {lines[0]}"] + [f"            {extra}" for extra in lines[1:8]]
    if len(lines) > 8:
        out.append(f"            ... {len(lines) - 8} more line(s) in the report")
    return out


def _summary_totals(warehouse: Path, attempt_id: str, status: str, plan: dict) -> dict | None:
    """The run's totals: the published run's, or the preview attempt's recorded row."""
    if status in ("published", "unchanged"):
        return run_totals(warehouse, plan.get("run_id"))
    if status != "preview":
        return None
    try:
        from supernova.warehouse import connect, table_exists

        with connect(warehouse, read_only=True) as con:
            if not table_exists(con, "settlement", "settlement_runs"):
                return None
            cur = con.execute(
                "select * from settlement.settlement_runs where attempt_id = ? "
                "order by finished_at desc limit 1",
                [attempt_id],
            )
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None
    except Exception:  # noqa: BLE001 - a report section must not fail the report
        return None


def _totals_lines(totals: dict | None) -> list[str]:
    if not totals or totals.get("lines_settled") is None:
        return []
    return [
        f"run id      {totals['run_id']}",
        f"lines       {totals['lines_settled']:,} settled, base {_m(totals['base_amount'])} CNY",
        f"commission  {_m(totals['line_commission'])} = platform fee {_m(totals['platform_fee'])}"
        f" + level 1 {_m(totals['level1_amount'])} + level 2 {_m(totals['level2_amount'])}"
        f" + operator {_m(totals['operator_retained'])}",
        f"postings    {_m(totals['postings_amount'])} (tier bonus {_m(totals['tier_bonus_amount'])}, "
        f"clawbacks {_m(totals['clawback_amount'])})",
        f"payouts     {totals['payout_rows']:,} rows: net paid {_m(totals['net_paid'])}, tax "
        f"{_m(totals['tax_withheld'])}, carried out {_m(totals['carried_out'])}, forfeited "
        f"{_m(totals['forfeited_amount'])}",
        f"suspense    {totals['suspense_lines']:,} lines, base {_m(totals['suspense_base'])} "
        f"({float(totals['suspense_ratio'] or 0):.4%}; limit 0.5 %)",
    ]


def _gate_lines(gate: dict | None) -> list[str]:
    if not gate:
        return []
    inv = gate.get("invariants", [])
    bad = [i["check"] for i in inv if i["violations"]]
    return [
        f"checks      {gate.get('checks_passed')} expectations passed, {gate.get('checks_failed')} failed; "
        f"{len(inv) - len(bad)}/{len(inv)} invariants hold"
        + (f" (FAILED: {', '.join(bad[:5])})" if bad else "")
    ]


def _where_lines(warehouse: Path, attempt_id: str, month: str, status: str) -> list[str]:
    out = []
    if status in ("published", "unchanged"):
        out.append(
            f"outputs     {warehouse / 'parquet' / 'settlement'}/<table>/; BI catalog "
            f"{warehouse / 'bi' / 'supernova_bi.duckdb'}"
        )
    report = warehouse / "reports" / month / f"{attempt_id}.html"
    if report.exists():
        out.append(f"report      {report}   (open in a browser; .md next to it)")
    elif report.with_suffix(".md").exists():
        out.append(f"report      {report.with_suffix('.md')}")
    return out


def display_path(path: Path) -> str:
    """A path as a person would type it: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def supernova_command(program: str = "supernova") -> str:
    """How to call a program of this environment so that it works as printed without an
    activated venv (e.g. `.venv/bin/supernova`)."""
    return f"{display_path(Path(sys.prefix) / 'bin')}/{program}"


def print_summary(warehouse: Path, attempt_id: str, dag_state: str) -> None:
    print(format_summary(warehouse, attempt_id, dag_state), flush=True)


# ---------------------------------------------------------------- quiet transcript


def log_file(warehouse: Path, command: str) -> Path:
    """<warehouse>/logs/<command>-<local time>.log: where a run's details go."""
    return Path(warehouse) / "logs" / f"{command}-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}.log"


@contextlib.contextmanager
def details_to(path: Path, verbose: bool = False):
    """Send everything written to stdout/stderr (file descriptors 1 and 2, so Airflow,
    dbt and any library too) to `path` while the block runs; yield `say(msg)`, which
    writes to the terminal. With verbose=True nothing is redirected. Colour codes are
    turned off wherever the output is not a terminal."""
    from supernova import warehouse as wh

    if verbose:
        if not sys.stdout.isatty():
            os.environ["DBT_USE_COLORS"] = "False"
        os.environ["DBT_USE_COLORS_FILE"] = "False"
        yield lambda msg: print(msg, flush=True)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in ("DBT_USE_COLORS", "DBT_USE_COLORS_FILE")}
    os.environ["DBT_USE_COLORS"] = "False"
    os.environ["DBT_USE_COLORS_FILE"] = "False"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    term_out = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    term_err = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    wh.set_notice_sink(lambda msg: print(msg, file=term_err, flush=True))
    try:
        yield lambda msg: print(msg, file=term_out, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        term_out.close()
        term_err.close()
        wh.set_notice_sink(None)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stage_line(key: str, value: dict) -> str | None:
    if not isinstance(value, dict):
        return None
    if key == "ingest":
        lines = (value.get("summary") or "done").splitlines()
        # the headline, then every file a person must hear about (rejected, superseded,
        # waiting ...); the counts and per-file lines are in the log
        return "\n".join(
            [f"ingest     {lines[0]}", *(f"           {x.strip()}" for x in lines[3:])]
        )
    if key == "plan":
        msg = value.get("message")
        if msg:
            return f"plan       {msg.splitlines()[0]}"
        return f"plan       run {value.get('run_id')}, {value.get('input_files')} input files"
    if key == "build" and value.get("ok"):
        return f"build      dbt: {value.get('nodes')} models and tests passed in {value.get('seconds')} s"
    if key == "build":
        return f"build      dbt build failed after {value.get('seconds')} s"
    if key == "gate":
        return (
            f"checks     {value.get('checks_passed')} expectations passed, {value.get('checks_failed')} failed"
            f" ({value.get('seconds')} s)"
        )
    if key == "publish" and value.get("published"):
        return f"publish    run {value.get('run_id')} published"
    return None


@contextlib.contextmanager
def follow_settlement(warehouse: Path, attempt_id: str, say, every: float = 1.0):
    """While the block runs, say one line per settlement stage as it lands in the run's
    state file (ingest, plan, build, gate, publish)."""
    state = RunState(Path(warehouse), attempt_id)
    stop = threading.Event()
    seen: set[str] = set()

    def poll() -> None:
        try:
            data = state.load()
        except (OSError, ValueError):  # being replaced right now: next time
            return
        for key in ("ingest", "plan", "build", "gate", "publish"):
            if key in data and key not in seen:
                seen.add(key)
                line = _stage_line(key, data[key])
                if line:
                    say(f"  {line}")

    def run() -> None:
        while not stop.wait(every):
            poll()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=5)
        poll()
