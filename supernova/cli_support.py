"""What every `supernova` command shares: exit codes, the help layout, the --landing and
--warehouse options, and the checks made before anything heavy starts. Imported by the
commands' own modules (cli, marts, statements), so none of them imports another."""

from __future__ import annotations

import argparse
from pathlib import Path

from supernova import settings

# One table of exit codes for every command (README.md, docs/marts.md say the same).
EXIT_OK = 0  # done
EXIT_FAILED = 1  # the run failed or was refused (a check failed, a closed month, a rejected file): see its message
EXIT_USAGE = (
    2  # a usage error: bad arguments, a missing landing folder, a warehouse path that is a file
)
EXIT_BUSY = 3  # the warehouse is busy: another run holds it, or a process kept the DuckDB file open too long
EXIT_CODES_TEXT = """exit codes (every command):
  0  done
  1  the run failed or was refused (see its message; nothing half-published)
  2  usage error: bad arguments, missing landing folder, warehouse path is a file
  3  warehouse busy: another run holds it, or a process kept the DuckDB file open
     longer than SUPERNOVA_WAREHOUSE_WAIT_SECONDS"""
ENV_TEXT = """environment:
  SUPERNOVA_HOME                    local state folder (default: <project>/var)
  SUPERNOVA_LANDING                 default --landing (default: $SUPERNOVA_HOME/landing)
  SUPERNOVA_WAREHOUSE               default --warehouse (default: $SUPERNOVA_HOME/warehouse)
  SUPERNOVA_DUCKDB_MEMORY_LIMIT     DuckDB memory limit for dbt and Python (default: 6GB)
  SUPERNOVA_WAREHOUSE_WAIT_SECONDS  how long a run waits for another process holding the
                                    warehouse DuckDB file (default: 120)"""
EPILOG = ENV_TEXT + "\n\n" + EXIT_CODES_TEXT
MONTH_HELP = "must be a calendar month written YYYY-MM, e.g. 2026-10"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option; the epilog (environment, exit codes) kept as written."""

    def _get_help_string(self, action):
        # "(default: None)" says nothing: options without a default explain theirs in words
        if action.default is None or action.default is False or action.default == "":
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (no usage dump, no traceback), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A problem with what was asked (paths, arguments) found before anything heavy starts."""


def month_arg(value: str) -> str:
    if not settings.MONTH_RE.match(value.strip()):
        raise argparse.ArgumentTypeError(f"{MONTH_HELP}; got {value!r}")
    return value.strip()


def add_command(
    sub, name: str, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand with the shared formatter, epilog and --verbose."""
    p = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show everything (Airflow, dbt, every file) instead of one line per stage",
    )
    return p


def add_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--landing",
        type=Path,
        default=None,
        help="landing directory of export files (default: $SUPERNOVA_LANDING, else "
        "$SUPERNOVA_HOME/landing)",
    )
    p.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="warehouse directory (default: $SUPERNOVA_WAREHOUSE, else $SUPERNOVA_HOME/warehouse)",
    )


def check_landing(landing: Path) -> Path:
    landing = Path(landing).expanduser()
    if not landing.is_dir():
        what = "is not a directory" if landing.exists() else "does not exist"
        raise UsageError(f"the landing folder {landing} {what} (--landing or SUPERNOVA_LANDING)")
    return landing.resolve()


def check_warehouse(warehouse: Path) -> Path:
    warehouse = Path(warehouse).expanduser()
    if warehouse.exists() and not warehouse.is_dir():
        raise UsageError(
            f"the warehouse path {warehouse} is a file, not a directory "
            "(--warehouse or SUPERNOVA_WAREHOUSE)"
        )
    return warehouse.resolve()


def check_busy(warehouse: Path) -> None:
    """Refuse at once (exit 3) when a live run holds the warehouse, instead of starting
    Airflow to find out. Read-only: a stale lock is left to the run, which clears it and
    records the interrupted attempt; we only say so here, where a person sees it."""
    from supernova import lock

    holder = lock.read_lock(warehouse)
    if holder is None:
        return
    if hasattr(holder, "stale_reason"):  # the lease (supernova/lock.py)
        stale = holder.stale_reason()
        owner = holder.describe()
    else:
        stale = "its process is gone" if holder.pid == -1 or not holder.alive else None
        owner = f"run {holder.run_id} (pid {holder.pid} on {holder.host})"
    if stale is None:
        raise lock.WarehouseBusy(
            f"warehouse {warehouse} is busy: {owner}. Wait for it to finish "
            f"(exit code {EXIT_BUSY})."
        )
    print(
        f"[supernova] clearing stale warehouse lock of run {holder.run_id}: {stale}; this run takes "
        "the warehouse over and records that attempt",
        flush=True,
    )
