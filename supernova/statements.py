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
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from decimal import Decimal
from pathlib import Path

from supernova import settings
from supernova.csvsafe import write_csv
from supernova.warehouse import WarehouseLocked, connect, table_exists

MONTH_RE = settings.MONTH_RE

PAYOUT_COLUMNS = [
    "settlement_month",
    "promoter_id",
    "platform",
    "tier",
    "status",
    "carried_in",
    "level1_amount",
    "level2_amount",
    "tier_bonus",
    "clawback_amount",
    "adjustment_amount",
    "gross_due",
    "tax_withheld",
    "net_paid",
    "carried_out",
    "forfeited_amount",
    "run_id",
]
LEDGER_COLUMNS = [
    "settlement_month",
    "beneficiary_id",
    "kind",
    "level",
    "order_id",
    "line_no",
    "group_id",
    "line_first_settlement_month",
    "base_amount",
    "rate",
    "line_commission",
    "amount",
    "run_id",
]
MONEY = {
    "carried_in",
    "level1_amount",
    "level2_amount",
    "tier_bonus",
    "clawback_amount",
    "adjustment_amount",
    "gross_due",
    "tax_withheld",
    "net_paid",
    "carried_out",
    "forfeited_amount",
    "base_amount",
    "line_commission",
    "amount",
}
SUMMARY_ORDER = [
    "carried_in",
    "level1_amount",
    "level2_amount",
    "tier_bonus",
    "clawback_amount",
    "adjustment_amount",
    "gross_due",
    "tax_withheld",
    "net_paid",
    "carried_out",
    "forfeited_amount",
]
LABELS = {
    "carried_in": "carried in from last month",
    "level1_amount": "level-1 commission (own sales)",
    "level2_amount": "level-2 commission (invitees' sales)",
    "tier_bonus": "tier bonus",
    "clawback_amount": "clawbacks (late refunds/cancels)",
    "adjustment_amount": "adjustments",
    "gross_due": "gross due",
    "tax_withheld": "tax withheld (个人所得税)",
    "net_paid": "net paid",
    "carried_out": "carried to next month",
    "forfeited_amount": "forfeited",
}
STATUS_TEXT = {
    "paid": "paid this month",
    "below_threshold": "gross due below 10.00: carried to next month",
    "held": "account suspended: nothing paid, balance carried",
    "debt": "negative balance (clawbacks): carried to next month",
    "forfeited": "account terminated: balance forfeited",
}


class StatementsError(RuntimeError):
    pass


def _fetch(con, sql: str, params=None) -> tuple[list[str], list[tuple]]:
    cur = con.execute(sql, params or [])
    return [d[0] for d in cur.description], cur.fetchall()


def _read(warehouse: Path, month: str) -> tuple[list[tuple], list[tuple]]:
    """(payout rows, ledger rows) in PAYOUT_COLUMNS / LEDGER_COLUMNS order."""
    pcols = ", ".join(PAYOUT_COLUMNS)
    lcols = ", ".join(
        f"l.{c}"
        if c not in ("line_first_settlement_month",)
        else "t.first_settlement_month as line_first_settlement_month"
        for c in LEDGER_COLUMNS
    )
    order_l = (
        "l.beneficiary_id, case l.kind when 'accrual' then 1 when 'clawback' then 2 when 'adjustment' then 3 "
        "else 4 end, l.order_id, l.line_no, l.level"
    )

    def query(con, payouts, lines, terms):
        _, p = _fetch(
            con,
            f"select {pcols} from {payouts} where settlement_month = ? order by promoter_id",
            [month],
        )
        _, lrows = _fetch(
            con,
            f"select {lcols} from {lines} l left join {terms} t using (order_id, line_no) "
            f"where l.settlement_month = ? order by {order_l}",
            [month],
        )
        return p, lrows

    try:
        # no wait for a holder of the working file: the Parquet copies answer the same
        with connect(warehouse, read_only=True, wait=0, log=lambda _msg: None) as con:
            if not table_exists(con, "settlement", "payouts"):
                raise StatementsError(
                    f"nothing is published in {warehouse}: settle a month first "
                    "(`supernova settle --month YYYY-MM`)."
                )
            published = con.execute(
                "select count(*) from settlement.settlement_runs where settlement_month = ? "
                "and status = 'published'",
                [month],
            ).fetchone()[0]
            if not published:
                raise StatementsError(
                    f"{month} is not published: statements are made from published months only "
                    f"(`supernova settle --month {month}`; a preview publishes nothing)."
                )
            return query(
                con, "settlement.payouts", "settlement.payout_lines", "settlement.line_terms"
            )
    except WarehouseLocked:
        import duckdb

        base = Path(warehouse) / "parquet" / "settlement"
        if not (base / "payouts" / f"settlement_month={month}").exists():
            raise
        con = duckdb.connect()
        try:

            def src(t):
                return f"read_parquet('{base}/{t}/*/*.parquet', hive_partitioning = true)"

            # Hive partitions give the month columns back as text, under their DuckDB names
            # (line_terms is partitioned by first_settlement_month)
            con.execute(f"create view p as select * from {src('payouts')}")
            con.execute(f"create view l as select * from {src('payout_lines')}")
            con.execute(f"create view t as select * from {src('line_terms')}")
            return query(con, "p", "l", "t")
        finally:
            con.close()


def _slug(promoter_id: str) -> str:
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


def _write_statement_csv(path: Path, payout: dict, lines: list[tuple]) -> Path:
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


def _write_xlsx(path: Path, month: str, payouts: list[tuple], lines: list[tuple]) -> Path:
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
    payouts, lines = _read(warehouse, month)
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
            _write_statement_csv(
                out / "promoters" / f"{_slug(payout['promoter_id'])}.csv",
                payout,
                by_promoter.get(payout["promoter_id"], []),
            )
        )
        if log and i % 1000 == 0:
            log(f"  {i:,}/{len(payouts):,} promoter statements")
    written.append(_write_xlsx(out / f"supernova_statements_{month}.xlsx", month, payouts, lines))
    return written


# ---------------------------------------------------------------- CLI


def run_statements(warehouse: Path, month: str, out: Path | None = None) -> int:
    """Write the month's statements; one line on the terminal. Returns an exit code."""
    from supernova.cli_support import EXIT_FAILED, EXIT_OK

    try:
        files = write_statements(warehouse, month, out, log=lambda m: None)
    except StatementsError as exc:
        print(f"[supernova] ERROR: {exc}", file=sys.stderr)
        return EXIT_FAILED
    xlsx = [f for f in files if f.suffix == ".xlsx"]
    print(
        f"[supernova] statements {month}: {len(files) - len(xlsx) - 2:,} promoter statements, the payouts and "
        f"ledger CSVs and {xlsx[0].name if xlsx else 'no workbook'} in {files[0].parent}"
    )
    return EXIT_OK


def cmd_statements(args) -> int:
    from supernova.cli_support import check_warehouse

    warehouse = check_warehouse(args.warehouse or settings.default_warehouse())
    return run_statements(warehouse, args.month, args.out)


def add_statements_parser(subparsers) -> argparse.ArgumentParser:
    """Register `supernova statements --month YYYY-MM [--warehouse DIR] [--out DIR]`."""
    from supernova.cli_support import add_command, month_arg

    p = add_command(
        subparsers,
        "statements",
        "promoter statements (CSV + XLSX) of a published month for finance",
    )
    p.add_argument("--month", required=True, type=month_arg, help="YYYY-MM (a published month)")
    p.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="warehouse directory (default: $SUPERNOVA_WAREHOUSE, else $SUPERNOVA_HOME/warehouse)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: <warehouse>/statements/<month>)",
    )
    p.set_defaults(func=cmd_statements)
    return p
