"""One settlement run per warehouse at a time.

DuckDB itself refuses a second writer, but only while the file is open; a run spans
several tasks that each open and close it. The run lock makes the second run fail
clearly at its start instead. The lock file records the holder (run id, host, pid); a
lock whose process is gone on this host is stale and is cleared, with a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse."""


@dataclass
class LockInfo:
    run_id: str
    host: str
    pid: int
    acquired_at: float

    @property
    def alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # cannot tell for another host: assume it is running
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def lock_path(warehouse: Path) -> Path:
    return Path(warehouse) / "run.lock"


def read_lock(warehouse: Path) -> LockInfo | None:
    p = lock_path(warehouse)
    try:
        data = json.loads(p.read_text())
        return LockInfo(data["run_id"], data["host"], int(data["pid"]), float(data["acquired_at"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError):
        return LockInfo("<unreadable lock file>", "?", -1, 0.0)


def acquire(warehouse: Path, run_id: str, log=print) -> str | None:
    """Take the warehouse lock for run_id (re-entrant for the same run id). Returns the
    run id of a stale lock that was cleared on the way (its process had died), if any."""
    warehouse = Path(warehouse)
    cleared = None
    warehouse.mkdir(parents=True, exist_ok=True)
    p = lock_path(warehouse)
    for _ in range(2):
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(warehouse)
            if holder is None:
                continue
            if holder.run_id == run_id:
                return None
            if holder.pid == -1 or not holder.alive:
                log(f"clearing stale warehouse lock of run {holder.run_id} (pid {holder.pid} on "
                    f"{holder.host} is gone)")
                p.unlink(missing_ok=True)
                cleared = holder.run_id
                continue
            raise WarehouseBusy(
                f"warehouse {warehouse} is busy: run {holder.run_id} (pid {holder.pid} on "
                f"{holder.host}) started at {time.ctime(holder.acquired_at)}. Wait for it to "
                f"finish; if that process is really gone, delete {p}."
            )
        with os.fdopen(fd, "w") as f:
            json.dump({"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                       "acquired_at": time.time()}, f)
        return cleared
    raise WarehouseBusy(f"could not take the warehouse lock {p}")


def release(warehouse: Path, run_id: str) -> None:
    holder = read_lock(warehouse)
    if holder is not None and holder.run_id == run_id:
        lock_path(warehouse).unlink(missing_ok=True)


@contextlib.contextmanager
def held(warehouse: Path, purpose: str, log=print):
    """Hold the warehouse run lock for one step (a run id made from `purpose`, the time and
    the pid); released on exit, also on error."""
    run_id = f"{purpose}-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}"
    acquire(warehouse, run_id, log=log)
    try:
        yield run_id
    finally:
        release(warehouse, run_id)
