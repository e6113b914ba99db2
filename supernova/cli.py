"""`supernova`: generate sample exports, ingest, settle a month, refresh marts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from supernova import settings

DEMO_START = "2026-09-01"
DEMO_DAYS = 68  # September and October, plus October's 7-day return window
DEMO_MONTHS = ["2026-09", "2026-10"]


def _add_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", type=Path, default=None, help="landing directory of export files")
    p.add_argument("--warehouse", type=Path, default=None, help="warehouse directory")


def cmd_generate(args) -> int:
    from supernova.generator import generate

    summary = generate(out=args.out, start=args.start, days=args.days, scale=args.scale,
                       seed=args.seed, fmt=args.format, mess=args.mess)
    print(summary)
    return 0


def cmd_ingest(args) -> int:
    from ingestion import ingest

    result = ingest(args.landing or settings.default_landing(),
                    args.warehouse or settings.default_warehouse(), progress=print)
    print(result.summary())
    if args.stage:
        from supernova import staging

        staging.stage(args.warehouse or settings.default_warehouse(), log=print)
    return 0 if result.ok else 1


def settle_month(month: str, landing: Path, warehouse: Path, *, preview=False, reopen=False,
                 reason="", accept_suspense=False, accept_suspense_reason="") -> int:
    """Run the monthly_settlement DAG in process; print a summary; 0 on success."""
    from supernova import settle as s
    from supernova.airflow_runner import run_dag
    from supernova.summary import print_summary

    landing, warehouse = Path(landing).resolve(), Path(warehouse).resolve()
    attempt_id = s.new_attempt_id(month)
    conf = {
        "month": month, "preview": preview, "reopen": reopen, "reason": reason,
        "accept_suspense": accept_suspense, "accept_suspense_reason": accept_suspense_reason,
        "landing": str(landing), "warehouse": str(warehouse), "attempt_id": attempt_id,
    }
    print(f"[supernova] settling {month} through the monthly_settlement DAG "
          f"(landing {landing}, warehouse {warehouse}) ...", flush=True)
    try:
        dagrun = run_dag("monthly_settlement", conf)
        state = str(getattr(dagrun, "state", "failed"))
    except Exception as exc:  # the DAG could not even start: say so plainly
        print(f"[supernova] ERROR: the settlement run could not start: {exc}", file=sys.stderr)
        return 2
    ok = state.endswith("success")
    print_summary(warehouse, attempt_id, dag_state=state)
    return 0 if ok else 1


def cmd_settle(args) -> int:
    if args.reopen and not args.reason:
        print("--reopen needs --reason TEXT (it is recorded)", file=sys.stderr)
        return 2
    if args.accept_suspense and not args.reason:
        print("--accept-suspense needs --reason TEXT (it is recorded)", file=sys.stderr)
        return 2
    return settle_month(
        args.month, args.landing or settings.default_landing(), args.warehouse or settings.default_warehouse(),
        preview=args.preview, reopen=args.reopen, reason=args.reason if args.reopen else "",
        accept_suspense=args.accept_suspense,
        accept_suspense_reason=args.reason if args.accept_suspense else "",
    )


def cmd_demo(args) -> int:
    """The README's main command: sample data for two months, settled in order."""
    from supernova.generator import generate

    home = settings.var_dir()
    landing = Path(args.landing or home / "demo" / "landing")
    warehouse = Path(args.warehouse or home / "demo" / "warehouse")
    # the marker lives beside the landing folder: ingestion rejects anything inside it
    # that is not an export file
    marker = landing.parent / f".{landing.name}.generated"
    if not marker.exists():
        print(f"[supernova] generating demo exports ({DEMO_START}, {DEMO_DAYS} days, scale demo) into {landing} ...",
              flush=True)
        print(generate(out=landing, start=DEMO_START, days=DEMO_DAYS, scale="demo", seed=2026), flush=True)
        marker.write_text("ok\n")
    else:
        print(f"[supernova] demo exports already in {landing}")
    for month in DEMO_MONTHS:
        rc = settle_month(month, landing, warehouse)
        if rc != 0:
            return rc
    print(f"\n[supernova] demo done. Outputs: {warehouse}/supernova.duckdb (schema settlement) and "
          f"{warehouse}/parquet/settlement/; reports in {warehouse}/reports/.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supernova", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write realistic sample export files")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--start", required=True, help="first delivery date, YYYY-MM-DD")
    g.add_argument("--days", type=int, required=True)
    g.add_argument("--scale", choices=["tiny", "demo", "pilot", "today", "target"], default="tiny")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--format", choices=["csv", "parquet"], default="csv")
    mess = g.add_mutually_exclusive_group()
    mess.add_argument("--mess", dest="mess", action="store_true", default=None,
                      help="sprinkle documented bad rows and a GBK file (default above tiny)")
    mess.add_argument("--no-mess", dest="mess", action="store_false")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("ingest", help="load new export files into the warehouse")
    _add_paths(i)
    i.add_argument("--stage", action="store_true",
                   help="then merge the new files into the staging layer (as the ingest_exports DAG does)")
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("settle", help="settle a month through the monthly_settlement DAG (in process)")
    s.add_argument("--month", required=True, help="YYYY-MM")
    _add_paths(s)
    s.add_argument("--preview", action="store_true", help="compute and report; publish nothing")
    s.add_argument("--reopen", action="store_true", help="republish the latest closed month (needs --reason)")
    s.add_argument("--accept-suspense", action="store_true",
                   help="accept suspense above the limit for this run (needs --reason)")
    s.add_argument("--reason", default="", help="why (recorded with --reopen / --accept-suspense)")
    s.set_defaults(func=cmd_settle)

    d = sub.add_parser("demo", help="generate demo data and settle it (the README's main command)")
    _add_paths(d)
    d.set_defaults(func=cmd_demo)

    from supernova.marts import add_marts_parser
    from supernova.statements import add_statements_parser

    add_marts_parser(sub)
    add_statements_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
