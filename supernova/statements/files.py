"""The month's statement files, written in one go: the payouts and ledger CSVs, one CSV
per promoter, the workbook."""

from __future__ import annotations

from pathlib import Path

from supernova.csvsafe import write_csv
from supernova.statements.csv_files import promoter_file_name, write_statement_csv
from supernova.statements.data import (
    LEDGER_COLUMNS,
    MONEY,
    MONTH_RE,
    PAYOUT_COLUMNS,
    StatementsError,
    read_month,
)
from supernova.statements.xlsx import write_workbook


def write_statements(
    warehouse: Path, month: str, out_dir: Path | None = None, log=None
) -> list[Path]:
    """Write the month's statements; returns the files written (CSV files, then the XLSX)."""
    if not MONTH_RE.match(month or ""):
        raise StatementsError(f"month must be YYYY-MM (e.g. 2026-10), got {month!r}")
    warehouse = Path(warehouse)
    if not (warehouse / "supernova.duckdb").exists():
        raise StatementsError(
            f"no warehouse at {warehouse} (expected {warehouse / 'supernova.duckdb'})"
        )
    out = Path(out_dir) if out_dir else warehouse / "statements" / month
    payouts, lines = read_month(warehouse, month)
    if log:
        log(
            f"statements {month}: {len(payouts):,} payout rows, {len(lines):,} ledger lines → {out}"
        )
    written = [
        write_csv(out / f"payouts_{month}.csv", PAYOUT_COLUMNS, payouts, MONEY),
        write_csv(out / f"ledger_{month}.csv", LEDGER_COLUMNS, lines, MONEY),
    ]
    by_promoter: dict[str, list[tuple]] = {}
    for ln in lines:
        by_promoter.setdefault(ln[1], []).append(ln)
    for i, p in enumerate(payouts, start=1):
        payout = dict(zip(PAYOUT_COLUMNS, p))
        written.append(
            write_statement_csv(
                out / "promoters" / f"{promoter_file_name(payout['promoter_id'])}.csv",
                payout,
                by_promoter.get(payout["promoter_id"], []),
            )
        )
        if log and i % 1000 == 0:
            log(f"  {i:,}/{len(payouts):,} promoter statements")
    written.append(
        write_workbook(out / f"supernova_statements_{month}.xlsx", month, payouts, lines)
    )
    return written
