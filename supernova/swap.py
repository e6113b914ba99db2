"""Swapping a fully written folder in for a published one (settlement partitions,
supernova/publish.py; a mart's copy the first time, or when it is in another layout,
supernova/marts.py, which otherwise replaces its month or day files one by one), so that a
reader globbing `<folder>/*.parquet` never finds it empty.

Every settlement partition folder holds one file, `part-0.parquet` (a mart's copy does
too when the mart has no rows). When the published folder holds exactly that file too
(every publish after the first), the new file replaces the old one with one `os.replace`:
atomic on one filesystem, so a reader sees the old file or the new, and a
reader that opened the old one keeps reading it. Renaming the folders instead (the old one
aside, then the new one in) leaves a moment, or after a kill until the next run, in which
the folder is missing and a BI view over it reads no rows for that month or mart.

Folders that differ from that layout (the first publish, or a folder an earlier version
wrote with other files) are swapped by those two renames. Both ways need `staged` on the
disk of `target` (the callers check it before writing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PART = "part-0.parquet"


def _holds_only_the_part(folder: Path) -> bool:
    return folder.is_dir() and [p.name for p in folder.iterdir()] == [PART]


def swap_in(staged: Path, target: Path, set_aside: Path) -> None:
    """Put the folder `staged` in place of `target` (see the module docstring); `set_aside`
    is where the old folder goes when the folders are renamed (removed afterwards)."""
    if _holds_only_the_part(staged) and _holds_only_the_part(target):
        os.replace(staged / PART, target / PART)
        staged.rmdir()  # empty now; a kill before this leaves a hidden empty folder
        return
    if target.exists():
        os.rename(target, set_aside)
    os.rename(staged, target)
    shutil.rmtree(set_aside, ignore_errors=True)
