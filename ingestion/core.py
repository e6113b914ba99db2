"""`ingest()`: load new export files from the landing directory into the raw layer.

Protocol per file (crash-safe, see docs/ingestion.md):
1. read bytes, SHA-256; skip (path, sha) pairs already in the manifest;
2. parse + validate (nothing written yet);
3. write the typed rows to `raw/<export>/delivery_date=D/.<sha>.parquet.tmp-<run>`,
   fsync, rename to `<sha>.parquet`;
4. ONE DuckDB transaction: manifest row + quarantine rows + view refresh.
At the start of every run, Parquet/temp files under raw/ that no committed `loaded`
manifest row references are deleted (leftovers of a crash between 3 and 4).
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

from . import readers
from .readers import REDACTED, FileRejected, Parsed
from .schema import create_objects, parquet_path, refresh_view
from .validate import lit, validation_sql

LOADED, REJECTED, DUPLICATE, SKIPPED = "loaded", "rejected", "duplicate", "skipped"
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TZ = ZoneInfo(TIMEZONE)
FAULT_ENV = "SUPERNOVA_INGEST_FAULT"  # test hook: "<point>:<n>", see _fault()


@dataclass
class FileOutcome:
    path: str  # relative to the landing root
    sha256: str
    status: str  # loaded | rejected | duplicate | skipped (already seen in an earlier run)
    export: str | None = None
    delivery_date: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    seconds: float = 0.0


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

    def summary(self) -> str:
        c = Counter(f.status for f in self.files)
        lines = [
            (f"ingest {self.run_id}: {'OK' if self.ok else 'FAILED: file(s) rejected'} "
            f"({self.seconds:.1f}s)"),
            (f"  files: {c[LOADED]} loaded, {c[DUPLICATE]} duplicate, {c[REJECTED]} rejected, "
            f"{c[SKIPPED]} already seen"),
            (f"  rows: {self.rows_read} read = {self.rows_loaded} loaded + "
            f"{self.rows_quarantined} quarantined"),
        ]
        for f in self.by_status(REJECTED):
            lines.append(f"  REJECTED {f.path}: {f.reason}")
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
    return _Candidate(path, rel, export, date, suffix, err)


def _valid_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
        return True
    except ValueError:
        return False


def discover(landing: Path) -> list[_Candidate]:
    """Every regular file under landing, in processing order: delivery date, export
    (contract order), file path. Files outside the layout come first."""
    found = []
    for root, dirs, files in os.walk(landing):
        dirs.sort()
        for f in sorted(files):
            p = Path(root) / f
            if p.is_file():
                found.append(_classify(landing, p))
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
            "WHERE status = 'loaded'"
        ).fetchall()
    }
    removed = []
    for root, _dirs, files in os.walk(raw):
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
        if cand.layout_error:
            out.reason = cand.layout_error
        elif sha in state["loaded_sha"]:
            out.status = DUPLICATE
            out.reason = f"same bytes as {state['loaded_sha'][sha]} (already loaded)"
        elif cand.rel in state["loaded_path"] and state["loaded_path"][cand.rel] != sha:
            out.reason = ("file changed in place after it was loaded (previous sha256 "
                          f"{state['loaded_path'][cand.rel][:12]}…); deliver corrections as "
                          "a new file")
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
                quarantine = self._quarantine_table(parsed, export, cand, sha,
                                                    bad_lines, bad_reasons)
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
        _fault("before_commit", n)
        self._commit(con, out, cand, len(data), quarantine)
        _fault("after_commit", n)
        if out.status == LOADED:
            state["loaded_sha"][sha] = cand.rel
            state["loaded_path"][cand.rel] = sha
        out.seconds = time.perf_counter() - t0
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
        lineage = (f"CAST({lit(cand.delivery_date)} AS DATE) AS _delivery_date, "
                   f"{lit(cand.rel)} AS _file_name, {lit(sha)} AS _file_sha256, _line_no")
        con.execute(
            f"COPY (SELECT {cols}, {lineage} FROM v WHERE _reason = '') "
            f"TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
        )
        bad = con.execute("SELECT _line_no, _reason FROM v WHERE _reason <> '' "
                          "ORDER BY _line_no").fetchnumpy()
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
        return pa.table({
            "export": pa.array([cand.export] * len(rows), pa.string()),
            "file_path": pa.array([cand.rel] * len(rows), pa.string()),
            "sha256": pa.array([sha] * len(rows), pa.string()),
            "line_no": pa.array([r[0] for r in rows], pa.int64()),
            "raw_row": pa.array([r[1] for r in rows], pa.string()),
            "reason": pa.array([r[2] for r in rows], pa.string()),
            "ingest_run_id": pa.array([self.run_id] * len(rows), pa.string()),
            "quarantined_at": pa.array([now] * len(rows), pa.timestamp("us")),
        })

    def _commit(self, con, out: FileOutcome, cand: _Candidate, size: int, quarantine):
        name = cand.path.name
        con.execute("BEGIN")
        try:
            con.execute(
                "INSERT INTO raw.manifest VALUES (?, ?, CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, CAST(? AS VARCHAR[]), ?, ?)",
                [out.path, out.export, out.delivery_date, name, out.sha256, size, out.encoding,
                 out.rows_read, out.rows_loaded, out.rows_quarantined, out.status, out.reason,
                 out.extra_columns or None, self.run_id, _now_shanghai()],
            )
            if quarantine is not None and quarantine.num_rows:
                con.register("q_rows", quarantine)
                con.execute("INSERT INTO raw.quarantine SELECT * FROM q_rows")
                con.unregister("q_rows")
            if out.status == LOADED:
                refresh_view(con, self.warehouse, out.export)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def ingest(
    landing: Path | str,
    warehouse: Path | str,
    *,
    progress: Callable[[str], None] | None = None,
) -> IngestResult:
    """Load every new file under `landing` into the raw layer of `warehouse`."""
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
        seen = set(con.execute("SELECT file_path, sha256 FROM raw.manifest").fetchall())
        state = {"loaded_sha": {}, "loaded_path": {}}
        for p, s in con.execute(
            "SELECT file_path, sha256 FROM raw.manifest WHERE status = 'loaded' "
            "ORDER BY loaded_at"
        ).fetchall():
            state["loaded_sha"].setdefault(s, p)
            state["loaded_path"][p] = s
        candidates = discover(landing)
        say(f"ingest {run.run_id}: {len(candidates)} file(s) under {landing}")
        for cand in candidates:
            data = cand.path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            if (cand.rel, sha) in seen:
                result.files.append(FileOutcome(cand.rel, sha, SKIPPED, cand.export,
                                                cand.delivery_date))
                continue
            out = run.process(con, cand, data, sha, state)
            seen.add((cand.rel, sha))
            result.files.append(out)
            msg = f"[{out.status}] {out.path}"
            if out.status == LOADED:
                msg += (f": {out.rows_loaded} rows loaded, {out.rows_quarantined} quarantined"
                        f" ({out.seconds:.2f}s)")
                if out.extra_columns:
                    msg += f"; extra columns ignored: {', '.join(out.extra_columns)}"
            else:
                msg += f": {out.reason}"
            say(msg)
    finally:
        con.close()
        run.close()
    result.seconds = time.perf_counter() - t0
    return result
