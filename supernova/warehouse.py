"""Opening the warehouse DuckDB file, with the errors a person can act on.

DuckDB lets one process open the file for writing, and refuses every other open while it
does. BI tools are told to read the Parquet copies and the catalog file (docs/bi.md), but a
person may still open the working file by hand: a run then waits for it (bounded by
SUPERNOVA_WAREHOUSE_WAIT_SECONDS, default 120 s) and says who holds it, instead of failing
half-way. DuckDB's lock error names the holder (program and PID); we pass that on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

import duckdb

from supernova import settings

WAIT_ENV = "SUPERNOVA_WAREHOUSE_WAIT_SECONDS"
WAIT_DEFAULT_SECONDS = 120.0
_POLL_SECONDS = 0.25
_HOLDER_RE = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseLocked(RuntimeError):
    """Another process kept the warehouse file open for longer than the wait allows."""


def wait_seconds() -> float:
    """How long a run waits for another process to close the warehouse file."""
    value = os.environ.get(WAIT_ENV, "").strip()
    if not value:
        return WAIT_DEFAULT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{WAIT_ENV} must be a number of seconds >= 0 (e.g. 120), not {value!r}")
    return seconds


def lock_holder(exc: BaseException | str) -> str:
    """'PID 6479 (/usr/bin/python3)' from DuckDB's lock error, or 'another process'."""
    m = _HOLDER_RE.search(str(exc))
    return f"PID {m['pid']} ({m['program']})" if m else "another process"


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


_notice_sink = None


def set_notice_sink(sink) -> None:
    """Where wait notices go (a `say(msg)`): the CLI points it at the terminal while the
    run's details go to a log file. None: this process's stderr."""
    global _notice_sink
    _notice_sink = sink


def _notice(msg: str) -> None:
    # to the person at the terminal: a run that does not move must say why
    line = f"[supernova] {msg}"
    if _notice_sink is not None:
        _notice_sink(line)
    else:
        print(line, file=sys.stderr, flush=True)


def _open(path: Path, read_only: bool, wait: float | None, log) -> duckdb.DuckDBPyConnection:
    """duckdb.connect(path), retried while another process holds the file, up to `wait` s."""
    wait = wait_seconds() if wait is None else wait
    log = log or _notice
    t0 = time.monotonic()
    holder = None
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            waited = time.monotonic() - t0
            if holder is None:
                holder = lock_holder(exc)
                log(
                    f"the warehouse file {path} is held by {holder}: waiting up to {wait:.0f} s "
                    f"for it to let go ({WAIT_ENV})"
                )
            if waited >= wait:
                raise WarehouseLocked(
                    f"the warehouse file {path} is still held by {lock_holder(exc)} after {waited:.0f} s: "
                    f"close that program (BI tools read <warehouse>/bi/supernova_bi.duckdb or the Parquet "
                    f"copies, never this file) and retry, or raise {WAIT_ENV}."
                ) from exc
            time.sleep(_POLL_SECONDS)
            continue
        if holder is not None:
            log(
                f"the warehouse file is free after {time.monotonic() - t0:.1f} s (was held by {holder}); going on"
            )
        return con


def wait_until_free(warehouse_or_file: Path, wait: float | None = None, log=None) -> None:
    """Return once this process could open the warehouse file for writing (then close it
    at once), waiting up to `wait` seconds for another process to let go. For callers
    that open the file themselves (dbt). A missing file is free."""
    path = Path(warehouse_or_file)
    if path.suffix != ".duckdb":
        path = settings.duckdb_path(path)
    if not path.exists():
        return
    _open(path, read_only=False, wait=wait, log=log).close()


@contextlib.contextmanager
def connect(warehouse: Path, read_only: bool = False, wait: float | None = None, log=None):
    """One connection to <warehouse>/supernova.duckdb, closed on exit. While another
    process holds the file, wait (bounded) and say who holds it; past the bound, a clear
    WarehouseLocked naming the holder."""
    path = settings.duckdb_path(Path(warehouse))
    if Path(warehouse).exists() and not Path(warehouse).is_dir():
        raise NotADirectoryError(f"the warehouse path {warehouse} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, wait, log)
    try:
        con.execute("set timezone = 'Asia/Shanghai'")
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit()}'")
        yield con
    finally:
        con.close()


def table_exists(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )
