"""CSV that is safe to open in Excel, LibreOffice or Google Sheets.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
spreadsheets as a formula (CSV/formula injection: `=HYPERLINK(...)`, `-1+1`, `@SUM(...)`).
Such text cells get a leading apostrophe, which the spreadsheet shows as plain text.

Only *text* is neutralised: numbers (int, Decimal, float) are written as they are, so a
negative amount stays a number. Money is written as an exact decimal string with two
places (`Decimal('-125.1')` → `-125.10`), never through float.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TWO_PLACES = Decimal("0.01")


def safe_text(value: str) -> str:
    """A text cell as a spreadsheet will show it: formula-looking text gets a leading '."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def cell(value, money: bool = False) -> str:
    """One CSV cell. `money=True` formats a number with exactly two decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.quantize(TWO_PLACES) if money else value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)).quantize(TWO_PLACES), "f") if money else repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return safe_text(str(value))


def rows_to_csv(
    header: Sequence[str], rows: Iterable[Sequence], money_columns: Iterable[str] = ()
) -> str:
    money = set(money_columns)
    flags = [h in money for h in header]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe_text(h) for h in header])
    for row in rows:
        w.writerow([cell(v, m) for v, m in zip(row, flags)])
    return buf.getvalue()


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence], money_columns: Iterable[str] = ()
) -> Path:
    """Write UTF-8 with a BOM (so Excel detects UTF-8 and shows 中文 correctly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rows_to_csv(header, rows, money_columns), encoding="utf-8-sig", newline="")
    return path
