"""The month's statements workbook (XLSX): Summary, Payouts, Ledger and Statements sheets,
money as numbers with a 2-decimal format, text always written as text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from supernova.statements.data import (
    LABELS,
    LEDGER_COLUMNS,
    PAYOUT_COLUMNS,
    SUMMARY_ORDER,
    StatementsError,
)


def write_workbook(path: Path, month: str, payouts: list[tuple], lines: list[tuple]) -> Path:
    try:
        import xlsxwriter
    except ImportError as exc:  # pragma: no cover - the dependency is in pyproject
        raise StatementsError(
            "the XLSX workbook needs the package xlsxwriter (uv add xlsxwriter)"
        ) from exc

    wb = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "constant_memory": False,
        },
    )
    book = _Book(wb)
    book.summary_sheet(month, payouts, lines)
    book.sheet("Payouts", PAYOUT_COLUMNS, payouts, {"promoter_id": 16, "run_id": 24})
    book.sheet(
        "Ledger",
        LEDGER_COLUMNS,
        lines,
        {"beneficiary_id": 16, "order_id": 16, "run_id": 24, "line_first_settlement_month": 12},
    )
    book.statements_sheet(payouts, lines)
    wb.close()
    return path


PAYOUT_INDEX = {c: i for i, c in enumerate(PAYOUT_COLUMNS)}


class _Book:
    """The statements workbook's sheets, sharing its cell formats."""

    def __init__(self, wb):
        self.wb = wb
        self.money = wb.add_format({"num_format": "#,##0.00"})
        self.money_b = wb.add_format({"num_format": "#,##0.00", "bold": True})
        self.rate = wb.add_format({"num_format": "0.0000%"})
        self.bold = wb.add_format({"bold": True})
        self.head = wb.add_format({"bold": True, "bg_color": "#DDE6F0", "border": 1})

    def put(self, ws, r, c, v, col=None):
        if v is None:
            ws.write_blank(r, c, None)
        elif isinstance(v, bool):
            ws.write_boolean(r, c, v)
        elif isinstance(v, (Decimal, float)):
            ws.write_number(r, c, float(v), self.rate if col == "rate" else self.money)
        elif isinstance(v, int):
            ws.write_number(r, c, v)
        else:
            ws.write_string(r, c, str(v))  # text stays text: never a formula

    def sheet(self, name, header, rows, widths=None):
        ws = self.wb.add_worksheet(name)
        for c, h in enumerate(header):
            ws.write_string(0, c, h, self.head)
            ws.set_column(c, c, (widths or {}).get(h, 14))
        for r, row in enumerate(rows, start=1):
            for c, v in enumerate(row):
                self.put(ws, r, c, v, header[c])
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(rows), 1), len(header) - 1)
        return ws

    def summary_sheet(self, month: str, payouts: list[tuple], lines: list[tuple]) -> None:
        """Month totals from the payout rows, then promoters and net paid by status."""
        idx = PAYOUT_INDEX
        ws = self.wb.add_worksheet("Summary")
        ws.set_column(0, 0, 38)
        ws.set_column(1, 1, 18)
        ws.write_string(0, 0, f"Supernova settlement {month}: payouts summary", self.bold)
        ws.write_string(1, 0, "from the published tables settlement.payouts / payout_lines")
        ws.write_string(3, 0, "item", self.head)
        ws.write_string(3, 1, "amount (CNY)", self.head)
        for r, k in enumerate(SUMMARY_ORDER, start=4):
            ws.write_string(r, 0, LABELS[k])
            ws.write_number(
                r,
                1,
                float(sum((p[idx[k]] for p in payouts), Decimal("0.00"))),
                self.money_b if k in ("gross_due", "net_paid") else self.money,
            )
        r = 4 + len(SUMMARY_ORDER) + 1
        ws.write_string(r, 0, "payout rows", self.bold)
        ws.write_number(r, 1, len(payouts))
        ws.write_string(r + 1, 0, "ledger postings", self.bold)
        ws.write_number(r + 1, 1, len(lines))
        ws.write_string(r + 3, 0, "status", self.head)
        ws.write_string(r + 3, 1, "promoters", self.head)
        ws.write_string(r + 3, 2, "net paid", self.head)
        statuses = sorted({p[idx["status"]] for p in payouts})
        for k, s in enumerate(statuses, start=r + 4):
            of_status = [p for p in payouts if p[idx["status"]] == s]
            ws.write_string(k, 0, s)
            ws.write_number(k, 1, len(of_status))
            net = sum((p[idx["net_paid"]] for p in of_status), Decimal("0.00"))
            ws.write_number(k, 2, float(net), self.money)

    def statements_sheet(self, payouts: list[tuple], lines: list[tuple]) -> None:
        """Per promoter, the payout figures then its ledger lines (filter on column A)."""
        ws = self.wb.add_worksheet("Statements")
        header = ["promoter_id", "section"] + LEDGER_COLUMNS[2:-1]
        for c, h in enumerate(header):
            ws.write_string(0, c, h, self.head)
            ws.set_column(c, c, 16)
        by_promoter: dict[str, list[tuple]] = {}
        for ln in lines:
            by_promoter.setdefault(ln[1], []).append(ln)
        r = 1
        for p in payouts:
            r = self._promoter_rows(
                ws, r, header, p, by_promoter.get(p[PAYOUT_INDEX["promoter_id"]], [])
            )
        ws.freeze_panes(1, 1)
        ws.autofilter(0, 0, max(r - 1, 1), len(header) - 1)

    def _promoter_rows(self, ws, r: int, header: list[str], p: tuple, lines: list[tuple]) -> int:
        """One promoter's block from row r; returns the next free row."""
        idx = PAYOUT_INDEX
        pid = p[idx["promoter_id"]]
        ws.write_string(r, 0, pid)
        ws.write_string(
            r, 1, f"{p[idx['platform']]} · {p[idx['tier']]} · {p[idx['status']]}", self.bold
        )
        r += 1
        for k in SUMMARY_ORDER:
            ws.write_string(r, 0, pid)
            ws.write_string(r, 1, LABELS[k])
            fmt = self.money_b if k == "net_paid" else self.money
            ws.write_number(r, len(header) - 1, float(p[idx[k]]), fmt)
            r += 1
        for ln in lines:
            ws.write_string(r, 0, pid)
            ws.write_string(r, 1, "ledger line")
            for c, v in enumerate(ln[2:-1], start=2):
                self.put(ws, r, c, v, header[c])
            r += 1
        return r
