"""Which entries the landing holds and in what order they are taken: each entry's export,
delivery date and file type read from its path (`<export>/<YYYY-MM-DD>/<file>`), or why
its path is outside that layout."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from supernova.contract import EXPORTS, FILE_SUFFIXES

from . import landing as landing_files

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _suffix(name: str) -> str | None:
    for s in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if name.endswith(s) and len(name) > len(s):
            return s
    return None


@dataclass
class Candidate:
    path: Path
    rel: str
    export: str | None
    delivery_date: str | None
    suffix: str | None
    layout_error: str | None
    not_a_file: str | None = None  # why this landing entry is not a regular file
    temporary: str | None = None  # the path component that is a temporary name


def _classify(landing: Path, path: Path) -> Candidate:
    rel = path.relative_to(landing).as_posix()
    parts = rel.split("/")
    export = date = suffix = None
    err = None
    if len(parts) != 3:
        err = f"not in the <export>/<YYYY-MM-DD>/<file> layout ({len(parts) - 1} folder levels)"
    else:
        export, date, name = parts
        if export not in EXPORTS:
            err = f"unknown export {export!r} (expected one of: {', '.join(EXPORTS)})"
            export = None
        elif not _DATE_DIR.match(date) or not _valid_date(date):
            err = f"bad delivery date folder {date!r} (expected YYYY-MM-DD)"
            date = None
        else:
            suffix = _suffix(name)
            if suffix is None:
                err = f"unknown file type {name!r} (expected {', '.join(FILE_SUFFIXES)})"
    return Candidate(
        path, rel, export, date, suffix, err, temporary=landing_files.temporary_name(rel)
    )


def _valid_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
        return True
    except ValueError:
        return False


def discover(landing: Path) -> list[Candidate]:
    """Every entry of the landing, in processing order: delivery date, export (contract
    order), file path. Files outside the layout come first. Entries that are not regular
    files (pipes, dangling links, directories with a file-like name) are included with
    `not_a_file` set; they are never opened."""
    found = []
    for root, dirs, files in os.walk(landing):
        dirs.sort()
        for d in dirs:
            if landing_files.file_like_directory(d):
                c = _classify(landing, Path(root) / d)
                c.not_a_file = "a directory with a file-like name, not a regular file: not read"
                found.append(c)
        for f in sorted(files):
            c = _classify(landing, Path(root) / f)
            c.not_a_file = landing_files.not_a_file_reason(c.path)
            found.append(c)
    order = {name: i for i, name in enumerate(EXPORTS)}

    def key(c: Candidate):
        return (c.delivery_date or "", order.get(c.export, -1), c.rel)

    return sorted(found, key=key)
