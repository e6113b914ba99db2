"""Reading a candidate table of settlement_build in bounded chunks, for the gate
(supernova/gate.py): the rows split by a hash of a column, spilled once to temporary
Parquet, each chunk fetched in a background thread while the previous one is validated,
so the gate's memory does not grow with the month."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path

# Tables validated in chunks so that the gate's memory does not grow with the month: the
# rows are split by a hash of a column that every uniqueness expectation of the suite
# includes, so a duplicate always falls into one chunk and per-chunk results add up to
# the whole table's. Chunk size: SUPERNOVA_GATE_CHUNK_ROWS (default 500,000 rows: the
# gate's frames sit beside the invariants' 6 GB of DuckDB, and at target size 1,000,000-row
# chunks took the gate's process to 8.05 GB, 500,000-row ones to 7.37 GB, no slower:
# docs/benchmarks.md, 2026-12-05 evening).
CHUNK_BY = {
    "payout_lines": "order_id",  # unique (settlement_month, order_id, line_no, beneficiary_id, level, kind)
    "payouts": "promoter_id",  # unique promoter_id
}


def chunk_rows() -> int:
    value = os.environ.get("SUPERNOVA_GATE_CHUNK_ROWS", "500000")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"SUPERNOVA_GATE_CHUNK_ROWS must be a positive number of rows, not {value!r}"
        )
    return n


def table_chunks(con, table: str, chunk_by: str | None, spill_under: Path | None = None):
    """The rows of settlement_build.<table> as DataFrames of at most about chunk_rows()
    rows each (one frame when the table is small or has no chunk column). The next chunk
    is fetched in a background thread while the caller validates this one (DuckDB works
    while GX runs in Python); at most two chunks are in memory.

    A table of several chunks is read once: one pass writes it to temporary Parquet
    partitioned by chunk (under `spill_under`, default the system's temporary folder;
    removed afterwards), and each chunk is read back from its own partition. Filtering
    the table by chunk instead scanned the whole table once per chunk: 37 scans of 36.5M
    ledger rows at target size (docs/benchmarks.md)."""
    cur = con.cursor()  # a connection of its own: it is used from the fetching thread
    spill = None
    try:
        total = cur.execute(f"select count(*) from settlement_build.{table}").fetchone()[0]
        parts = max(1, -(-total // chunk_rows())) if chunk_by else 1
        if parts == 1:
            queries = [f"select * from settlement_build.{table}"]
        else:
            spill = Path(tempfile.mkdtemp(prefix=f"gate-{table}-", dir=spill_under))
            cur.execute(
                f"copy (select *, hash({chunk_by}) % {parts} as gate_chunk from settlement_build.{table}) "
                f"to '{spill / 'chunks'}' (format parquet, partition_by (gate_chunk))"
            )
            queries = [
                _chunk_query(table, spill / "chunks" / f"gate_chunk={i}") for i in range(parts)
            ]
        yield from _prefetched(lambda q: cur.execute(q).df(), queries)
    finally:
        cur.close()
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)


def _chunk_query(table: str, folder: Path) -> str:
    """The rows of one chunk, read back from its partition (the partition column is not in
    the files); a chunk no row hashed to has no folder: an empty frame of the table's
    columns."""
    if not folder.is_dir():
        return f"select * from settlement_build.{table} limit 0"
    return f"select * from read_parquet('{folder}/*.parquet', hive_partitioning = false)"


def _prefetched(fetch, items, in_memory: int = 2):
    """fetch(item) for each item, in order, computed one ahead in a background thread; at
    most `in_memory` results exist at a time (the one handed out and the next)."""
    slots = threading.Semaphore(in_memory)
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                slots.acquire()
                if stop.is_set():
                    return
                ready.put(("value", fetch(item)))
            ready.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(("error", exc))

    worker = threading.Thread(target=produce, name="gate-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            del value
            slots.release()
    finally:
        stop.set()
        slots.release()  # a producer waiting for a slot sees `stop` and ends
        worker.join()


def when_ready(future):
    """One frame, computed elsewhere (a Future), as a one-chunk iterable."""
    yield future.result()


def spill_folder(warehouse: Path) -> Path:
    """Where the gate's temporary chunk files go: beside the warehouse, on its disk (a
    month's ledger is GBs at target size; the system's /tmp may be small)."""
    folder = Path(warehouse) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
