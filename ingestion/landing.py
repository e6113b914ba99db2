"""What in the landing directory is an export file ready to be read (exports.md, "Landing
layout": files arrive while they are being written).

* A name starting with `.` or `_`, or ending in `.tmp`/`.part` (in any component of the
  path) is upstream's temporary name: not an export yet, never opened, reported as
  *waiting*, no manifest row.
* Anything that is not a regular file (a pipe, a socket, a device, a dangling symbolic
  link, a directory with a file-like name) is never opened: it gets a manifest row with
  status `not_a_file` and the reason.
* A regular file is read only once its size and modification time have been unchanged for
  the quiet period (`quiet_seconds()`); a younger file, or one that changes while it is
  being read, is left for the next run (*waiting*).
* A file that vanishes (or becomes a directory) between discovery and reading is skipped
  for this run (*vanished*), never a crash.
"""

from __future__ import annotations

import math
import os
import stat
import time
from pathlib import Path

from supernova.contract import FILE_SUFFIXES

# The single definition of the quiet period (docs/ingestion.md, "Files still being written").
QUIET_ENV = "SUPERNOVA_INGEST_QUIET_SECONDS"
QUIET_SECONDS_DEFAULT = 60.0
_TEMP_SUFFIXES = (".tmp", ".part")


def quiet_seconds(value: float | None = None) -> float:
    """The quiet period in seconds: `value` when given (ingest(quiet_seconds=...)), else
    $SUPERNOVA_INGEST_QUIET_SECONDS, else 60."""
    if value is None:
        raw = os.environ.get(QUIET_ENV, "").strip()
        if not raw:
            return QUIET_SECONDS_DEFAULT
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{QUIET_ENV} must be a number of seconds, not {raw!r}") from None
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"the ingest quiet period must be a number of seconds >= 0, not {value!r}")
    return value


def temporary_name(rel: str) -> str | None:
    """The path component that marks `rel` as still being written, or None."""
    for part in rel.split("/"):
        if part.startswith((".", "_")) or part.endswith(_TEMP_SUFFIXES):
            return part
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def not_a_file_reason(path: Path) -> str | None:
    """Why the directory entry `path` (listed as a non-directory) cannot be an export
    file, or None when it is a regular file (or a symbolic link to one), or vanished."""
    try:
        st = os.lstat(path)
    except OSError:
        return None  # vanished: the read reports it
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except FileNotFoundError:
            return "a dangling symbolic link (its target does not exist): not read"
        except OSError as e:
            return f"a symbolic link whose target cannot be reached ({type(e).__name__}): not read"
        if stat.S_ISREG(target.st_mode):
            return None
        return f"a symbolic link to {_kind(target.st_mode)}: not read"
    return f"{_kind(st.st_mode)}, not a regular file: not read"


def file_like_directory(name: str) -> bool:
    return any(name.endswith(s) and len(name) > len(s) for s in FILE_SUFFIXES)


class Waiting(Exception):
    """Not read in this run: still being written (or too young to tell)."""


class Vanished(Exception):
    """Gone (or no longer a file) between discovery and reading: skipped for this run."""


class NotAFile(Exception):
    """Turned out not to be a regular file when opened."""


def _changed(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) != (b.st_size, b.st_mtime_ns, b.st_ino)


def read_when_quiet(path: Path, quiet: float, now: float | None = None) -> bytes:
    """The bytes of `path` if its size and mtime have been unchanged for `quiet` seconds and
    stay unchanged while it is read. Raises Waiting, Vanished or NotAFile. Never blocks on
    a pipe (checked before opening, opened non-blocking, checked again on the descriptor)."""
    try:
        before = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.lexists(path):
            raise NotAFile(
                "a dangling symbolic link (its target does not exist): not read"
            ) from None
        raise Vanished(
            "vanished before it was read (deleted or renamed): skipped in this run"
        ) from None
    if stat.S_ISDIR(before.st_mode):
        raise Vanished("became a directory before it was read: skipped in this run")
    if not stat.S_ISREG(before.st_mode):
        raise NotAFile(f"{_kind(before.st_mode)}, not a regular file: not read")
    age = (time.time() if now is None else now) - before.st_mtime
    if age < quiet:
        raise Waiting(
            f"modified {max(age, 0):.0f} s ago: read once unchanged for {quiet:g} s "
            "(it may still be being written)"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise Vanished(
            "vanished before it was read (deleted or renamed): skipped in this run"
        ) from None
    except IsADirectoryError:
        raise Vanished("became a directory before it was read: skipped in this run") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise NotAFile(f"{_kind(opened.st_mode)}, not a regular file: not read")
        if _changed(before, opened):
            raise Waiting("changed while it was being checked (it may still be being written)")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                break
            chunks.append(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if _changed(opened, after) or len(data) != after.st_size:
        raise Waiting("changed while it was being read (it may still be being written)")
    return data
