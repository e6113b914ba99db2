"""What one ingest run reports: the status of every landing entry (`FileOutcome`) and the
run's totals, summary and JSON form (`IngestResult`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

LOADED, REJECTED, DUPLICATE, SKIPPED = "loaded", "rejected", "duplicate", "skipped"
# recorded in the manifest: an earlier load withdrawn because its file changed in place;
# an entry of the landing that is not a regular file
SUPERSEDED, NOT_A_FILE = "superseded", "not_a_file"
# only in the run's result (no manifest row; the next run looks again)
WAITING, VANISHED = "waiting", "vanished"
LISTED_AT_MOST = 10  # waiting / vanished / not-a-file entries named one by one in the summary


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
    run_id: str  # "<first> + <second>" for two reads combined (`after_wait`)
    landing: Path
    warehouse: Path
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def after_wait(cls, first: IngestResult, second: IngestResult) -> IngestResult:
        """One result for two reads of the landing with a wait between them (the close's
        ingest step waits for files only younger than the quiet period, supernova/settle.py
        `ingest_step`). The second read reports what the first one decided as already seen;
        so each file counts once, with the outcome it got: the first read's outcomes, except
        those of files it left waiting or found vanished, which the second read's outcome for
        the same path replaces; then the second read's other outcomes (the files that were
        waiting, new arrivals, bytes changed in place meanwhile). So `ok` is both reads' ok:
        a file rejected before the wait still counts."""
        decided = {f.path for f in first.files if f.status not in (WAITING, VANISHED)}
        later = [f for f in second.files if not (f.status == SKIPPED and f.path in decided)]
        seen_again = {f.path for f in later}
        kept = [f for f in first.files if f.path in decided or f.path not in seen_again]
        return cls(
            f"{first.run_id} + {second.run_id}",
            second.landing,
            second.warehouse,
            kept + later,
            first.seconds + second.seconds,
        )

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
            listed = self.by_status(status)
            for f in listed[:LISTED_AT_MOST]:
                lines.append(f"  {label} {f.path}: {f.reason}")
            if len(listed) > LISTED_AT_MOST:
                # a whole landing still being copied in would otherwise print a line per file
                lines.append(f"  ... and {len(listed) - LISTED_AT_MOST} more {label.lower()}")
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
