"""The `supernova statements` command: its parser, and one line on the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from supernova import settings
from supernova.statements.data import StatementsError
from supernova.statements.files import write_statements


def run_statements(warehouse: Path, month: str, out: Path | None = None) -> int:
    """Write the month's statements; one line on the terminal. Returns an exit code."""
    from supernova.cli_support import EXIT_FAILED, EXIT_OK

    try:
        files = write_statements(warehouse, month, out, log=lambda m: None)
    except StatementsError as exc:
        print(f"[supernova] ERROR: {exc}", file=sys.stderr)
        return EXIT_FAILED
    xlsx = [f for f in files if f.suffix == ".xlsx"]
    print(
        f"[supernova] statements {month}: {len(files) - len(xlsx) - 2:,} promoter statements, the payouts and "
        f"ledger CSVs and {xlsx[0].name if xlsx else 'no workbook'} in {files[0].parent}"
    )
    return EXIT_OK


def cmd_statements(args) -> int:
    from supernova.cli_support import check_warehouse

    warehouse = check_warehouse(args.warehouse or settings.default_warehouse())
    return run_statements(warehouse, args.month, args.out)


def add_statements_parser(subparsers) -> argparse.ArgumentParser:
    """Register `supernova statements --month YYYY-MM [--warehouse DIR] [--out DIR]`."""
    from supernova.cli_support import add_command, month_arg

    p = add_command(
        subparsers,
        "statements",
        "promoter statements (CSV + XLSX) of a published month for finance",
    )
    p.add_argument("--month", required=True, type=month_arg, help="YYYY-MM (a published month)")
    p.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="warehouse directory (default: $SUPERNOVA_WAREHOUSE, else $SUPERNOVA_HOME/warehouse)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: <warehouse>/statements/<month>)",
    )
    p.set_defaults(func=cmd_statements)
    return p
