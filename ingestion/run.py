"""One ingest run and the files it takes (protocol: ingestion/core.py, docs/ingestion.md):
write one file's Parquet durably, then ONE DuckDB transaction per file (manifest row +
quarantine rows, and when the file changed in place, its earlier load superseded and its
export's view refreshed); the views of the exports that gained files are refreshed once
at the end of the run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from supernova.contract import EXPORTS, TIMEZONE

from .discovery import Candidate
from .file_load import now_shanghai, parse_file, quarantine_table, validate_and_write
from .outcomes import DUPLICATE, LOADED, NOT_A_FILE, REJECTED, FileOutcome
from .raw_files import fsync_dir
from .readers import FileRejected
from .schema import parquet_path, refresh_view
from .validate import lit

_TZ = ZoneInfo(TIMEZONE)
FAULT_ENV = "SUPERNOVA_INGEST_FAULT"  # test hook: "<point>:<n>", see _fault()


def _fault(point: str, n: int) -> None:
    """Test hook: SIGKILL this process at `point` of the n-th processed file."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{point}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)


class Run:
    """One ingest run: its id, the files it processes and commits one by one, and the views
    of the exports that gained files."""

    def __init__(self, landing: Path, warehouse: Path, progress):
        self.landing = landing
        self.warehouse = warehouse
        self.progress = progress or (lambda _msg: None)
        stamp = dt.datetime.now(_TZ).strftime("%Y%m%dT%H%M%S")
        self.run_id = f"ingest-{stamp}-{uuid.uuid4().hex[:8]}"
        self.compute = duckdb.connect(":memory:")
        self.compute.execute(f"SET TimeZone = {lit(TIMEZONE)}")
        self.n_processed = 0
        self.touched: set[str] = set()  # exports whose view must list new files

    def close(self):
        self.compute.close()

    # one file -----------------------------------------------------------------
    def process(self, con, cand: Candidate, data: bytes, sha: str, state) -> FileOutcome:
        t0 = time.perf_counter()
        out = FileOutcome(cand.rel, sha, REJECTED, cand.export, cand.delivery_date)
        self.n_processed += 1
        n = self.n_processed
        quarantine: pa.Table | None = None
        tmp = final = None
        previous = state["loaded_path"].get(cand.rel)
        if previous is not None and previous != sha:
            # changed in place after it was loaded: the earlier load stops counting whatever
            # becomes of the new bytes (exports.md "Files arrive while they are being written")
            out.supersedes = previous
        if cand.layout_error:
            out.reason = cand.layout_error
        elif sha in state["loaded_sha"]:
            out.status = DUPLICATE
            out.reason = f"same bytes as {state['loaded_sha'][sha]} (already loaded)"
        else:
            export = EXPORTS[cand.export]
            try:
                parsed = parse_file(data, export, cand.suffix)
                out.encoding = parsed.encoding
                out.extra_columns = parsed.extra_columns
                final = parquet_path(self.warehouse, cand.export, cand.delivery_date, sha)
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{sha}.parquet.tmp-{self.run_id}")
                bad_lines, bad_reasons = validate_and_write(
                    self.compute, parsed, export, cand, sha, tmp
                )
                quarantine = quarantine_table(
                    self.run_id, parsed, export, cand, sha, bad_lines, bad_reasons
                )
                out.rows_read = parsed.rows_read
                out.rows_quarantined = quarantine.num_rows
                out.rows_loaded = out.rows_read - out.rows_quarantined
                out.status = LOADED
            except FileRejected as e:
                out.reason = str(e)
                if tmp is not None and tmp.exists():
                    tmp.unlink()
                tmp = final = None
        if tmp is not None:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            fsync_dir(final.parent)
        if out.supersedes and out.status == LOADED:
            out.reason = (
                f"changed in place: replaces the earlier load of this path (sha256 "
                f"{out.supersedes[:12]}…), now superseded"
            )
        _fault("before_commit", n)
        self._commit(con, out, cand, len(data), quarantine, state)
        _fault("after_commit", n)
        if out.supersedes:
            state["loaded_sha"].pop(out.supersedes, None)
            state["loaded_path"].pop(cand.rel, None)
            for path in state.get("withdrawn_duplicates", ()):
                state["seen"].discard((path, out.supersedes))
            state["withdrawn_duplicates"] = ()
        if out.status == LOADED:
            state["loaded_sha"][sha] = cand.rel
            state["loaded_path"][cand.rel] = sha
            self.touched.add(cand.export)
        out.seconds = time.perf_counter() - t0
        return out

    def record_not_a_file(self, con, cand: Candidate, reason: str) -> FileOutcome:
        """A landing entry that is not a regular file: a manifest row saying why (sha256 ''),
        once per path (the next runs see it as already seen)."""
        layout_ok = cand.layout_error is None
        out = FileOutcome(
            cand.rel,
            "",
            NOT_A_FILE,
            cand.export if layout_ok else None,
            cand.delivery_date if layout_ok else None,
            reason=reason,
        )
        self._commit(con, out, cand, None, None)
        return out

    def _commit(
        self, con, out: FileOutcome, cand: Candidate, size: int | None, quarantine, state=None
    ):
        name = cand.path.name
        con.execute("BEGIN")
        try:
            if out.supersedes:
                self._supersede(con, out, cand, state)
            con.execute(
                "INSERT INTO raw.manifest VALUES (?, ?, CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, CAST(? AS VARCHAR[]), ?, ?)",
                [
                    out.path,
                    out.export,
                    out.delivery_date,
                    name,
                    out.sha256,
                    size,
                    out.encoding,
                    out.rows_read,
                    out.rows_loaded,
                    out.rows_quarantined,
                    out.status,
                    out.reason,
                    out.extra_columns or None,
                    self.run_id,
                    now_shanghai(),
                ],
            )
            if quarantine is not None and quarantine.num_rows:
                con.register("q_rows", quarantine)
                con.execute("INSERT INTO raw.quarantine SELECT * FROM q_rows")
                con.unregister("q_rows")
            if out.supersedes:
                # the withdrawn rows leave the view in the same transaction; new loads become
                # visible when the run ends (refresh_touched_views)
                refresh_view(con, self.warehouse, out.export)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _supersede(self, con, out: FileOutcome, cand: Candidate, state) -> None:
        """Mark the earlier load of this path `superseded` (its Parquet is kept, its rows
        leave the raw view). Files recorded as duplicates of it referred to rows that no
        longer count: they are marked superseded too, so they are read again (now or in
        the next run) like any delivery."""
        old = out.supersedes
        why = (
            f"superseded: {cand.rel} changed in place (new sha256 {out.sha256[:12]}…, "
            f"ingest run {self.run_id})"
        )
        row = con.execute(
            "UPDATE raw.manifest SET status = 'superseded', reason = ? "
            "WHERE file_path = ? AND sha256 = ? AND status = 'loaded' RETURNING rows_loaded",
            [why, cand.rel, old],
        ).fetchall()
        out.rows_withdrawn = sum(r[0] or 0 for r in row)
        dups = con.execute(
            "UPDATE raw.manifest SET status = 'superseded', reason = ? "
            "WHERE sha256 = ? AND status = 'duplicate' RETURNING file_path",
            [
                f"superseded: was a duplicate of {cand.rel}, whose earlier load no longer counts "
                "(read again)",
                old,
            ],
        ).fetchall()
        if state is not None:
            state["withdrawn_duplicates"] = tuple(r[0] for r in dups)

    def refresh_touched_views(self, con) -> None:
        """One view refresh per export that gained files in this run (crash-safe: the
        views only ever list files of committed `loaded` manifest rows)."""
        if not self.touched:
            return
        con.execute("BEGIN")
        try:
            for export in sorted(self.touched):
                refresh_view(con, self.warehouse, export)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.touched.clear()
