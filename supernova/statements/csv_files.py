"""One promoter's statement as a CSV file: summary then ledger lines, Excel-safe cells."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import Path

from supernova.statements.data import LABELS, LEDGER_COLUMNS, STATUS_TEXT, SUMMARY_ORDER


def promoter_file_name(promoter_id: str) -> str:
    """A safe file name for any promoter id (ids are data: never trust them as paths)."""
    clean = re.sub(r"[^0-9A-Za-z_.-]+", "_", promoter_id).strip("._") or "promoter"
    if clean != promoter_id:
        clean = f"{clean[:60]}-{hashlib.sha256(promoter_id.encode()).hexdigest()[:8]}"
    return clean


def _statement_rows(payout: dict, lines: list[tuple]) -> list[list]:
    rows: list[list] = [
        ["Supernova promoter statement (推手结算单)"],
        ["promoter_id", payout["promoter_id"]],
        ["settlement_month", payout["settlement_month"]],
        ["platform", payout["platform"]],
        ["tier", payout["tier"]],
        ["status", payout["status"], STATUS_TEXT.get(payout["status"], "")],
        ["run_id", payout["run_id"]],
        [],
        ["item", "amount (CNY)"],
    ]
    rows += [[LABELS[k], payout[k]] for k in SUMMARY_ORDER]
    rows += [[], ["ledger lines"], LEDGER_COLUMNS[2:-1]]
    rows += [list(r[2:-1]) for r in lines]
    rows.append(
        ["total of ledger lines"]
        + [""] * (len(LEDGER_COLUMNS) - 4)
        + [sum((r[11] for r in lines), Decimal("0.00"))]
    )
    return rows


def write_statement_csv(path: Path, payout: dict, lines: list[tuple]) -> Path:
    """Money values are DECIMAL(18,2) from the tables and keep their two places as text."""
    import csv
    import io

    from supernova.csvsafe import cell

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in _statement_rows(payout, lines):
        w.writerow([cell(v) for v in row])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
    return path
