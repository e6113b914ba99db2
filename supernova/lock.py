"""The warehouse lease: who may write the warehouse right now.

DuckDB refuses a second writer only while the file is open; a settlement run spans
several tasks that each open and close it, and under a real scheduler (LocalExecutor)
every task is its own short-lived process. So the warehouse is held by a *lease* in
`<warehouse>/run.lock`, bound to an owner (a settlement attempt, or one step of another
writer such as `ingest`), not to a process id:

- a settlement attempt takes it in `begin` and releases it in `finish`; every task of the
  run renews it when it starts and a keeper thread renews it while the task runs
  (`keep_alive`), so its heartbeat stays fresh across task processes;
- every other writer (ingest, staging, marts) holds it for one step (`held`), re-entrant
  when this process already holds the warehouse for its owner (the settlement's ingest
  step, a marts step that calls ingest).

A lease is stale, and is cleared with a message, only when
- its heartbeat is older than its time to live (SUPERNOVA_LEASE_TTL_SECONDS, default
  900 s): the owner stopped renewing it (process killed, scheduler gone);
- or it is bound to one process (a step, or `supernova settle`, which runs the whole DAG
  in one process) and that process is gone on this host;
- or it is bound to an Airflow DAG run and, asked from inside an Airflow task, Airflow
  says that run is no longer queued or running.

Taking, renewing and clearing the lease is one read-modify-write under an exclusive
`fcntl.flock` on `<warehouse>/run.lock.guard`, and the lease file is replaced by an atomic
rename, so a half-written lease file is never read and two processes can never both take
it. The module reports what it cleared (`acquire` returns the stale lease) and imports
nothing of the project: recording an interrupted settlement is the run state's business
(run_state.recover_interrupted, called by settle.begin), not this one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

TTL_ENV = "SUPERNOVA_LEASE_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 900.0
RENEW_EVERY_SECONDS = 30.0
SETTLEMENT = "settlement"


class WarehouseBusy(RuntimeError):
    """Another owner holds the warehouse."""


class LeaseLost(WarehouseBusy):
    """The lease this owner took is gone or held by another owner (it expired and was
    taken over): the owner must stop writing."""


def ttl_seconds() -> float:
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TTL_SECONDS
    except ValueError:
        raise ValueError(f"{TTL_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{TTL_ENV} must be positive, got {raw!r}")
    return value


@dataclass
class Lease:
    run_id: str  # the owner: a settlement attempt id, or `<purpose>-<time>-<pid>` for a step
    purpose: str  # "settlement 2026-10", "ingest", "marts-build", ...
    host: str
    pid: int  # the process that last renewed it
    acquired_at: float
    heartbeat_at: float
    ttl_seconds: float
    process_bound: bool  # True: the owner lives and dies with `pid`
    dag_id: str | None = None  # the Airflow DAG run it is bound to, if any
    dag_run_id: str | None = None

    @property
    def is_settlement(self) -> bool:
        return self.purpose.startswith(SETTLEMENT)

    def describe(self) -> str:
        since = (
            datetime.fromtimestamp(self.acquired_at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        )
        beat = max(0.0, time.time() - self.heartbeat_at)
        where = (
            f"DAG run {self.dag_id}/{self.dag_run_id}"
            if self.dag_run_id
            else f"pid {self.pid} on {self.host}"
        )
        return (
            f"{self.purpose} (owner {self.run_id}, {where}) since {since}, "
            f"last heartbeat {beat:.0f} s ago"
        )

    def stale_reason(self, now: float | None = None) -> str | None:
        """Why this lease no longer protects anything, or None while its owner lives."""
        now = time.time() if now is None else now
        if now - self.heartbeat_at > self.ttl_seconds:
            return (
                f"no heartbeat for {now - self.heartbeat_at:.0f} s "
                f"(time to live {self.ttl_seconds:.0f} s)"
            )
        if self.process_bound and self.host == socket.gethostname() and not _pid_alive(self.pid):
            return f"pid {self.pid} on {self.host} is gone"
        if self.dag_run_id and self.dag_id:
            state = _airflow_run_state(self.dag_id, self.dag_run_id)
            if state is not None and state not in ("queued", "running"):
                return f"its DAG run {self.dag_id}/{self.dag_run_id} is {state}"
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _airflow_run_state(dag_id: str, dag_run_id: str) -> str | None:
    """The state of an Airflow DAG run, when asked from inside an Airflow task process
    (the Task SDK's supervisor answers); None anywhere else or on any doubt. Airflow is
    never imported here: only used when the process already runs a task."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(runner, "SUPERVISOR_COMMS", None) if runner else None
    if comms is None:
        return None
    try:
        return (
            str(runner.RuntimeTaskInstance.get_dagrun_state(dag_id, dag_run_id))
            .lower()
            .split(".")[-1]
        )
    except Exception:
        return None


# ---------------------------------------------------------------- the file and its guard


def lock_path(warehouse: Path) -> Path:
    return Path(warehouse) / "run.lock"


def _guard_path(warehouse: Path) -> Path:
    return Path(warehouse) / "run.lock.guard"


@contextlib.contextmanager
def _guarded(warehouse: Path):
    """Exclusive flock around one read-modify-write of the lease file."""
    Path(warehouse).mkdir(parents=True, exist_ok=True)
    fd = os.open(_guard_path(warehouse), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _parse(text: str) -> Lease:
    data = json.loads(text)
    acquired = float(data.get("acquired_at", 0.0))
    return Lease(
        run_id=str(data["run_id"]),
        purpose=str(data.get("purpose") or SETTLEMENT),
        host=str(data.get("host", "?")),
        pid=int(data.get("pid", -1)),
        acquired_at=acquired,
        heartbeat_at=float(data.get("heartbeat_at", acquired)),
        ttl_seconds=float(data.get("ttl_seconds", DEFAULT_TTL_SECONDS)),
        # a lease file of the earlier format recorded only a pid: it was bound to it
        process_bound=bool(data.get("process_bound", True)),
        dag_id=data.get("dag_id"),
        dag_run_id=data.get("dag_run_id"),
    )


def read_lock(warehouse: Path) -> Lease | None:
    """The current lease as written (stale or not), None when the warehouse is free. A
    file that cannot be parsed (edited by hand, disk trouble) reads as a lease of owner
    `<unreadable lock file>` with no heartbeat, i.e. stale."""
    try:
        text = lock_path(warehouse).read_text()
    except FileNotFoundError:
        return None
    try:
        return _parse(text)
    except (ValueError, KeyError, TypeError):
        return Lease("<unreadable lock file>", "?", "?", -1, 0.0, 0.0, 0.0, True)


def _write(warehouse: Path, lease: Lease) -> None:
    """Replace the lease file atomically (temp file + rename)."""
    p = lock_path(warehouse)
    tmp = p.with_name(f".run.lock.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        json.dump(asdict(lease), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


# ---------------------------------------------------------------- taking and giving back

# the owner this process currently holds each warehouse for (re-entrancy of `held`)
_HELD: dict[str, str] = {}
_HELD_GUARD = threading.Lock()


def _key(warehouse: Path) -> str:
    return str(Path(warehouse).resolve())


def _note_cleared(warehouse: Path, message: str, by: str) -> None:
    """Every cleared lease also goes to <warehouse>/logs/lease.log, whoever cleared it and
    whatever its caller does with `log`: an operator can always see which run was
    declared dead, when, why and by whom."""
    try:
        logs = Path(warehouse) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "lease.log", "a", encoding="utf-8") as f:
            f.write(
                f"{datetime.now().astimezone().isoformat(timespec='seconds')} {message} (by {by})\n"
            )
    except OSError:
        pass  # the note is a courtesy; clearing the lease does not depend on it


def acquire(
    warehouse: Path,
    run_id: str,
    log=print,
    *,
    purpose: str = SETTLEMENT,
    process_bound: bool = True,
    dag_id: str | None = None,
    dag_run_id: str | None = None,
) -> Lease | None:
    """Take the warehouse for owner `run_id` (re-entrant for the same owner: renews it).
    Raises WarehouseBusy when another live owner holds it. Returns the stale lease that was
    cleared on the way, if any, so the caller can account for its owner."""
    warehouse = Path(warehouse)
    now = time.time()
    cleared = None
    with _guarded(warehouse):
        holder = read_lock(warehouse)
        if holder is not None and holder.run_id != run_id:
            reason = holder.stale_reason(now)
            if reason is None:
                raise WarehouseBusy(
                    f"warehouse {warehouse} is busy: {holder.describe()}. Wait for it to finish; "
                    f"a lease whose owner died is cleared after its time to live "
                    f"({holder.ttl_seconds:.0f} s without heartbeat)."
                )
            message = (
                f"clearing stale warehouse lock of run {holder.run_id} ({holder.purpose}): {reason}"
            )
            log(message)
            _note_cleared(warehouse, message, run_id)
            cleared = holder
        acquired_at = holder.acquired_at if holder is not None and holder.run_id == run_id else now
        _write(
            warehouse,
            Lease(
                run_id,
                purpose,
                socket.gethostname(),
                os.getpid(),
                acquired_at,
                now,
                ttl_seconds(),
                process_bound,
                dag_id,
                dag_run_id,
            ),
        )
    with _HELD_GUARD:
        _HELD[_key(warehouse)] = run_id
    return cleared


def renew(warehouse: Path, run_id: str, *, process_bound: bool | None = None) -> Lease:
    """Refresh the heartbeat of the lease `run_id` holds (each task of a settlement run
    calls this first). Raises LeaseLost when the lease is gone or another owner's."""
    warehouse = Path(warehouse)
    with _guarded(warehouse):
        holder = read_lock(warehouse)
        if holder is None or holder.run_id != run_id:
            raise LeaseLost(
                f"run {run_id} no longer holds warehouse {warehouse}: "
                + (f"it is held by {holder.describe()}" if holder else "the lease is gone")
                + ". Its heartbeat must have expired; nothing more is written by this run."
            )
        holder.heartbeat_at = time.time()
        holder.pid = os.getpid()
        holder.host = socket.gethostname()
        if process_bound is not None:
            holder.process_bound = process_bound
        _write(warehouse, holder)
    with _HELD_GUARD:
        _HELD[_key(warehouse)] = run_id
    return holder


def release(warehouse: Path, run_id: str) -> None:
    """Give the warehouse back (only if `run_id` still holds it)."""
    warehouse = Path(warehouse)
    with _guarded(warehouse):
        holder = read_lock(warehouse)
        if holder is not None and holder.run_id == run_id:
            lock_path(warehouse).unlink(missing_ok=True)
    with _HELD_GUARD:
        if _HELD.get(_key(warehouse)) == run_id:
            del _HELD[_key(warehouse)]


def current_owner(warehouse: Path) -> str | None:
    """The owner this process holds `warehouse` for, if it holds it."""
    with _HELD_GUARD:
        return _HELD.get(_key(warehouse))


def active_lease(warehouse: Path) -> Lease | None:
    """The lease that holds the warehouse now, or None when it is free or only a stale
    lease is left (which the next writer clears). For waiting (sensors), not for taking."""
    with _guarded(Path(warehouse)):
        holder = read_lock(warehouse)
    if holder is None or holder.stale_reason() is not None:
        return None
    return holder


@contextlib.contextmanager
def keep_alive(warehouse: Path, run_id: str, every: float = RENEW_EVERY_SECONDS, log=print):
    """For one task of a run that holds the lease: renew it now (LeaseLost if it was
    lost), and keep renewing it from a daemon thread while the block runs, so a long step
    (dbt build, the gate, a big publish) never lets it expire. Does not release it."""
    renew(warehouse, run_id)
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                renew(warehouse, run_id)
            except LeaseLost as exc:  # the step itself finds out at its next renew
                log(f"WARNING: {exc}")
                return
            except OSError as exc:
                log(f"WARNING: could not renew the warehouse lease: {exc}")

    th = threading.Thread(target=beat, name="warehouse-lease", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=5)


@contextlib.contextmanager
def held(warehouse: Path, purpose: str, log=print):
    """Hold the warehouse for one step (an owner made from `purpose`, the time and the
    pid, bound to this process); released on exit, also on error. Re-entrant: when this
    process already holds the warehouse (a settlement task, an enclosing step), the step
    runs under that lease and leaves it in place."""
    warehouse = Path(warehouse)
    owner = current_owner(warehouse)
    if owner is not None:
        holder = read_lock(warehouse)
        if holder is not None and holder.run_id == owner:
            yield owner
            return
    run_id = f"{purpose}-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}"
    acquire(warehouse, run_id, log=log, purpose=purpose, process_bound=True)
    try:
        with keep_alive(warehouse, run_id, log=log):
            yield run_id
    finally:
        release(warehouse, run_id)
