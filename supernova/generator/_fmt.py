"""Vectorised text formatting and deterministic file writing.

Every export is built as a table of *string* columns (null = empty field) and written
either as CSV (our own writer: header row, `,` separator, `"` quoting only where a value
needs it, LF line ends, UTF-8 without BOM, optionally re-encoded as GB18030) or as Parquet
(the same strings). No floats ever touch money: amounts arrive as integer fen and are
rendered through an exact decimal128 array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAY = 86_400
EPOCH = np.datetime64("1970-01-01", "D")


def day_number(d) -> int:
    """Days since 1970-01-01 for a datetime.date."""
    return int((np.datetime64(d, "D") - EPOCH).astype(np.int64))


def date_str(day: int) -> str:
    return str(EPOCH + np.timedelta64(int(day), "D"))


class Fmt:
    """Formats integer arrays (local Asia/Shanghai seconds, fen, ids) as Arrow strings."""

    def __init__(self, first_day: int, last_day: int):
        self.first_day = first_day
        days = np.arange(first_day, last_day + 1).astype("datetime64[D]")
        self.dates = pa.array(np.datetime_as_string(days, unit="D"))
        sod = np.arange(DAY)
        h, m, s = sod // 3600, (sod // 60) % 60, sod % 60
        self.times = pa.array(
            [
                f"T{a:02d}:{b:02d}:{c:02d}+08:00"
                for a, b, c in zip(h.tolist(), m.tolist(), s.tolist())
            ]
        )

    def ts(self, secs: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
        """ISO 8601 with +08:00 for local seconds since the epoch."""
        secs = np.asarray(secs, dtype=np.int64)
        if null is not None:
            secs = np.where(null, self.first_day * DAY, secs)
        d = pa.array(secs // DAY - self.first_day)
        t = pa.array(secs % DAY)
        out = pc.binary_join_element_wise(pc.take(self.dates, d), pc.take(self.times, t), "")
        return _nullify(out, null)

    def date(self, days: np.ndarray) -> pa.Array:
        return pc.take(self.dates, pa.array(np.asarray(days, dtype=np.int64) - self.first_day))


def _nullify(arr: pa.Array, null: np.ndarray | None) -> pa.Array:
    if null is None or not np.any(null):
        return arr
    return pc.if_else(pa.array(np.asarray(null, dtype=bool)), pa.scalar(None, pa.string()), arr)


def ids(prefix: str, width: int, nums: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Fixed-width ids (prefix + zero-padded number) so string order = numeric order."""
    nums = np.asarray(nums, dtype=np.int64)
    if len(nums) and (nums.min() < 0 and null is None or nums.max() >= 10**width):
        raise ValueError(f"id out of range for {prefix}{'#' * width}")
    safe = np.where(nums < 0, 0, nums) if null is not None else nums
    s = pc.cast(pa.array(safe + 10**width), pa.string())
    return _nullify(pc.utf8_replace_slice(s, 0, 1, prefix), null)


def decimal(units: np.ndarray, scale: int, null: np.ndarray | None = None) -> pa.Array:
    """Exact decimal strings from integers in 10**-scale units ("129.90" for 12990, 2)."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    n = len(units)
    words = np.empty(2 * n, dtype=np.int64)
    words[0::2] = units
    words[1::2] = np.where(units < 0, -1, 0)
    arr = pa.Array.from_buffers(pa.decimal128(38, scale), n, [None, pa.py_buffer(words)])
    return _nullify(pc.cast(arr, pa.string()), null)


def money(fen: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return decimal(fen, 2, null)


def ints(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return _nullify(pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string()), null)


def enum(codes: np.ndarray, labels, null: np.ndarray | None = None) -> pa.Array:
    return _nullify(
        pc.take(pa.array(list(labels)), pa.array(np.asarray(codes, dtype=np.int64))), null
    )


def const(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(n, dtype=np.int64)))


_NEEDS_QUOTES = r'[",\r\n]|^\s|\s$'


def _quote(arr: pa.Array) -> pa.Array:
    if len(arr) == 0:
        return arr
    need = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_QUOTES), False)
    if not pc.any(need).as_py():
        return arr
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(need, quoted, arr)


def csv_lines(columns: list[str], data: dict[str, pa.Array]) -> pa.Array:
    """One string per record, each ending in LF (a record may span lines when quoted)."""
    n = len(data[columns[0]]) if columns[0] in data else 0
    cols = [
        _quote(pa.array(data[c], pa.string()) if not isinstance(data[c], pa.Array) else data[c])
        for c in columns
    ]
    if n == 0:
        return pa.array([], pa.string())
    if len(cols) == 1:
        line = pc.fill_null(cols[0], "")
    else:
        line = pc.binary_join_element_wise(*cols, ",", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(line, "", "\n")


def lines_bytes(header: str, lines: pa.Array) -> bytearray:
    lines = lines.cast(pa.large_string()) if len(lines) else lines
    head = header.encode()
    if not len(lines):
        return head
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8
    )
    body = memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]
    out = bytearray(len(head) + len(body))
    out[: len(head)] = head
    out[len(head) :] = body
    return out


class Writer:
    """Writes `<out>/<export>/<YYYY-MM-DD>/part-NNNN.<ext>` files and counts what it wrote."""

    def __init__(self, out: Path, fmt: str, part_rows: int):
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
        self.out = Path(out)
        self.fmt = fmt
        self.part_rows = part_rows
        self.rows: dict[str, int] = {}
        self.files = 0
        self.bytes = 0

    def path(self, export: str, day: str, name: str) -> Path:
        p = self.out / export / day / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(
        self,
        export: str,
        day: str,
        columns: list[str],
        chunks,
        raw_lines: list[tuple[int, str]] = (),
        encoding: str = "utf-8",
    ) -> list[Path]:
        """Write one delivery from `chunks` (column dicts, or callables returning one, so big
        master data is formatted a part at a time) as part files of at most `part_rows` rows
        (nothing when there are no rows: upstream delivers no file that day). `raw_lines` are (row position, text)
        records inserted verbatim before that row (malformed rows; CSV only)."""
        if isinstance(chunks, dict) or callable(chunks):
            chunks = [chunks]
        written: list[Path] = []
        raw = sorted(raw_lines)
        self.rows[export] = self.rows.get(export, 0) + len(raw)
        pending: list[dict] = []
        pending_n = 0
        done = 0  # rows already written

        def flush(n: int) -> None:
            nonlocal pending, pending_n, done
            merged = {
                c: pa.concat_arrays([pa.array(d[c], pa.string()) for d in pending])
                if pending
                else pa.array([], pa.string())
                for c in columns
            }
            part = {c: merged[c].slice(0, n) for c in columns}
            rest = {c: merged[c].slice(n) for c in columns}
            pending, pending_n = ([rest], pending_n - n) if pending_n > n else ([], 0)
            last = not chunks_left and pending_n == 0
            mine = [
                (pos - done, txt)
                for pos, txt in raw
                if done <= pos < done + n or (last and pos >= done + n)
            ]
            self._write_part(export, day, columns, part, mine, encoding, written)
            done += n

        chunks_left = len(chunks)
        for chunk in chunks:
            chunks_left -= 1
            data = chunk() if callable(chunk) else chunk
            n = len(data[columns[0]])
            self.rows[export] += n
            if n:
                pending.append(data)
                pending_n += n
            del data
            while pending_n >= self.part_rows and (pending_n > self.part_rows or chunks_left):
                flush(self.part_rows)
        if pending_n:
            flush(pending_n)
        return written

    def _write_part(self, export, day, columns, part, raw, encoding, written) -> None:
        name = f"part-{len(written):04d}"
        if self.fmt == "parquet":
            p = self.path(export, day, name + ".parquet")
            pq.write_table(pa.table(part), p, compression="zstd")
        else:
            p = self.path(export, day, name + ".csv")
            lines = csv_lines(columns, part)
            if raw:
                pieces, prev = [], 0
                for pos, txt in raw:
                    pos = min(max(pos, 0), len(lines))
                    pieces += [lines.slice(prev, pos - prev), pa.array([txt + "\n"])]
                    prev = pos
                pieces.append(lines.slice(prev))
                lines = pa.concat_arrays(pieces)
            blob = lines_bytes(",".join(columns) + "\n", lines)
            del lines
            if encoding != "utf-8":
                blob = blob.decode("utf-8").encode(encoding)
            p.write_bytes(blob)
            del blob
        self.files += 1
        self.bytes += p.stat().st_size
        written.append(p)

    def copy_file(self, src: Path, export: str, day: str, name: str) -> Path:
        """Deliver an already-written file again, byte for byte (a duplicate delivery)."""
        p = self.path(export, day, name)
        p.write_bytes(src.read_bytes())
        self.files += 1
        self.bytes += p.stat().st_size
        return p
