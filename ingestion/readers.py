"""Turn the bytes of one export file into an Arrow table of *strings*.

Every reader returns a `Parsed`: one string column per contract column present in the
file (personal-data columns are never read into it), `_line_no` (where the record
starts; CSV header = line 1, JSONL physical line, Parquet row index + 1), plus the rows
that could not even be split into fields (wrong number of fields, invalid JSON), which
go straight to quarantine. Typing and validation happen afterwards, in SQL
(`ingestion.validate`), identically for every format.

File-level problems raise `FileRejected` with a readable reason. Reasons never quote
row contents (they could hold personal data).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from supernova.contract import EXPORTS, Export

REDACTED = "<redacted>"
_BOM = b"\xef\xbb\xbf"
# A value that looks like a phone number (7+ digits, optional +, spaces, dashes). Used
# only to redact rows whose fields cannot be attributed to columns (ragged CSV rows,
# unparseable JSON lines) in exports that carry personal data.
_PHONE_LIKE = re.compile(r"\+?\d[\d \-]{5,}\d")


class FileRejected(Exception):
    """The whole file is rejected; the message is the reason recorded in the manifest."""


@dataclass
class BadRow:
    line_no: int
    raw_row: dict
    reason: str


@dataclass
class Parsed:
    table: pa.Table  # string columns (present, non-PII contract columns) + _line_no int64
    header: list[str]  # contract columns present in the file, in file order (incl. PII)
    extra_columns: list[str]
    encoding: str | None
    bad_rows: list[BadRow] = field(default_factory=list)
    path_taken: str = "fast"  # fast | exact | jsonl | parquet

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.bad_rows)


# ----------------------------------------------------------------------------- bytes


def decompress(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise FileRejected(f"corrupt or truncated gzip data ({type(e).__name__}: {e})") from None


def decode(data: bytes) -> tuple[bytes, str]:
    """Return UTF-8 bytes (BOM removed) and the encoding the file was written in."""
    if b"\x00" in data:
        raise FileRejected("binary content (NUL bytes): not a CSV/JSONL text file")
    encoding = "utf-8"
    if data.startswith(_BOM):
        data, encoding = data[len(_BOM) :], "utf-8-sig"
    try:
        data.decode("utf-8")
        return data, encoding
    except UnicodeDecodeError as e_utf8:
        if encoding == "utf-8-sig":
            raise FileRejected(
                f"undecodable bytes: UTF-8 BOM present but invalid UTF-8 at byte {e_utf8.start}"
            ) from None
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as e_gb:
            raise FileRejected(
                "undecodable bytes: neither UTF-8 (invalid byte at offset "
                f"{e_utf8.start}) nor GB18030 (invalid byte at offset {e_gb.start})"
            ) from None
        return text.encode("utf-8"), "gb18030"


# ----------------------------------------------------------------------------- header


def check_misrouted(names, export: Export) -> None:
    """Reject a file whose columns match another export better than its own folder's
    (exports.md "Bad input"): another export whose required columns are all present and
    which shares strictly more columns with the header."""
    have = set(names)
    own = len(have & set(export.column_names))
    best: tuple[int, Export] | None = None
    for other in EXPORTS.values():
        if other.name == export.name or not all(c in have for c in other.required):
            continue
        score = len(have & set(other.column_names))
        if score > own and (best is None or score > best[0]):
            best = (score, other)
    if best is not None:
        score, other = best
        raise FileRejected(
            f"misrouted: its columns look like export '{other.name}' ({score} of its "
            f"{len(other.column_names)} columns) rather than '{export.name}' ({own} of "
            f"{len(export.column_names)}); deliver it under {other.name}/"
        )


def check_header(names: list[str], export: Export) -> tuple[list[str], list[str]]:
    """Validate a header. Returns (contract columns present in file order, extras)."""
    names = [n.strip().lstrip("\ufeff").strip() for n in names]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise FileRejected(f"duplicate column {n!r} in header")
        seen.add(n)
    check_misrouted(seen, export)
    known = set(export.column_names)
    missing = [c for c in export.required if c not in seen]
    if missing:
        raise FileRejected(
            f"required column(s) missing: {', '.join(missing)} (header has: {', '.join(names)})"
        )
    present = [n for n in names if n in known]
    extra = [n for n in names if n not in known]
    return present, extra


def _redact_unattributed(values: list[str], export: Export, pii_positions: set[int]) -> list[str]:
    """Fields of a row that could not be mapped to columns reliably."""
    has_pii = any(c.pii for c in export.columns)
    out = []
    for i, v in enumerate(values):
        if i in pii_positions or (has_pii and _PHONE_LIKE.search(v or "")):
            out.append(REDACTED)
        else:
            out.append(v)
    return out


def _strings_table(columns: dict[str, list[str] | pa.Array], line_nos) -> pa.Table:
    arrays = {k: pa.array(v, pa.string()) if isinstance(v, list) else v for k, v in columns.items()}
    arrays["_line_no"] = pa.array(line_nos, pa.int64())
    # from_arrays, not pa.table(dict): the latter imports pandas (~1.5 s per process)
    return pa.Table.from_arrays(list(arrays.values()), names=list(arrays))


# ----------------------------------------------------------------------------- CSV


def read_csv(data: bytes, export: Export) -> Parsed:
    data, encoding = decode(data)
    parsed = None
    try:
        parsed = _csv_fast(data, export)
    except FileRejected:
        raise
    except _NeedExact:
        parsed = None
    if parsed is None:
        parsed = _csv_exact(data, export)
    parsed.encoding = encoding
    return parsed


class _NeedExact(Exception):
    pass


def _csv_fast(data: bytes, export: Export) -> Parsed:
    """Vectorised path: usable when no record spans physical lines (every physical line
    holds an even number of quote characters) and every row has the header's field
    count. Anything else falls back to the exact path."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [n]))
    if starts[-1] == n:  # file ends with a newline: no trailing line
        starts, ends = starts[:-1], ends[:-1]
    if len(starts) == 0:
        raise FileRejected("empty file: no header row")
    lens = ends - starts
    last = np.where(lens > 0, ends - 1, 0)
    has_cr = (lens > 0) & (buf[last] == 13) if n else np.zeros(len(starts), bool)
    blank = (lens - has_cr) == 0
    quotes = np.flatnonzero(buf == 34)
    if quotes.size:
        # quotes per line = (quotes before the line's end) - (quotes before its start)
        per_line = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
        if (per_line & 1).any():
            raise _NeedExact()
    nonblank = np.flatnonzero(~blank)
    if nonblank.size == 0:
        raise FileRejected("empty file: no header row")
    h = nonblank[0]
    header_line = data[starts[h] : ends[h]].decode("utf-8").rstrip("\r")
    try:
        names = next(csv.reader([header_line]))
    except csv.Error:  # e.g. CR-only line ends: the exact path reports it (or reads it)
        raise _NeedExact() from None
    if len(names) <= 1 and not "".join(names).strip():
        raise FileRejected("empty file: no header row")
    present, extra = check_header(names, export)
    stripped = [nm.strip().lstrip("\ufeff").strip() for nm in names]
    line_nos = nonblank[1:] + 1
    body_start = int(ends[h]) + 1
    if body_start >= n or line_nos.size == 0:
        cols = {c: [] for c in present if not export.column(c).pii}
        return Parsed(_strings_table(cols, []), present, extra, None, path_taken="fast")

    field_names = [f"f{i}" for i in range(len(names))]
    wanted = {
        field_names[i]: nm
        for i, nm in enumerate(stripped)
        if nm in present and not export.column(nm).pii
    }
    invalid = []

    def on_invalid(row):
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)[body_start:]),
            read_options=pacsv.ReadOptions(column_names=field_names, use_threads=True),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=False,
                invalid_row_handler=on_invalid,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f: pa.string() for f in field_names},
                include_columns=list(wanted),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # never surface the parser's message: it can quote row contents
        raise _NeedExact() from None
    if invalid or table.num_rows != line_nos.size:
        raise _NeedExact()
    cols = {wanted[f]: table.column(f).combine_chunks() for f in wanted}
    return Parsed(_strings_table(cols, line_nos), present, extra, None, path_taken="fast")


_WS = " \t\r\n\f\v\u00a0\u3000"


def _csv_exact(data: bytes, export: Export) -> Parsed:
    """Row-by-row path with exact line accounting (quoted newlines, ragged rows)."""
    text = data.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    prev = 0
    header = None
    present: list[str] = []
    extra: list[str] = []
    keep: list[tuple[int, str]] = []
    cols: dict[str, list[str]] = {}
    line_nos: list[int] = []
    bad: list[BadRow] = []
    pii_positions: set[int] = set()
    stripped: list[str] = []
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if len(row) <= 1 and not "".join(row).strip(_WS):
                continue  # blank line
            if header is None:
                header = row
                present, extra = check_header(row, export)
                stripped = [nm.strip().lstrip("\ufeff").strip() for nm in row]
                keep = [
                    (i, nm)
                    for i, nm in enumerate(stripped)
                    if nm in present and not export.column(nm).pii
                ]
                pii_positions = {
                    i for i, nm in enumerate(stripped) if nm in present and export.column(nm).pii
                }
                cols = {nm: [] for _, nm in keep}
                continue
            if len(row) != len(header):
                vals = _redact_unattributed(row, export, pii_positions)
                bad.append(
                    BadRow(
                        start,
                        {"fields": vals},
                        f"wrong number of fields: expected {len(header)}, got {len(row)}",
                    )
                )
                continue
            for i, nm in keep:
                cols[nm].append(row[i])
            line_nos.append(start)
    except csv.Error as e:
        raise FileRejected(f"not a parseable CSV file (line {prev + 1}: {e})") from None
    if header is None:
        raise FileRejected("empty file: no header row")
    return Parsed(_strings_table(cols, line_nos), present, extra, None, bad, path_taken="exact")


# ----------------------------------------------------------------------------- JSONL


def read_jsonl(data: bytes, export: Export) -> Parsed:
    data, encoding = decode(data)
    if not data.strip():
        raise FileRejected("empty file: no records")
    known = set(export.column_names)
    pii = {c.name for c in export.columns if c.pii}
    stored = [c.name for c in export.stored_columns]
    objs: list[tuple[int, dict]] = []
    bad: list[BadRow] = []
    keys_seen: dict[str, None] = {}
    for i, line in enumerate(data.decode("utf-8").split("\n"), start=1):
        s = line.strip(_WS)
        if not s:
            continue
        try:
            obj = json.loads(s, parse_float=str, parse_int=str, parse_constant=str)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raw = REDACTED if pii else s
            bad.append(BadRow(i, {"line": raw}, "invalid JSON: line is not a JSON object"))
            continue
        if not isinstance(obj, dict):
            raw = REDACTED if pii else s
            bad.append(BadRow(i, {"line": raw}, "invalid JSON: line is not a JSON object"))
            continue
        for k in obj:
            keys_seen.setdefault(k, None)
        objs.append((i, obj))
    if objs:
        check_misrouted(keys_seen, export)
        missing = [c for c in export.required if c not in keys_seen]
        if missing:
            raise FileRejected(f"required column(s) missing in every record: {', '.join(missing)}")
    present = [k for k in keys_seen if k in known]
    extra = [k for k in keys_seen if k not in known]
    cols: dict[str, list[str]] = {c: [] for c in stored}
    line_nos: list[int] = []
    for i, obj in objs:
        nested = [k for k in stored if isinstance(obj.get(k), (dict, list))]
        if nested:
            raw = {k: (REDACTED if k in pii else obj[k]) for k in obj if k in known}
            bad.append(BadRow(i, raw, f"{nested[0]}: nested JSON value where a scalar is expected"))
            continue
        for c in stored:
            v = obj.get(c)
            if v is None:
                v = ""
            elif v is True:
                v = "true"
            elif v is False:
                v = "false"
            cols[c].append(v)
        line_nos.append(i)
    table = _strings_table(cols, line_nos)
    return Parsed(table, present, extra, encoding, bad, path_taken="jsonl")


# ----------------------------------------------------------------------------- Parquet


def read_parquet(data: bytes, export: Export) -> Parsed:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as e:  # noqa: BLE001 - any failure means "not a readable parquet file"
        raise FileRejected(f"not a readable Parquet file ({type(e).__name__}: {e})") from None
    present, extra = check_header(table.column_names, export)
    cols = {}
    for name in present:
        if export.column(name).pii:
            continue
        col = table.column(name).combine_chunks()
        cols[name] = _to_string(col, name)
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return Parsed(_strings_table(cols, lines), present, extra, None, path_taken="parquet")


def _to_string(col: pa.Array, name: str) -> pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if pa.types.is_nested(t):
        raise FileRejected(f"column {name!r} has nested type {t}: expected a scalar column")
    if pa.types.is_timestamp(t) and t.tz is not None:
        # rendered in UTC with a "Z" suffix; validation converts to Shanghai local time
        col = pc.cast(col, pa.timestamp(t.unit, "UTC"))
    s = pc.cast(col, pa.string())
    return pc.fill_null(s, "")
