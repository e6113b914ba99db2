"""The ingestion manifest as Parquet next to the raw files, for engines that do not open
the DuckDB file (Spark, docs/spark.md): `<raw>/_manifest/manifest.parquet`, one row per
landing file, exactly DuckDB's `raw.manifest`.

Ingestion writes it at the end of every run, after the run's last commit, so it lists the
committed files (a run killed before it leaves the previous manifest: Spark then reads
fewer files, as if the last ones had not arrived yet; the next run writes it again). It is
written to a hidden temporary file in the same folder and swapped in with one rename: a
reader sees the old manifest or the new one, never a half-written file. `_manifest`
starts with an underscore: Spark's and DuckDB's readers of `<raw>/<export>` never list it,
and ingestion's clean-up of uncommitted Parquet leaves it alone.
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_DIR = "_manifest"
MANIFEST_FILE = "manifest.parquet"


def manifest_parquet_path(raw_dir: Path) -> Path:
    """<raw>/_manifest/manifest.parquet"""
    return Path(raw_dir) / MANIFEST_DIR / MANIFEST_FILE


def write_manifest_parquet(con, raw_dir: Path) -> Path:
    """Write raw.manifest (committed rows, as `con` sees them) to
    <raw>/_manifest/manifest.parquet, atomically (temporary file + rename)."""
    out = manifest_parquet_path(raw_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{MANIFEST_FILE}-{os.getpid()}")
    target = str(tmp).replace("'", "''")
    con.execute(
        f"copy (select * from raw.manifest order by file_path, sha256) to '{target}' "
        "(format parquet, compression zstd)"
    )
    os.replace(tmp, out)
    return out
