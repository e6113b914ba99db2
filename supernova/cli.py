"""`supernova`: generate sample exports, ingest, settle a month, refresh marts, write statements."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from supernova import settings
from supernova.cli_support import (
    EPILOG,
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    Parser,
    UsageError,
    add_command,
    add_paths,
    check_busy,
    check_landing,
    check_warehouse,
    month_arg,
)

DEMO_START = "2026-09-01"
DEMO_DAYS = 68  # September and October, plus October's 7-day return window
DEMO_MONTHS = ["2026-09", "2026-10"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("supernova")
    except PackageNotFoundError:
        return "unknown (not installed)"


def cmd_generate(args) -> int:
    from supernova.generator import generate

    summary = generate(
        out=args.out,
        start=args.start,
        days=args.days,
        scale=args.scale,
        seed=args.seed,
        fmt=args.format,
        mess=args.mess,
    )
    print(summary)
    return 0


def cmd_ingest(args) -> int:
    from ingestion import ingest
    from supernova.summary import details_to, log_file

    landing = check_landing(args.landing or settings.default_landing())
    warehouse = check_warehouse(args.warehouse or settings.default_warehouse())
    check_busy(warehouse)
    details = log_file(warehouse, "ingest")
    with details_to(details, verbose=args.verbose):
        result = ingest(landing, warehouse, progress=print)
        if args.stage and result.ok:
            from supernova import staging

            staging.stage(warehouse, log=print)
    print(result.summary())
    if not args.verbose:
        print(f"[supernova] one line per file in {details}")
    return EXIT_OK if result.ok else EXIT_FAILED


def settle_month(
    month: str,
    landing: Path,
    warehouse: Path,
    *,
    preview=False,
    reopen_reason="",
    accept_suspense_reason="",
) -> int:
    """Run the monthly_settlement DAG in process; print one line per stage and a summary
    (everything else goes to <warehouse>/logs/, or to the terminal with --verbose);
    returns an exit code (EXIT_*)."""
    from supernova.airflow_runner import run_dag
    from supernova.run_state import new_attempt_id
    from supernova.summary import details_to, follow_settlement, log_file, print_summary

    landing, warehouse = Path(landing).resolve(), Path(warehouse).resolve()
    attempt_id = new_attempt_id(month)
    conf = {
        "month": month,
        "preview": preview,
        "reopen_reason": reopen_reason,
        "accept_suspense_reason": accept_suspense_reason,
        "landing": str(landing),
        "warehouse": str(warehouse),
        "attempt_id": attempt_id,
    }
    details = log_file(warehouse, f"settle-{month}")
    t0 = time.monotonic()
    print(
        f"[supernova] settling {month} through the monthly_settlement DAG (warehouse {warehouse})"
        + ("" if VERBOSE else f"; details in {details}"),
        flush=True,
    )
    try:
        with (
            details_to(details, verbose=VERBOSE) as say,
            follow_settlement(warehouse, attempt_id, say),
        ):
            dagrun = run_dag("monthly_settlement", conf)
        state = str(getattr(dagrun, "state", "failed"))
    except Exception as exc:  # the DAG could not even start: say so plainly
        print(f"[supernova] ERROR: the settlement run could not start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    ok = state.endswith("success")
    print_summary(warehouse, attempt_id, dag_state=f"{state}, {time.monotonic() - t0:.0f} s")
    if ok:
        return EXIT_OK
    return EXIT_BUSY if _was_busy(warehouse, attempt_id) else EXIT_FAILED


def _was_busy(warehouse: Path, attempt_id: str) -> bool:
    """Did the run stop because the warehouse was held (another run, or a process keeping
    the DuckDB file open past the wait)?"""
    from supernova.run_state import RunState

    error = RunState(warehouse, attempt_id).load().get("error") or ""
    return "is still held by" in error or "is busy" in error


VERBOSE = False  # set by main() from --verbose


def cmd_settle(args) -> int:
    if args.reopen and not args.reason:
        print("--reopen needs --reason TEXT (it is recorded)", file=sys.stderr)
        return 2
    if args.accept_suspense and not args.reason:
        print("--accept-suspense needs --reason TEXT (it is recorded)", file=sys.stderr)
        return 2
    if args.engine not in ENGINES:
        raise UsageError(
            f"--engine (or {ENGINE_ENV}) must be one of {', '.join(ENGINES)}, not {args.engine!r}"
        )
    if args.engine == "spark":
        check_spark_installed()
    # paths and the warehouse lock checked here, in one line each, before Airflow starts
    args.landing = check_landing(args.landing or settings.default_landing())
    args.warehouse = check_warehouse(args.warehouse or settings.default_warehouse())
    check_busy(args.warehouse)
    if args.engine == "spark":
        return settle_month_on_spark(args)
    return settle_month(
        args.month,
        args.landing or settings.default_landing(),
        args.warehouse or settings.default_warehouse(),
        preview=args.preview,
        reopen_reason=args.reason if args.reopen else "",
        accept_suspense_reason=args.reason if args.accept_suspense else "",
    )


ENGINES = ("duckdb", "spark")
ENGINE_ENV = "SUPERNOVA_ENGINE"


def check_spark_installed() -> None:
    """--engine spark needs the optional `spark` group (pyspark, dbt-spark): say how to get
    it before anything is ingested or locked."""
    import importlib.util

    missing = [m for m in ("pyspark", "dbt.adapters.spark") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"--engine spark needs the optional `spark` dependency group ({', '.join(missing)} "
            "not installed in this environment): run `make spark` once, then "
            "`UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark supernova settle "
            "... --engine spark` (docs/spark.md)"
        )


def settle_month_on_spark(args) -> int:
    """The month on Spark, every step in this process (supernova/spark_settle.py; no
    Airflow); prints the steps and a summary; returns an exit code (EXIT_*)."""
    from supernova import spark_settle

    conf = {
        "month": args.month,
        "preview": args.preview,
        "reopen_reason": args.reason if args.reopen else "",
        "accept_suspense_reason": args.reason if args.accept_suspense else "",
        "landing": str(Path(args.landing).resolve()),
        "warehouse": str(Path(args.warehouse).resolve()),
    }
    t0 = time.monotonic()
    print(f"[supernova] settling {args.month} on Spark (warehouse {conf['warehouse']})", flush=True)
    from supernova.run_request import RunRefused

    try:
        result = spark_settle.run(conf, log=lambda msg: print(f"[supernova] {msg}", flush=True))
    except RunRefused as exc:  # refused at begin, before the lease: nothing was read or written
        print(f"[supernova] {args.month} on Spark: refused: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print(
        f"[supernova] {args.month} on Spark: {result.get('status')} in "
        f"{time.monotonic() - t0:.0f} s; report {result.get('report')}",
        flush=True,
    )
    return EXIT_OK if result.get("status") in ("published", "unchanged", "preview") else EXIT_FAILED


def demo_hints(warehouse: Path, landing: Path) -> list[str]:
    """The commands the demo suggests at its end; each works exactly as printed from the
    folder it was run in (tests/test_serving.py runs them): the programs are named by
    their path in this environment (`.venv/bin/...`), which needs no activated venv."""
    from supernova.summary import display_path, supernova_command

    w = display_path(warehouse)
    return [
        f"{supernova_command()} statements --month {DEMO_MONTHS[-1]} --warehouse {w}",
        f"{supernova_command()} marts --landing {display_path(landing)} --warehouse {w}",
        f'{supernova_command("duckdb")} -readonly {w}/bi/supernova_bi.duckdb -c "select settlement_month, status, '
        f'count(*) as promoters, sum(net_paid) as net_paid from settlement.payouts group by all order by all"',
    ]


def cmd_demo(args) -> int:
    """The README's main command: sample data for two months, settled in order, the marts
    refreshed, the statements of the last month written."""
    from supernova.generator import generate
    from supernova.marts import run_marts
    from supernova.statements import run_statements

    home = settings.var_dir()
    landing = Path(args.landing or home / "demo" / "landing").resolve()
    warehouse = check_warehouse(args.warehouse or home / "demo" / "warehouse")
    check_busy(warehouse)
    # the marker lives beside the landing folder: ingestion rejects anything inside it
    # that is not an export file
    marker = landing.parent / f".{landing.name}.generated"
    if not marker.exists():
        print(
            f"[supernova] generating demo exports ({DEMO_START}, {DEMO_DAYS} days, scale demo) into "
            f"{landing} ...",
            flush=True,
        )
        summary = generate(out=landing, start=DEMO_START, days=DEMO_DAYS, scale="demo", seed=2026)
        print(
            f"[supernova] {str(summary).splitlines()[0] if str(summary) else 'generated'}",
            flush=True,
        )
        marker.write_text("ok\n")
    else:
        print(f"[supernova] demo exports already in {landing}")
    # the demo wrote these exports itself, whole, before ingesting them: no file can still be
    # in the middle of being written, so ingestion's quiet period would only delay the demo
    os.environ.setdefault("SUPERNOVA_INGEST_QUIET_SECONDS", "0")
    for month in DEMO_MONTHS:
        rc = settle_month(month, landing, warehouse)
        if rc != EXIT_OK:
            return rc
    rc = run_marts(landing, warehouse, verbose=VERBOSE, table=False)
    if rc != EXIT_OK:
        return rc
    rc = run_statements(warehouse, DEMO_MONTHS[-1])
    if rc != EXIT_OK:
        return rc
    print(f"\n[supernova] demo done: settlement, marts and statements in {warehouse}")
    print(
        f"  BI catalog  {warehouse}/bi/supernova_bi.duckdb (docs/bi.md); Parquet in {warehouse}/parquet/"
    )
    print(f"  reports     {warehouse}/reports/;  logs {warehouse}/logs/")
    print("try:")
    for hint in demo_hints(warehouse, landing):
        print(f"  {hint}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="supernova", description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    g = add_command(sub, "generate", "write realistic sample export files")
    g.add_argument("--out", type=Path, required=True, help="landing directory to write")
    g.add_argument("--start", required=True, help="first delivery date, YYYY-MM-DD")
    g.add_argument("--days", type=int, required=True, help="number of delivery days")
    g.add_argument(
        "--scale",
        choices=["tiny", "demo", "pilot", "today", "target"],
        default="tiny",
        help="volume",
    )
    g.add_argument("--seed", type=int, default=1, help="random seed")
    g.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format")
    mess = g.add_mutually_exclusive_group()
    mess.add_argument(
        "--mess",
        dest="mess",
        action="store_true",
        default=None,
        help="sprinkle documented bad rows and a GBK file (default above tiny)",
    )
    mess.add_argument("--no-mess", dest="mess", action="store_false", help="clean files only")
    g.set_defaults(func=cmd_generate)

    i = add_command(sub, "ingest", "load new export files into the warehouse")
    add_paths(i)
    i.add_argument(
        "--stage",
        action="store_true",
        help="then merge the new files into the staging layer (as the ingest_exports DAG does)",
    )
    i.set_defaults(func=cmd_ingest)

    s = add_command(sub, "settle", "settle a month through the monthly_settlement DAG (in process)")
    s.add_argument("--month", required=True, type=month_arg, help="YYYY-MM")
    add_paths(s)
    s.add_argument("--preview", action="store_true", help="compute and report; publish nothing")
    s.add_argument(
        "--reopen", action="store_true", help="republish the latest closed month (needs --reason)"
    )
    s.add_argument(
        "--accept-suspense",
        action="store_true",
        help="accept suspense above the limit for this run (needs --reason)",
    )
    s.add_argument("--reason", default="", help="why (recorded with --reopen / --accept-suspense)")
    s.add_argument(
        "--engine",
        default=os.environ.get(ENGINE_ENV) or "duckdb",
        metavar="{duckdb,spark}",
        help="duckdb (default): the monthly_settlement DAG in process, on the DuckDB file; "
        "spark: the same steps on Spark (dbt-spark, the Spark gate and publish, the run "
        "record as Parquet; needs the `spark` dependency group, docs/spark.md). "
        "Default from $SUPERNOVA_ENGINE",
    )
    s.set_defaults(func=cmd_settle)

    d = add_command(
        sub,
        "demo",
        "generate demo data, settle Sept and Oct 2026, refresh the marts, write "
        "statements (the README's main command)",
    )
    d.add_argument(
        "--landing",
        type=Path,
        default=None,
        help="landing directory (default: $SUPERNOVA_HOME/demo/landing)",
    )
    d.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="warehouse directory (default: $SUPERNOVA_HOME/demo/warehouse)",
    )
    d.set_defaults(func=cmd_demo)

    from supernova.marts import add_marts_parser
    from supernova.statements import add_statements_parser

    add_marts_parser(sub)
    add_statements_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    args = build_parser().parse_args(argv)
    VERBOSE = bool(getattr(args, "verbose", False))
    from supernova import lock
    from supernova.warehouse import WarehouseLocked

    try:
        return args.func(args)
    except UsageError as exc:
        print(f"supernova {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (lock.WarehouseBusy, WarehouseLocked) as exc:
        print(f"supernova {args.command}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BUSY


if __name__ == "__main__":
    # through the package module, so `python -m supernova.cli` shares one set of globals
    # and exception classes with the modules that import supernova.cli
    from supernova.cli import main as _main

    sys.exit(_main())
