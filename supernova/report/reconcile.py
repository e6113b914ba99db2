"""Figures derived from the collected data: the reconciliation from lines to what was paid
(every subtotal checked against the tables) and the order-line funnel of settlement_runs."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal("0.00")


def _dec(value) -> Decimal:
    return Decimal(value) if value is not None else ZERO


def _row(label, amount, sign="", note="", check=None) -> dict:
    return {
        "label": label,
        "amount": _dec(amount),
        "sign": sign,
        "note": note,
        "check": None if check is None else _dec(check),
        "ok": None if check is None else _dec(check) == _dec(amount),
    }


def earnings_reconciliation(row: dict) -> list[dict]:
    """Estimated earnings (promoter_earnings_daily, 预估佣金) of the lines this close settled
    against what it accrued, and where the difference went; each '=' row is checked against
    the figure read from the ledger side. [] when the close built no reconciliation."""
    if not row:
        return []

    def d(key):
        return _dec(row.get(key))

    accrued = (
        d("estimated_at_paid")
        - d("lost_to_refunds")
        - d("lost_to_cancels")
        - d("in_suspense")
        - d("terms_difference")
    )
    return [
        _row(
            f"Estimated level 1 + level 2 at the paid amount ({row.get('lines_settled') or 0:,} lines settled, "
            f"{row.get('lines_in_suspense') or 0:,} in suspense)",
            row.get("estimated_at_paid"),
            "",
            "what promoters saw as 预估佣金 for these lines",
        ),
        _row("lost to refunds before the cutoff", row.get("lost_to_refunds"), "−"),
        _row("lost to cancels before the cutoff", row.get("lost_to_cancels"), "−"),
        _row("in suspense (not settled this month)", row.get("in_suspense"), "−"),
        _row(
            "terms as of the cutoff (platform, inviter, frozen terms)",
            row.get("terms_difference"),
            "−",
        ),
        _row(
            "= accrued by this close",
            accrued,
            "=",
            "level-1 + level-2 accrual postings",
            check=row.get("accrued"),
        ),
        _row("of which paid", row.get("accrued_paid"), ""),
        _row("of which held (suspended promoters)", row.get("accrued_held"), ""),
        _row("of which forfeited (terminated promoters)", row.get("accrued_forfeited"), ""),
        _row("of which carried out below the threshold", row.get("accrued_below_threshold"), ""),
        _row("of which offset against a debt", row.get("accrued_debt"), ""),
        _row(
            "= accrued, by the beneficiary's payout status",
            d("accrued_paid")
            + d("accrued_held")
            + d("accrued_forfeited")
            + d("accrued_below_threshold")
            + d("accrued_debt"),
            "=",
            "",
            check=row.get("accrued"),
        ),
    ]


def reconciliation(data: dict) -> list[dict]:
    """The month from lines to what was paid, as rows that add up. Each '=' row is
    checked against the figure read from the tables; `ok` is False when it does not."""
    t = data.get("totals") or {}
    led = data.get("ledger") or {}
    pay = data.get("payout_sums") or {}
    if not led or not pay:
        return []

    d = _dec
    rows = []

    def add(label, amount, sign="", note="", check=None):
        rows.append(_row(label, amount, sign, note, check))

    if t.get("line_commission") is not None:
        c, f, r = (
            d(t.get("line_commission")),
            d(t.get("platform_fee")),
            d(t.get("operator_retained")),
        )
        l1, l2 = d(t.get("level1_amount")), d(t.get("level2_amount"))
        add(
            f"Base of lines first settled ({t.get('lines_settled') or 0:,} lines)",
            t.get("base_amount"),
            "",
            "paid − refunds as of the cutoff",
        )
        add("Commission on those lines (C)", c)
        add("platform fee (F)", f, "−")
        add("operator retained (R)", r, "−")
        add(
            "= promoter shares (level 1 + level 2)",
            c - f - r,
            "=",
            f"level 1 {l1:,.2f} + level 2 {l2:,.2f}",
            check=l1 + l2,
        )
        add("level-1 accrual postings", led["accrual_l1"], "", "ledger", check=l1)
        add("level-2 accrual postings", led["accrual_l2"], "", "ledger", check=l2)
    add("Accruals posted", d(led["accrual_l1"]) + d(led["accrual_l2"]), "")
    add("tier bonus", led["tier_bonus"], "+", "paid by the operator")
    add("clawbacks (late refunds and cancels)", led["clawback"], "+", "≤ 0")
    add("adjustments", led["adjustment"], "+")
    postings = (
        d(led["accrual_l1"])
        + d(led["accrual_l2"])
        + d(led["tier_bonus"])
        + d(led["clawback"])
        + d(led["adjustment"])
    )
    add(
        f"= postings in the month ({led.get('postings', 0):,} ledger rows)",
        postings,
        "=",
        "payouts: Σ level 1 + level 2 + bonus + clawback + adjustment",
        check=d(pay["level1"])
        + d(pay["level2"])
        + d(pay["tier_bonus"])
        + d(pay["clawback"])
        + d(pay["adjustment"]),
    )
    add("carried in from the previous month", pay["carried_in"], "+")
    gross = postings + d(pay["carried_in"])
    add(
        f"= gross due ({pay.get('rows', 0):,} payout rows)",
        gross,
        "=",
        "Σ payouts.gross_due",
        check=pay["gross_due"],
    )
    add("tax withheld", pay["tax"], "−")
    add("carried out to the next month", pay["carried_out"], "−", "below threshold, debt, held")
    add("forfeited (terminated promoters)", pay["forfeited"], "−")
    add(
        "= net paid",
        gross - d(pay["tax"]) - d(pay["carried_out"]) - d(pay["forfeited"]),
        "=",
        "Σ payouts.net_paid",
        check=pay["net_paid"],
    )
    return rows


# The order-line funnel of settlement_runs (outputs.md), in the order a line is placed:
# column -> label; the last entry is the total the others add up to.
FUNNEL = [
    ("lines_settled", "settled: first settled by this run"),
    ("lines_settled_earlier", "settled: first settled by an earlier month"),
    ("suspense_lines", "in suspense"),
    ("lines_organic", "organic: no click in the window (unattributed)"),
    ("lines_pending_completion", "pending completion"),
    ("lines_cancelled_unsettled", "cancelled or refunded in full before settling"),
    ("lines_completed_before_first_month", "completed before the first settled month"),
    ("lines_delivered", "= lines delivered"),
]


def funnel_rows(totals: dict) -> list[tuple[str, int]]:
    """[(label, lines)] of the funnel, the total last; [] when the run has no funnel (a run
    recorded before the funnel existed, or one that stopped before its build)."""
    if not totals or totals.get("lines_delivered") is None:
        return []
    return [(label, int(totals.get(col) or 0)) for col, label in FUNNEL]
