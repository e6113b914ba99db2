"""The statements' data: their columns and labels, and the month's payout and ledger rows
read from the published tables (the DuckDB file, or its Parquet copies while a run holds
it)."""

from __future__ import annotations

from pathlib import Path

from supernova import settings
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


def read_month(warehouse: Path, month: str) -> tuple[list[tuple], list[tuple]]:
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
