"""The month's ledger sorted once, for the gate and for publish.

Publish writes the month's payout_lines partition as Parquet sorted by its key
(supernova/publish.py); the gate used to read the same rows again, spilled to temporary
Parquet in hash chunks (supernova/gate_chunks.py), and publish then read them back from
the published table and sorted them a second time. Now the gate writes the partition
publish would write (the same rows, columns, order and writer: the same bytes) under
`<warehouse>/tmp/gated/`, outside parquet/ so no reader sees it, and Great Expectations
reads its chunks from that file. Sorted by the ledger key, the rows of one
key are adjacent, so a chunk cut only where the key changes keeps every duplicate inside
one chunk: per-chunk results add up to the whole table's, as with hash chunks.

The partition holds the rows whose settlement_month is the month (the file has no month
column, as a published partition has none; the frames get it back as the month, which
the filter proved it is); the other rows, none in a sound build, are read from the table
and validated after them, so Great Expectations still sees every row as it is.

Publish swaps the file in (`take`) only when it was written for the run being published
and holds exactly the published month's rows and columns (compared by row count and the
sum of a 64-bit hash of every row: a value changed since the gate is caught, not only a
row added or lost); otherwise it writes the partition itself, as before. A failed gate removes the file; whatever is left (a preview)
is removed by the next Parquet sync.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from supernova.gate_chunks import _prefetched, chunk_rows, spill_folder, table_chunks
from supernova.tables import PUBLISHED_TABLES

TABLE = "payout_lines"
MONTH_COLUMN, SORT_KEY = PUBLISHED_TABLES[TABLE]
# every column of the suite's compound-unique key (settlement_month, order_id, line_no,
# beneficiary_id, level, kind) is the month or in the sort key: rows of one key are adjacent
KEY_COLUMNS = [c.strip() for c in SORT_KEY.split(",")]
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ARROW_BATCH_ROWS = 65536  # rows DuckDB hands over at a time; a chunk is cut from several


def gated_root(warehouse: Path) -> Path:
    """Beside the gate's other temporary files, outside parquet/ (readers and the checks
    of what a killed run leaves there see only published partitions)."""
    return Path(warehouse) / "tmp" / "gated"


def gated_folder(warehouse: Path, month: str, run_id: str) -> Path:
    return gated_root(warehouse) / TABLE / f"{month}-{run_id}"


def discard(warehouse: Path, month: str) -> None:
    """Remove the month's gated partitions (a failed gate; a gate run again)."""
    folder = gated_root(warehouse) / TABLE
    for old in [*folder.glob(f"{month}-*"), *folder.glob(".tmp-*")] if folder.is_dir() else []:
        shutil.rmtree(old, ignore_errors=True)


def discard_all(warehouse: Path) -> None:
    shutil.rmtree(gated_root(warehouse), ignore_errors=True)


def _columns(con, schema: str) -> list[str] | None:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ? order by ordinal_position",
        [schema, TABLE],
    ).fetchall()
    return [r[0] for r in rows] or None


def _read(file: Path) -> str:
    path = str(file).replace("'", "''")
    return f"read_parquet('{path}', hive_partitioning = false)"


def _partition_query(source: str, columns: list[str], month: str) -> str:
    """What publish writes for the month: the same text as supernova.publish._write_partition
    (columns of the published table, month column excluded, sorted by key)."""
    cols = ", ".join(c for c in columns if c != MONTH_COLUMN)
    return f"select {cols} from {source} where {MONTH_COLUMN} = '{month}' order by {SORT_KEY}"


def stage(con, warehouse: Path, month: str) -> Path | None:
    """Write the month's partition of settlement_build.payout_lines, as publish would, under
    _gated/; None when the rows are not of one run (publish refuses them anyway)."""
    run_ids = con.execute(f"select distinct run_id from settlement_build.{TABLE}").fetchall()
    if len(run_ids) != 1 or not _SAFE_RUN_ID.match(str(run_ids[0][0] or "")):
        return None
    discard(warehouse, month)
    target = gated_folder(warehouse, month, run_ids[0][0])
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # the published table's column order when it exists (insert is by name), else the build's
    columns = _columns(con, "settlement") or _columns(con, "settlement_build")
    out = str(tmp / "part-0.parquet").replace("'", "''")
    con.execute(
        f"copy ({_partition_query(f'settlement_build.{TABLE}', columns, month)}) "
        f"to '{out}' (format parquet, compression zstd)"
    )
    os.rename(tmp, target)
    return target


def take(con, warehouse: Path, table: str, month: str, run_id: str) -> Path | None:
    """The gated partition of `table` for this run, if it is exactly what publish would
    write from settlement.<table> now (same column names and types, same rows: their
    count and the sum of DuckDB's 64-bit hash of every row, so a value changed after the
    gate is seen too); else None (publish writes the partition itself)."""
    if table != TABLE or not _SAFE_RUN_ID.match(run_id):
        return None
    folder = gated_folder(warehouse, month, run_id)
    file = folder / "part-0.parquet"
    target = Path(warehouse) / "parquet" / "settlement" / table
    target.mkdir(parents=True, exist_ok=True)
    if not file.is_file() or folder.stat().st_dev != target.stat().st_dev:
        return None  # (a partition is swapped in by rename: same disk only)
    published = f"select * exclude ({MONTH_COLUMN}) from settlement.{TABLE}"
    staged = f"select * from {_read(file)}"
    same_columns = (
        con.execute(f"describe {published}").fetchall()
        == con.execute(f"describe {staged}").fetchall()
    )
    if same_columns:
        # the same columns in the same order on both sides: the same row hashes the same
        columns = ", ".join(name for name, *_ in con.execute(f"describe {staged}").fetchall())
        rows = f"count(*), sum(hash({columns}))"
        month_rows = con.execute(
            f"select {rows} from settlement.{TABLE} where {MONTH_COLUMN} = ?", [month]
        ).fetchone()
        if month_rows == con.execute(f"select {rows} from ({staged})").fetchone():
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    return None


def ledger_chunks(con, warehouse: Path, month: str, phases: dict | None = None):
    """settlement_build.payout_lines as DataFrames of about chunk_rows() rows, every row
    once, the rows of one ledger key in one frame: from the gated partition (written
    first, in the fetching thread; its seconds in phases["ledger_sorted_seconds"]) and then
    the rows of other months; the hash chunks of supernova/gate_chunks.py when the rows
    are not of one run."""
    cur = con.cursor()  # a connection of its own: it is used from the fetching thread

    def frames():
        started = time.perf_counter()
        folder = stage(cur, warehouse, month)
        if phases is not None:
            phases["ledger_sorted_seconds"] = round(time.perf_counter() - started, 1)
        if folder is None:
            yield from table_chunks(cur, TABLE, "order_id", spill_under=spill_folder(warehouse))
            return
        columns = _columns(cur, "settlement_build")
        select = ", ".join(
            f"cast('{month}' as varchar) as {c}" if c == MONTH_COLUMN else c for c in columns
        )
        yield from _key_chunks(cur, f"select {select} from {_read(folder / 'part-0.parquet')}")
        yield from _key_chunks(
            cur,
            f"select * from settlement_build.{TABLE} where {MONTH_COLUMN} is distinct from "
            f"'{month}' order by {MONTH_COLUMN}, {SORT_KEY}",
            empty_too=False,
        )

    try:
        yield from _prefetched(lambda frame: frame, frames())
    finally:
        cur.close()


def _key_chunks(cur, query: str, empty_too: bool = True):
    """The rows of a query sorted by (month,) key, in frames of about chunk_rows() rows
    cut where the key changes (a frame grows past chunk_rows() only for one key's rows);
    one empty frame for no rows when `empty_too`.

    The rows wait as Arrow batches (compact; slices share their buffers) and only the frame
    handed out is converted, by DuckDB, so its types are those of DuckDB's own .df():
    buffering DataFrames instead held up to four chunks' worth of Python string objects
    (the concatenated buffer, its copy, the frame cut off and the rest) beside the
    invariants, the gate's memory peak at target size (docs/benchmarks.md)."""
    import duckdb
    import pyarrow as pa

    rows = chunk_rows()
    reader = cur.sql(query).to_arrow_reader(_ARROW_BATCH_ROWS)
    convert = duckdb.connect()  # in memory: only converts the frames handed out
    # DuckDB gives a VARCHAR column of NULLs only (a chunk of tier bonuses' order_id) the
    # object dtype; a column of the whole table has its string dtype: keep that one
    text = convert.sql("select 'x' as s").df()["s"].dtype
    strings = [
        f.name
        for f in reader.schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]

    def frame(table):
        out = convert.from_arrow(table).df()
        for name in strings:
            if out[name].dtype == object:
                out[name] = out[name].astype(text)
        return out

    try:
        pending = reader.schema.empty_table()  # read, not handed out yet
        sent = False
        for batch in reader:
            pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
            while pending.num_rows > rows:
                cut = _cut(pending, rows)
                if cut is None:  # one key past the chunk size so far: read on to its end
                    break
                yield frame(pending.slice(0, cut))
                sent, pending = True, pending.slice(cut)
        if pending.num_rows or (empty_too and not sent):  # the rest, within one frame
            yield frame(pending)
    finally:
        convert.close()


def _cut(rows_read, rows: int) -> int | None:
    """Where to end a chunk of about `rows` rows of an Arrow table: the last key change at
    or before `rows`, else the first after it; None when the table is one key."""
    import pyarrow.compute as pc

    n = rows_read.num_rows
    same = np.ones(max(n - 1, 0), dtype=bool)  # row i + 1 has the key of row i
    for column in [MONTH_COLUMN, *KEY_COLUMNS]:
        values = rows_read.column(column)
        before, after = values.slice(0, n - 1), values.slice(1)
        equal = pc.fill_null(pc.equal(after, before), False)
        both_null = pc.and_(pc.is_null(after), pc.is_null(before))
        same &= pc.or_(equal, both_null).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(~same) + 1  # rows whose key differs from the row before
    if len(starts) == 0:
        return None
    before = starts[starts <= rows]
    return int(before[-1]) if len(before) else int(starts[0])
