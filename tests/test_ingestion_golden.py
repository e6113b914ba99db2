"""Golden counts on the generator's tiny landing dir: every file is accounted for, and
the rows loaded + quarantined equal the records in the files, counted independently
with Python's csv module."""

from __future__ import annotations

import csv
import gzip
import io

import pytest
from ingestion_cases.helpers import query

from ingestion import ingest

pytest.importorskip("supernova.generator")


def _records(path) -> int:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(f.strip() for f in r)]
    return len(rows) - 1


def test_tiny_landing_golden_counts(tiny_landing, tmp_path):
    wh = tmp_path / "wh"
    result = ingest(tiny_landing, wh)
    files = [p for p in tiny_landing.rglob("*") if p.is_file()]
    assert len(result.files) == len(files) > 0
    assert result.ok, result.summary()
    manifest = query(
        wh, "SELECT file_path, status, rows_read, rows_loaded, rows_quarantined FROM raw.manifest"
    )
    assert len(manifest) == len(files)
    by_path = {m[0]: m for m in manifest}
    for p in files:
        rel = p.relative_to(tiny_landing).as_posix()
        _, status, read, loaded, quarantined = by_path[rel]
        assert read == loaded + quarantined
        if status == "loaded" and ".csv" in p.name:
            assert read == _records(p), rel
    total_loaded = sum(m[3] for m in manifest)
    in_views = sum(
        query(wh, f"SELECT count(*) FROM raw.{e}")[0][0]
        for e in {m[0].split("/")[0] for m in manifest}
    )
    assert in_views == total_loaded
    # a second run changes nothing
    again = ingest(tiny_landing, wh)
    assert {f.status for f in again.files} == {"skipped"}
