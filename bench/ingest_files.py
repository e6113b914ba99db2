"""Ingest cost per file as the landing grows (issue 19, finding 4; docs/benchmarks.md
"Ingest cost per file").

    python -m bench.ingest_files --files 10000 --dir /tmp/ingest-files

Writes N one-row `clicks` CSV files (100 per delivery day, mtimes an hour old), ingests
them in ONE run and prints, per thousand files, the wall time of that thousand (from the
progress messages: one per committed file) and the CPU time of this process in it (less
sensitive to other load on a shared machine), then the time of a second run over the same
landing (nothing new: every file is read and hashed again, none is loaded). Prints one
JSON line `BENCH_RESULT {...}`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import shutil
import time
from pathlib import Path

HEADER = "click_id,link_id,buyer_id,clicked_at\n"


def write_landing(landing: Path, files: int) -> None:
    old = time.time() - 3600
    start = dt.date(2026, 9, 1)
    for i in range(files):
        day = start + dt.timedelta(days=i // 100)
        p = landing / "clicks" / day.isoformat() / f"part-{i:05d}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{HEADER}C{i:06d},L{i % 97},B{i % 89},{day.isoformat()}T10:00:00+08:00\n")
        os.utime(p, (old, old))


def run(files: int, work: Path, per: int = 1000) -> dict:
    from ingestion import ingest

    landing, warehouse = work / "landing", work / "warehouse"
    shutil.rmtree(work, ignore_errors=True)
    write_landing(landing, files)
    stamps: list[float] = []
    cpu: list[float] = []

    def progress(msg: str) -> None:
        if msg.startswith("[loaded]"):
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())

    c0 = time.process_time()
    t0 = time.perf_counter()
    # (quiet_seconds: the files are an hour old anyway; passed only where ingest takes it)
    kw = {"quiet_seconds": 0} if "quiet_seconds" in inspect.signature(ingest).parameters else {}
    first = ingest(landing, warehouse, progress=progress, **kw)
    total = time.perf_counter() - t0
    assert len(first.by_status("loaded")) == files, first.summary()
    marks = [t0] + stamps
    chunks = [
        round(marks[min(i + per, len(marks) - 1)] - marks[i], 2) for i in range(0, files, per)
    ]
    cmarks = [c0] + cpu
    cpu_chunks = [
        round(cmarks[min(i + per, len(cmarks) - 1)] - cmarks[i], 2) for i in range(0, files, per)
    ]
    t1 = time.perf_counter()
    second = ingest(landing, warehouse, progress=lambda _m: None, **kw)
    again = time.perf_counter() - t1
    assert len([f for f in second.files if f.status == "skipped"]) == files
    return {
        "files": files,
        "seconds_total": round(total, 1),
        f"seconds_per_{per}": chunks,
        f"cpu_seconds_per_{per}": cpu_chunks,
        "ms_per_file_first": round(chunks[0] / per * 1000, 1) if chunks else None,
        "ms_per_file_last": round(chunks[-1] / per * 1000, 1) if chunks else None,
        "rerun_nothing_new_seconds": round(again, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.ingest_files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--per", type=int, default=1000, help="files per reported chunk")
    p.add_argument("--dir", type=Path, default=Path("/tmp/supernova-bench-ingest-files"))
    args = p.parse_args(argv)
    result = run(args.files, args.dir, args.per)
    print("BENCH_RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
