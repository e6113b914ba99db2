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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa

from supernova import settings
from supernova.contract import EXPORTS, FILE_SUFFIXES, TIMEZONE, Export

from . import landing as landing_files
from . import readers
from .manifest_export import MANIFEST_DIR, write_manifest_parquet
from .readers import REDACTED, FileRejected, Parsed
from .schema import create_objects, parquet_path, refresh_view
from .validate import lit, validation_sql

LOADED, REJECTED, DUPLICATE, SKIPPED = "loaded", "rejected", "duplicate", "skipped"
# recorded in the manifest: an earlier load withdrawn because its file changed in place;
# an entry of the landing that is not a regular file
SUPERSEDED, NOT_A_FILE = "superseded", "not_a_file"
# only in the run's result (no manifest row; the next run looks again)
WAITING, VANISHED = "waiting", "vanished"
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TZ = ZoneInfo(TIMEZONE)
FAULT_ENV = "SUPERNOVA_INGEST_FAULT"  # test hook: "<point>:<n>", see _fault()


@dataclass
class FileOutcome:
    path: str  # relative to the landing root
    sha256: str
    # loaded | rejected | duplicate | not_a_file | skipped (already seen in an earlier run)
    # | waiting (temporary name, or not quiet yet) | vanished (gone before it was read)
    status: str
    export: str | None = None
    delivery_date: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    seconds: float = 0.0
    # when this path had been loaded with other bytes: that load's sha256 (now superseded)
    supersedes: str | None = None
    rows_withdrawn: int = 0


@dataclass
class IngestResult:
    run_id: str
    landing: Path
    warehouse: Path
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False when any file was rejected in this run."""
        return not any(f.status == REJECTED for f in self.files)

    def by_status(self, status: str) -> list[FileOutcome]:
        return [f for f in self.files if f.status == status]

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def superseding(self) -> list[FileOutcome]:
        """Files whose earlier load (same path, other bytes) this run superseded."""
        return [f for f in self.files if f.supersedes]

    def summary(self) -> str:
        c = Counter(f.status for f in self.files)
        lines = [
            (
                f"ingest {self.run_id}: {'OK' if self.ok else 'FAILED: file(s) rejected'} "
                f"({self.seconds:.1f}s)"
            ),
            (
                f"  files: {c[LOADED]} loaded, {c[DUPLICATE]} duplicate, {c[REJECTED]} rejected, "
                f"{c[SKIPPED]} already seen"
                + (
                    f", {len(self.superseding)} superseded an earlier load"
                    if self.superseding
                    else ""
                )
                + (f", {c[WAITING]} waiting" if c[WAITING] else "")
                + (f", {c[VANISHED]} vanished" if c[VANISHED] else "")
                + (f", {c[NOT_A_FILE]} not a file" if c[NOT_A_FILE] else "")
            ),
            (
                f"  rows: {self.rows_read} read = {self.rows_loaded} loaded + "
                f"{self.rows_quarantined} quarantined"
            ),
        ]
        for f in self.by_status(REJECTED):
            lines.append(f"  REJECTED {f.path}: {f.reason}")
        for f in self.superseding:
            lines.append(
                f"  SUPERSEDED {f.path}: changed in place; its earlier load (sha256 "
                f"{f.supersedes[:12]}…, {f.rows_withdrawn} rows) no longer counts, "
                f"the new bytes are {f.status}"
            )
        for status, label in (
            (WAITING, "WAITING"),
            (VANISHED, "VANISHED"),
            (NOT_A_FILE, "NOT A FILE"),
        ):
            for f in self.by_status(status):
                lines.append(f"  {label} {f.path}: {f.reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        c = Counter(f.status for f in self.files)
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "files": dict(c),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "rejected": [{"path": f.path, "reason": f.reason} for f in self.by_status(REJECTED)],
            "superseded": [
                {
                    "path": f.path,
                    "previous_sha256": f.supersedes,
                    "rows_withdrawn": f.rows_withdrawn,
                    "sha256": f.sha256,
                    "status": f.status,
                }
                for f in self.superseding
            ],
            "waiting": [{"path": f.path, "reason": f.reason} for f in self.by_status(WAITING)],
            "vanished": [{"path": f.path, "reason": f.reason} for f in self.by_status(VANISHED)],
            "not_a_file": [
                {"path": f.path, "reason": f.reason} for f in self.by_status(NOT_A_FILE)
            ],
        }


# ----------------------------------------------------------------------------- helpers


def _now_shanghai() -> dt.datetime:
    return dt.datetime.now(_TZ).replace(tzinfo=None)


def _fault(point: str, n: int) -> None:
    """Test hook: SIGKILL this process at `point` of the n-th processed file."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{point}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)


def _suffix(name: str) -> str | None:
    for s in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if name.endswith(s) and len(name) > len(s):
            return s
    return None


@dataclass
class _Candidate:
    path: Path
    rel: str
    export: str | None
    delivery_date: str | None
    suffix: str | None
    layout_error: str | None
    not_a_file: str | None = None  # why this landing entry is not a regular file
    temporary: str | None = None  # the path component that is a temporary name


def _classify(landing: Path, path: Path) -> _Candidate:
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
    return _Candidate(
        path, rel, export, date, suffix, err, temporary=landing_files.temporary_name(rel)
    )


def _valid_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
        return True
    except ValueError:
        return False


def discover(landing: Path) -> list[_Candidate]:
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

    def key(c: _Candidate):
        return (c.delivery_date or "", order.get(c.export, -1), c.rel)

    return sorted(found, key=key)


def _cleanup_orphans(con: duckdb.DuckDBPyConnection, warehouse: Path) -> list[Path]:
    raw = warehouse / "raw"
    if not raw.exists():
        return []
    keep = {
        parquet_path(warehouse, e, d, s).resolve()
        for e, d, s in con.execute(
            "SELECT export, CAST(delivery_date AS VARCHAR), sha256 FROM raw.manifest "
            "WHERE status IN ('loaded', 'superseded') AND export IS NOT NULL"
        ).fetchall()
    }
    removed = []
    for root, dirs, files in os.walk(raw):
        if Path(root) == raw:
            dirs[:] = [d for d in dirs if d != MANIFEST_DIR]  # the Parquet manifest is not a load
        for f in files:
            p = (Path(root) / f).resolve()
            if p not in keep:
                p.unlink()
                removed.append(p)
    return removed


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- parsing


def parse_file(data: bytes, export: Export, suffix: str) -> Parsed:
    if suffix == ".csv.gz":
        return readers.read_csv(readers.decompress(data), export)
    if suffix == ".csv":
        return readers.read_csv(data, export)
    if suffix == ".jsonl":
        return readers.read_jsonl(data, export)
    if suffix == ".parquet":
        return readers.read_parquet(data, export)
    raise FileRejected(f"unknown file type {suffix}")  # pragma: no cover


def _raw_rows(parsed: Parsed, export: Export, bad_line_nos: np.ndarray) -> list[str]:
    """JSON of the raw (untrimmed) values of the given rows, personal data redacted."""
    if len(bad_line_nos) == 0:
        return []
    lines = parsed.table.column("_line_no").to_numpy()
    idx = np.searchsorted(lines, bad_line_nos)
    sub = parsed.table.take(pa.array(idx))
    cols = {c: sub.column(c).to_pylist() for c in sub.column_names if c != "_line_no"}
    out = []
    for i in range(sub.num_rows):
        row = {}
        for name in parsed.header:
            if export.column(name).pii:
                row[name] = REDACTED
            elif name in cols:
                row[name] = cols[name][i]
        out.append(json.dumps(row, ensure_ascii=False))
    return out


# ----------------------------------------------------------------------------- ingest


class _Run:
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
    def process(self, con, cand: _Candidate, data: bytes, sha: str, state) -> FileOutcome:
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
                bad_lines, bad_reasons = self._validate_and_write(parsed, export, cand, sha, tmp)
                quarantine = self._quarantine_table(
                    parsed, export, cand, sha, bad_lines, bad_reasons
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
            _fsync_dir(final.parent)
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

    def record_not_a_file(self, con, cand: _Candidate, reason: str) -> FileOutcome:
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

    def _validate_and_write(self, parsed: Parsed, export: Export, cand, sha, tmp: Path):
        con = self.compute
        con.register("src", parsed.table)
        try:
            sql = validation_sql(export, set(parsed.table.column_names))
            con.execute(f"CREATE OR REPLACE TEMP TABLE v AS {sql}")
        finally:
            con.unregister("src")
        cols = ", ".join(f'"{c.name}"' for c in export.stored_columns)
        lineage = (
            f"CAST({lit(cand.delivery_date)} AS DATE) AS _delivery_date, "
            f"{lit(cand.rel)} AS _file_name, {lit(sha)} AS _file_sha256, _line_no"
        )
        con.execute(
            f"COPY (SELECT {cols}, {lineage} FROM v WHERE _reason = '') "
            f"TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
        )
        bad = con.execute(
            "SELECT _line_no, _reason FROM v WHERE _reason <> '' ORDER BY _line_no"
        ).fetchnumpy()
        con.execute("DROP TABLE v")
        return bad["_line_no"], list(bad["_reason"])

    def _quarantine_table(self, parsed, export, cand, sha, bad_lines, bad_reasons) -> pa.Table:
        rows: list[tuple[int, str, str]] = [
            (b.line_no, json.dumps(b.raw_row, ensure_ascii=False), b.reason)
            for b in parsed.bad_rows
        ]
        raws = _raw_rows(parsed, export, np.asarray(bad_lines, dtype=np.int64))
        rows += [(int(ln), raw, str(r)) for ln, raw, r in zip(bad_lines, raws, bad_reasons)]
        rows.sort(key=lambda r: r[0])
        now = _now_shanghai()
        return pa.table(
            {
                "export": pa.array([cand.export] * len(rows), pa.string()),
                "file_path": pa.array([cand.rel] * len(rows), pa.string()),
                "sha256": pa.array([sha] * len(rows), pa.string()),
                "line_no": pa.array([r[0] for r in rows], pa.int64()),
                "raw_row": pa.array([r[1] for r in rows], pa.string()),
                "reason": pa.array([r[2] for r in rows], pa.string()),
                "ingest_run_id": pa.array([self.run_id] * len(rows), pa.string()),
                "quarantined_at": pa.array([now] * len(rows), pa.timestamp("us")),
            }
        )

    def _commit(
        self, con, out: FileOutcome, cand: _Candidate, size: int | None, quarantine, state=None
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
                    _now_shanghai(),
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

    def _supersede(self, con, out: FileOutcome, cand: _Candidate, state) -> None:
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


def _take(
    run: _Run, con, cand: _Candidate, quiet: float, state: dict, result: IngestResult
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
    run = _Run(landing, warehouse, progress)
    result = IngestResult(run.run_id, landing, warehouse)
    say = run.progress
    con = duckdb.connect(str(settings.duckdb_path(warehouse)))
    try:
        create_objects(con, warehouse)
        removed = _cleanup_orphans(con, warehouse)
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
