"""Promoter statements for finance: per promoter and month, the payout row and its ledger.

Read from the published tables only (`settlement.payouts`, `settlement.payout_lines`,
`settlement.line_terms`; nothing is recomputed). When the DuckDB file is busy (a run in
progress), the Parquet copies of the same published tables are read instead.

Written to <warehouse>/statements/<month>/ (or --out):
  payouts_<month>.csv                  every payout row of the month
  ledger_<month>.csv                   every ledger posting of the month
  promoters/<promoter>.csv             one statement per promoter (summary + ledger lines)
  supernova_statements_<month>.xlsx    workbook: Summary, Payouts, Ledger (filterable), Statements

CSV: UTF-8 with BOM, money as exact decimal strings, text cells that a spreadsheet would
read as a formula neutralised (supernova.csvsafe). XLSX: money as numbers with a 2-decimal
format, every text cell written as text (never a formula).

Modules, one job each: data (columns, reading the published rows), csv_files (one
promoter's CSV), xlsx (the workbook), files (all of a month's files), command (the CLI).
"""

from __future__ import annotations

from supernova.statements.command import add_statements_parser, cmd_statements, run_statements
from supernova.statements.data import StatementsError
from supernova.statements.files import write_statements

__all__ = [
    "StatementsError",
    "add_statements_parser",
    "cmd_statements",
    "run_statements",
    "write_statements",
]
