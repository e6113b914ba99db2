"""`ingest()`: load new export files from the landing directory into the raw layer.

Protocol per file (crash-safe, see docs/ingestion.md):
1. read bytes, SHA-256; skip (path, sha) pairs already in the manifest;
2. parse + validate (nothing written yet);
3. write the typed rows to `raw/<export>/delivery_date=D/.<sha>.parquet.tmp-<run>`,
   fsync, rename to `<sha>.parquet`;
4. ONE DuckDB transaction: manifest row + quarantine rows (+, when the file changed in
   place, the earlier load marked `superseded` and its export's view refreshed).
The views of the exports that gained files are refreshed once at the end of the run
(and at the start of every run), so a file's cost does not grow with the files loaded
before it. At the start of every run, Parquet/temp files under raw/ that no committed
`loaded`/`superseded` manifest row references are deleted (leftovers of a crash between
3 and 4). What is read at all (temporary names, the quiet period, non-files, files that
vanish) is decided in `ingestion.landing`.

This module is the entry point: one run under the warehouse lease, one landing entry at a
time. The jobs it calls on: discovery.py (the landing's entries, in order), run.py (one
file processed and committed, the views refreshed), file_load.py (parse, validate, write
one file), raw_files.py (durable renames, the orphan clean-up), outcomes.py (what the run
reports).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from supernova import settings

from . import landing as landing_files
from .discovery import Candidate, discover
from .manifest_export import write_manifest_parquet
from .outcomes import (
    LOADED,
    SKIPPED,
    VANISHED,
    WAITING,
    FileOutcome,
    IngestResult,
)
from .raw_files import cleanup_orphans
from .run import Run
from .schema import create_objects


def _take(
    run: Run, con, cand: Candidate, quiet: float, state: dict, result: IngestResult
) -> FileOutcome | None:
    """One landing entry: not read (temporary name, not a file, not quiet yet, vanished),
    already seen (appended as skipped, returns None), or processed."""
    seen = state["seen"]
    if cand.temporary:
        return FileOutcome(
            cand.rel,
            "",
            WAITING,
            cand.export,
            cand.delivery_date,
            reason=f"temporary name {cand.temporary!r}: still being written, not an export yet",
        )
    if cand.not_a_file:
        if (cand.rel, "") in seen:
            result.files.append(FileOutcome(cand.rel, "", SKIPPED, cand.export, cand.delivery_date))
            return None
        seen.add((cand.rel, ""))
        return run.record_not_a_file(con, cand, cand.not_a_file)
    try:
        data = landing_files.read_when_quiet(cand.path, quiet)
    except landing_files.Waiting as e:
        return FileOutcome(cand.rel, "", WAITING, cand.export, cand.delivery_date, reason=str(e))
    except landing_files.Vanished as e:
        return FileOutcome(cand.rel, "", VANISHED, cand.export, cand.delivery_date, reason=str(e))
    except landing_files.NotAFile as e:
        if (cand.rel, "") in seen:
            result.files.append(FileOutcome(cand.rel, "", SKIPPED, cand.export, cand.delivery_date))
            return None
        seen.add((cand.rel, ""))
        return run.record_not_a_file(con, cand, str(e))
    sha = hashlib.sha256(data).hexdigest()
    if (cand.rel, sha) in seen:
        result.files.append(FileOutcome(cand.rel, sha, SKIPPED, cand.export, cand.delivery_date))
        return None
    out = run.process(con, cand, data, sha, state)
    seen.add((cand.rel, sha))
    return out


def ingest(
    landing: Path | str,
    warehouse: Path | str,
    *,
    progress: Callable[[str], None] | None = None,
    quiet_seconds: float | None = None,
) -> IngestResult:
    """Load every new file under `landing` into the raw layer of `warehouse`.

    `quiet_seconds`: a file is read only once its size and mtime have been unchanged
    this long (default: $SUPERNOVA_INGEST_QUIET_SECONDS, else 60; ingestion/landing.py).

    Every writer takes the warehouse lease first (supernova/lock.py): while a settlement
    holds it this raises lock.WarehouseBusy and loads nothing; re-entrant when this
    process already holds it (the settlement's own ingest step, a marts step)."""
    from supernova import lock

    with lock.held(Path(warehouse).resolve(), "ingest", log=progress or print):
        return _ingest_under_lease(
            landing, warehouse, progress=progress, quiet_seconds=quiet_seconds
        )


def _ingest_under_lease(landing, warehouse, *, progress=None, quiet_seconds=None) -> IngestResult:
    t0 = time.perf_counter()
    landing = Path(landing).resolve()
    warehouse = Path(warehouse).resolve()
    if not landing.is_dir():
        raise FileNotFoundError(f"landing directory {landing} does not exist")
    warehouse.mkdir(parents=True, exist_ok=True)
    run = Run(landing, warehouse, progress)
    result = IngestResult(run.run_id, landing, warehouse)
    say = run.progress
    con = duckdb.connect(str(settings.duckdb_path(warehouse)))
    try:
        create_objects(con, warehouse)
        removed = cleanup_orphans(con, warehouse)
        if removed:
            say(f"removed {len(removed)} uncommitted file(s) left by an interrupted run")
        quiet = landing_files.quiet_seconds(quiet_seconds)
        # a superseded row is not "seen": if its bytes come back they are read again
        seen = set(
            con.execute(
                "SELECT file_path, sha256 FROM raw.manifest WHERE status <> 'superseded'"
            ).fetchall()
        )
        state = {"loaded_sha": {}, "loaded_path": {}, "seen": seen}
        for p, s in con.execute(
            "SELECT file_path, sha256 FROM raw.manifest WHERE status = 'loaded' ORDER BY loaded_at"
        ).fetchall():
            state["loaded_sha"].setdefault(s, p)
            state["loaded_path"][p] = s
        candidates = discover(landing)
        say(f"ingest {run.run_id}: {len(candidates)} file(s) under {landing}")
        for cand in candidates:
            out = _take(run, con, cand, quiet, state, result)
            if out is None:
                continue
            result.files.append(out)
            msg = f"[{out.status}] {out.path}"
            if out.status == LOADED:
                msg += (
                    f": {out.rows_loaded} rows loaded, {out.rows_quarantined} quarantined"
                    f" ({out.seconds:.2f}s)"
                )
                if out.extra_columns:
                    msg += f"; extra columns ignored: {', '.join(out.extra_columns)}"
            else:
                msg += f": {out.reason}"
            if out.supersedes:
                msg += (
                    f" (changed in place: the earlier load, sha256 {out.supersedes[:12]}…, "
                    f"{out.rows_withdrawn} rows, is superseded)"
                )
            say(msg)
        run.refresh_touched_views(con)
        write_manifest_parquet(con, warehouse / "raw")
    finally:
        try:
            if run.touched:  # interrupted: still show what was committed
                run.refresh_touched_views(con)
        finally:
            con.close()
            run.close()
    result.seconds = time.perf_counter() - t0
    return result
