"""The run report: what the run did, its totals, every check and its outcome.

Written for every attempt (published, failed, preview, unchanged) next to the outputs:
<warehouse>/reports/<month>/<attempt_id>.md, the same as a self-contained HTML page
(<attempt_id>.html: inline CSS and SVG charts, no script, no external URL) and the raw
state as .json.

Figures come from the published tables (`settlement.*`) for published and unchanged
runs, and from the run's candidate tables (`settlement_build.*`, labelled "not
published") for previews and runs that failed after their build. Group activity (dead
groups, 僵死群) and buyer figures are read from the analytics marts (`marts.group_activity_summary`,
built on `group_status`, and `marts.buyer_demographics_monthly`), so the report and the
marts have one definition of a dead group and one small-cell suppression; when the marts
are not built (or not refreshed to the month's end) the report says so. It never shows
buyer ids or phone numbers: buyer figures are the mart's, suppressed cells stay hidden.

Next to the attempts, `reports/<month>/index.html` is rewritten after every attempt: the
month's published result (or "not published yet") with every attempt listed.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from supernova import serving, settings
from supernova.warehouse import connect, table_exists

MONTH_RE = settings.MONTH_RE
MIN_BUYERS = 10  # privacy: a buyer cell with fewer buyers is suppressed (as in the marts)
ZERO = Decimal("0.00")


def _money(v) -> str:
    return "" if v is None else f"{v:,.2f}" if not isinstance(v, str) else v


def run_totals(warehouse: Path, run_id: str | None) -> dict | None:
    if not run_id:
        return None
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, "settlement", "settlement_runs"):
            return None
        cur = con.execute("select * from settlement.settlement_runs where run_id = ? "
                          "order by finished_at desc limit 1", [run_id])
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None


# ---------------------------------------------------------------- what to do next


def next_steps(state: dict) -> str:
    """One or two sentences: what a person should do after this attempt."""
    status = state.get("status") or "failed"
    err = state.get("error") or ""
    request = state.get("request") or {}
    month = request.get("month", "the month")
    if status == "published":
        warehouse = request.get("warehouse") or "<warehouse>"
        return (f"Nothing to do. Finance statements: `supernova statements --month {month} "
                f"--warehouse {shlex.quote(str(warehouse))}`; BI tools read the catalog "
                f"{shlex.quote(str(serving.catalog_path(warehouse)))} or the Parquet copies "
                "(docs/bi.md), never the working DuckDB file.")
    if status == "unchanged":
        return "Nothing to do: the month is closed and its inputs are unchanged."
    if status == "preview":
        return (f"A preview publishes nothing. Settle {month} for real after its cutoff with "
                f"`supernova settle --month {month}`.")
    low = err.lower()
    if "before its cutoff" in low:
        return "Wait until the cutoff shown above, or run with --preview to see the figures now."
    # a failed gate or build first: their messages also say "months settle in order" (later
    # months wait for this one), which is not the refusal to settle a month out of order
    if "quality gate failed" in low:
        return ("Nothing was published. Look at the failed checks below (examples included), fix the "
                "data upstream or the cause in the code, then run the same command again.")
    if "dbt build failed" in low:
        return ("Nothing was published. Fix the failing model or test named below (e.g. overlapping "
                "commission rules are a merchant-settings error), then run the same command again.")
    if "months settle in order" in low:
        m = re.search(r"next one to settle is (\d{4}-\d{2})", err)
        return f"Settle {m.group(1) if m else 'the next month'} first, then this one."
    if "inputs have changed" in low:
        return ("Late data flows into the next month as clawbacks. To change this closed month itself, "
                "run it again with --reopen --reason TEXT.")
    if "lock" in low or "another process" in low or "busy" in low:
        return ("Another run or program holds the warehouse: wait for it to finish (or close BI tools "
                "that have supernova.duckdb open), then run the same command again.")
    if "needs a reason" in low or "must be yyyy-mm" in low:
        return "Fix the command line as the message says and run it again."
    return "Fix the cause above (the full state is in the .json next to this report), then run the same command again."


# ---------------------------------------------------------------- data


_SCRUB = [
    (re.compile(r"""(['"]?(?:buyer_id|phone)['"]?\s*[:=]\s*)(['"])[^'"]*\2""", re.IGNORECASE), r"\1\2<redacted>\2"),
    (re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), "<redacted>"),
]


def scrub(text) -> str:
    """Remove buyer ids and phone numbers from free text (error messages, examples)."""
    s = str(text)
    for pat, rep in _SCRUB:
        s = pat.sub(rep, s)
    return s


def _rows(con, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _one(con, sql: str, params=None):
    rows = _rows(con, sql, params)
    return rows[0] if rows else {}


def _month_days(month: str) -> tuple[date, date]:
    y, m = int(month[:4]), int(month[5:7])
    return date(y, m, 1), date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)


def _marts_demographics(con, month: str) -> dict | None:
    """The month's rows of marts.buyer_demographics_monthly as published (cells and the
    total row, suppressed ones with empty metrics), or None when the mart is not built."""
    if not table_exists(con, "marts", "buyer_demographics_monthly"):
        return None
    rows = _rows(con, """
        select coalesce(cast(city_tier as varchar), '?') as city_tier, coalesce(gender, '?') as gender, is_total,
               buyers, orders, gmv, aov, suppressed
        from marts.buyer_demographics_monthly where month = ?
        order by is_total, city_tier nulls last, gender nulls last""", [_month_days(month)[0]])
    return {"cells": [r for r in rows if not r["is_total"]], "total": next((r for r in rows if r["is_total"]), None)}


def _marts_activity(con, month: str) -> dict | None:
    """Per day of the month: existing groups, dead groups (group_status's definition) and
    attributed orders of the groups, summed over marts.group_activity_summary; and the
    marts' last day (days after it are not in the marts yet). None when not built."""
    if not table_exists(con, "marts", "group_activity_summary"):
        return None
    start, end = _month_days(month)
    days = _rows(con, """
        select activity_date as d, sum(existing_groups) as groups, sum(dead_groups) as dead, sum(orders) as orders
        from marts.group_activity_summary where activity_date between ? and ?
        group by 1 order by 1""", [start, end])
    last = _one(con, "select max(activity_date) as last_day from marts.group_activity_summary").get("last_day")
    return {"days": days, "last_day": last, "start": start, "end": end}


def _source(con, state: dict) -> dict | None:
    """Where this attempt's figures live: published month, or the run's candidate tables."""
    month = (state.get("request") or {}).get("month") or ""
    status = state.get("status")
    plan = state.get("plan") or {}
    if not MONTH_RE.match(month):
        return None
    if status in ("published", "unchanged"):
        if table_exists(con, "settlement", "payouts"):
            return {"schema": "settlement", "published": True, "month": month,
                    "where": f"settlement_month = '{month}'",
                    "terms_where": f"first_settlement_month = '{month}'"}
        return None
    build = state.get("build") or {}
    if build.get("ok") and table_exists(con, "settlement_build", "payouts"):
        run_ids = {r["run_id"] for r in _rows(con, "select distinct run_id from settlement_build.payouts "
                                                   "union select distinct run_id from settlement_build.payout_lines")}
        if run_ids <= {plan.get("run_id")}:
            return {"schema": "settlement_build", "published": False, "month": month,
                    "where": "true", "terms_where": "true"}
    return None


def collect(warehouse: Path, state: dict) -> dict:
    """Everything the HTML shows, read in one read-only connection. Sections that cannot
    be computed are reported as such instead of failing the report."""
    data: dict = {"errors": {}}
    month = (state.get("request") or {}).get("month") or ""
    db = Path(warehouse) / "supernova.duckdb"
    if not db.exists():
        return data
    with connect(warehouse, read_only=True) as con:
        src = _source(con, state)
        data["source"] = src
        # totals of this attempt (recorded for failed/preview) or of the published run
        try:
            if table_exists(con, "settlement", "settlement_runs"):
                if state.get("status") in ("published", "unchanged"):
                    data["totals"] = _one(con, "select * from settlement.settlement_runs where settlement_month = ? "
                                               "and status = 'published' order by finished_at desc limit 1", [month])
                elif src is not None:
                    data["totals"] = _one(con, "select * from settlement.settlement_runs where attempt_id = ? "
                                               "order by finished_at desc limit 1", [state.get("attempt_id")])
            if src is not None and not data.get("totals") and table_exists(con, "settlement_build", "settlement_run_totals"):
                data["totals"] = _one(con, "select * from settlement_build.settlement_run_totals")
        except Exception as exc:  # noqa: BLE001 - a report section must not fail the report
            data["errors"]["totals"] = str(exc)
        try:
            data["rejected_files"] = _rows(con, "select file_path, reason from raw.manifest where status = 'rejected' "
                                                "order by file_path limit 50") if table_exists(con, "raw", "manifest") else []
        except Exception as exc:  # noqa: BLE001 - a report section must not fail the report
            data["errors"]["rejected_files"] = str(exc)
        if src is None:
            return data
        s, w, tw = src["schema"], src["where"], src["terms_where"]
        P = f"(select * from {s}.payouts where {w})"
        L = f"(select * from {s}.payout_lines where {w})"
        T = f"(select * from {s}.line_terms where {tw})"
        if src["published"]:
            TA = f"(select * from settlement.line_terms where first_settlement_month <= '{month}')"
        elif table_exists(con, "settlement", "line_terms"):
            TA = (f"(select * from settlement.line_terms where first_settlement_month < '{month}' "
                  f"union all by name select * from settlement_build.line_terms)")
        else:
            TA = "settlement_build.line_terms"

        def section(name, fn):
            try:
                data[name] = fn()
            except Exception as exc:  # noqa: BLE001 - one section must not hide the others
                data["errors"][name] = str(exc)

        section("ledger", lambda: _one(con, f"""
            select count(*) as postings,
              coalesce(sum(amount) filter (where kind = 'accrual' and level = 1), 0) as accrual_l1,
              coalesce(sum(amount) filter (where kind = 'accrual' and level = 2), 0) as accrual_l2,
              coalesce(sum(amount) filter (where kind = 'tier_bonus'), 0) as tier_bonus,
              coalesce(sum(amount) filter (where kind = 'clawback'), 0) as clawback,
              coalesce(sum(amount) filter (where kind = 'adjustment'), 0) as adjustment,
              coalesce(sum(amount), 0) as total
            from {L}"""))
        section("payout_sums", lambda: _one(con, f"""
            select count(*) as rows, coalesce(sum(carried_in), 0) as carried_in,
              coalesce(sum(level1_amount), 0) as level1, coalesce(sum(level2_amount), 0) as level2,
              coalesce(sum(tier_bonus), 0) as tier_bonus, coalesce(sum(clawback_amount), 0) as clawback,
              coalesce(sum(adjustment_amount), 0) as adjustment, coalesce(sum(gross_due), 0) as gross_due,
              coalesce(sum(tax_withheld), 0) as tax, coalesce(sum(net_paid), 0) as net_paid,
              coalesce(sum(carried_out), 0) as carried_out, coalesce(sum(forfeited_amount), 0) as forfeited
            from {P}"""))
        section("status_rows", lambda: _rows(con, f"""
            select status, count(*) as promoters, sum(gross_due) as gross_due, sum(net_paid) as net_paid,
                   sum(tax_withheld) as tax, sum(carried_out) as carried_out, sum(forfeited_amount) as forfeited
            from {P} group by 1 order by 1"""))
        section("distribution", lambda: _rows(con, f"""
            select case when gross_due < 0 then 0 when gross_due < 10 then 1 when gross_due < 100 then 2
                        when gross_due < 500 then 3 when gross_due < 1000 then 4 when gross_due < 5000 then 5
                        when gross_due < 20000 then 6 else 7 end as bin, count(*) as n
            from {P} group by 1 order by 1"""))
        section("tier_mix", lambda: _rows(con, f"select platform, tier, count(*) as n from {P} group by all order by all"))
        section("status_mix", lambda: _rows(con, f"select platform, status, count(*) as n from {P} group by all order by all"))
        section("clawbacks", lambda: _rows(con, f"""
            select coalesce(t.first_settlement_month, '?') as line_month, l.level, count(*) as postings,
                   sum(l.amount) as amount
            from {L} l left join {TA} t using (order_id, line_no)
            where l.kind = 'clawback' group by all order by all"""))
        section("top_promoters", lambda: _rows(con, f"""
            select promoter_id, platform, tier, status, level1_amount, level2_amount, tier_bonus,
                   clawback_amount, gross_due, tax_withheld, net_paid
            from {P} order by gross_due desc, promoter_id limit 10"""))
        section("top_groups", lambda: _rows(con, f"""
            with lines as (
                select t.group_id, t.promoter_id, t.order_id, o.paid_amount
                from {T} t join staging.stg_exports__orders o using (order_id, line_no)
                where t.group_id is not null),
            posted as (
                select group_id, sum(amount) as commission from {L}
                where kind = 'accrual' and group_id is not null group by 1)
            select l.group_id, any_value(l.promoter_id) as promoter_id, count(distinct l.order_id) as orders,
                   sum(l.paid_amount) as gmv, coalesce(any_value(p.commission), 0) as commission
            from lines l left join posted p using (group_id)
            group by l.group_id order by gmv desc, l.group_id limit 10"""))
        if MONTH_RE.match(month):
            section("demographics", lambda: _marts_demographics(con, month))
            section("activity", lambda: _marts_activity(con, month))
        section("suspense", lambda: _rows(con, f"select reason, count(*) as lines, sum(base_amount) as base "
                                               f"from {s}.suspense where {w} group by 1 order by 2 desc"))
        section("findings", lambda: _rows(con, f"select kind, count(*) as n from {s}.findings where {w} group by 1 order by 2 desc"))
    return data


def reconciliation(data: dict) -> list[dict]:
    """The month from lines to what was paid, as rows that add up. Each '=' row is
    checked against the figure read from the tables; `ok` is False when it does not."""
    t = data.get("totals") or {}
    led = data.get("ledger") or {}
    pay = data.get("payout_sums") or {}
    if not led or not pay:
        return []

    def d(v):
        return Decimal(v) if v is not None else ZERO

    rows = []

    def add(label, amount, sign="", note="", check=None):
        ok = None if check is None else d(check) == d(amount)
        rows.append({"label": label, "amount": d(amount), "sign": sign, "note": note,
                     "check": None if check is None else d(check), "ok": ok})

    if t.get("line_commission") is not None:
        c, f, r = d(t.get("line_commission")), d(t.get("platform_fee")), d(t.get("operator_retained"))
        l1, l2 = d(t.get("level1_amount")), d(t.get("level2_amount"))
        add(f"Base of lines first settled ({t.get('lines_settled') or 0:,} lines)", t.get("base_amount"), "",
            "paid − refunds as of the cutoff")
        add("Commission on those lines (C)", c)
        add("platform fee (F)", f, "−")
        add("operator retained (R)", r, "−")
        add("= promoter shares (level 1 + level 2)", c - f - r, "=", f"level 1 {l1:,.2f} + level 2 {l2:,.2f}",
            check=l1 + l2)
        add("level-1 accrual postings", led["accrual_l1"], "", "ledger", check=l1)
        add("level-2 accrual postings", led["accrual_l2"], "", "ledger", check=l2)
    add("Accruals posted", d(led["accrual_l1"]) + d(led["accrual_l2"]), "")
    add("tier bonus", led["tier_bonus"], "+", "paid by the operator")
    add("clawbacks (late refunds and cancels)", led["clawback"], "+", "≤ 0")
    add("adjustments", led["adjustment"], "+")
    postings = d(led["accrual_l1"]) + d(led["accrual_l2"]) + d(led["tier_bonus"]) + d(led["clawback"]) + d(led["adjustment"])
    add(f"= postings in the month ({led.get('postings', 0):,} ledger rows)", postings, "=",
        "payouts: Σ level 1 + level 2 + bonus + clawback + adjustment",
        check=d(pay["level1"]) + d(pay["level2"]) + d(pay["tier_bonus"]) + d(pay["clawback"]) + d(pay["adjustment"]))
    add("carried in from the previous month", pay["carried_in"], "+")
    gross = postings + d(pay["carried_in"])
    add(f"= gross due ({pay.get('rows', 0):,} payout rows)", gross, "=", "Σ payouts.gross_due", check=pay["gross_due"])
    add("tax withheld", pay["tax"], "−")
    add("carried out to the next month", pay["carried_out"], "−", "below threshold, debt, held")
    add("forfeited (terminated promoters)", pay["forfeited"], "−")
    add("= net paid", gross - d(pay["tax"]) - d(pay["carried_out"]) - d(pay["forfeited"]), "=",
        "Σ payouts.net_paid", check=pay["net_paid"])
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


# ---------------------------------------------------------------- SVG charts

PALETTE = ["#2f6db5", "#e08a1e", "#3c9a5f", "#b8433a", "#7b5ea7", "#8c6d46", "#c05c9e", "#6d7a86"]
E = html.escape


def _num(v: float, money: bool = False) -> str:
    if money:
        return f"{v:,.2f}"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


TITLE_H, XLABEL_H = 24, 18


def _svg(width: int, height: int, title: str, body: list[str], x_label: str = "", y_label: str = "") -> str:
    """A chart: its title drawn on top (and as <title> / aria-label), the plot below it,
    and the axis labels: x_label under the plot, y_label rotated along its left edge."""
    full = TITLE_H + height + (XLABEL_H if x_label else 0)
    parts = [f'<text class="chart-title" x="0" y="16" font-weight="600" font-size="13">{E(title)}</text>',
             f'<g transform="translate(0,{TITLE_H})">', *body, "</g>"]
    if x_label:
        parts.append(f'<text class="axis-label" x="{width / 2:.0f}" y="{full - 4}" text-anchor="middle" '
                     f'font-size="11" fill="#4a5561">{E(x_label)}</text>')
    if y_label:
        mid = TITLE_H + height / 2
        parts.append(f'<text class="axis-label" x="11" y="{mid:.0f}" text-anchor="middle" font-size="11" '
                     f'fill="#4a5561" transform="rotate(-90 11 {mid:.0f})">{E(y_label)}</text>')
    return (f'<svg class="chart" width="{width}" height="{full}" '
            f'viewBox="0 0 {width} {full}" role="img" aria-label="{E(title)}"><title>{E(title)}</title>'
            + "".join(parts) + "</svg>")


def _empty(title: str, width=640) -> str:
    return _svg(width, 40, title, ['<rect class="frame" x="0" y="0" width="100%" height="40" fill="#f4f5f7"/>',
                                   '<text x="12" y="25" fill="#666">no data for this chart</text>'])


def bar_chart(items: list[tuple[str, float]], title: str, money=False, width=640, color=PALETTE[0],
              x_label: str = "", y_label: str = "") -> str:
    """Horizontal bars; negative values drawn by magnitude in red, with their sign in the label.
    x_label names the bars' values, y_label what the bars are."""
    if not items:
        return _empty(title, width)
    row, label_w, value_w = 24, 170, 110
    height = row * len(items) + 10
    top = max(abs(float(v)) for _, v in items) or 1.0
    span = width - label_w - value_w - 10
    body = []
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = max(abs(float(v)) / top * span, 1.0 if v else 0.0)
        fill = "#b8433a" if float(v) < 0 else color
        body.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{E(str(label))}</text>')
        body.append(f'<rect class="mark" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" fill="{fill}">'
                    f'<title>{E(str(label))}: {_num(float(v), money)}</title></rect>')
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{_num(float(v), money)}</text>')
    return _svg(width, height, title, body, x_label, y_label)


def stacked_bars(rows: list[tuple[str, dict]], series: list[str], title: str, width=640,
                 x_label: str = "", y_label: str = "") -> str:
    """One horizontal 100 % bar per row, split by series, with a legend."""
    rows = [(k, v) for k, v in rows if sum(v.values())]
    if not rows:
        return _empty(title, width)
    row, label_w = 26, 120
    span = width - label_w - 60
    body = []
    for j, s in enumerate(series):
        x = label_w + j * 110
        body.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
                    f'<text x="{x + 16}" y="15">{E(s)}</text>')
    for i, (label, counts) in enumerate(rows):
        y = 26 + i * row
        total = sum(counts.values())
        x = float(label_w)
        body.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{E(label)}</text>')
        for j, s in enumerate(series):
            n = counts.get(s, 0)
            if not n:
                continue
            w = n / total * span
            body.append(f'<rect class="mark" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                        f'fill="{PALETTE[j % len(PALETTE)]}"><title>{E(label)} · {E(s)}: {n:,} '
                        f'({n / total:.0%})</title></rect>')
            if w > 28:
                body.append(f'<text x="{x + 4:.1f}" y="{y + 16}" fill="#fff">{n:,}</text>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{total:,}</text>')
    return _svg(width, 30 + row * len(rows), title, body, x_label, y_label)


def line_chart(points: list[tuple[str, float | None]], title: str, width=640, height=200, percent=False,
               color=PALETTE[0], x_label: str = "", y_label: str = "", incomplete_note: str = "") -> str:
    """A daily line. A value of None is a day without complete data: no point is drawn, the
    line breaks, and the day's column is shaded and marked as incomplete."""
    if not any(v is not None for _, v in points):
        return _empty(title, width)
    left, right, top, bottom = 62, 15, 12, 28
    vals = [None if v is None else float(v) for _, v in points]
    hi = max(v for v in vals if v is not None) or 1.0
    pw, ph = width - left - right, height - top - bottom
    n = len(points)

    def xy(i, v):
        x = left + (pw * i / (n - 1) if n > 1 else pw / 2)
        return x, top + ph - (v / hi) * ph

    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>']
    step = pw / (n - 1) if n > 1 else pw
    missing = [i for i, v in enumerate(vals) if v is None]
    for i in missing:
        x, _ = xy(i, 0)
        body.append(f'<rect class="incomplete" x="{x - step / 2:.1f}" y="{top}" width="{step:.1f}" height="{ph}" '
                    f'fill="#f1e9d2"><title>{E(points[i][0])}: incomplete{": " + E(incomplete_note) if incomplete_note else ""}'
                    '</title></rect>')
    if missing:
        x0, _ = xy(missing[0], 0)
        body.append(f'<text x="{x0:.1f}" y="{top + 12}" font-size="10" fill="#8a6d00">incomplete</text>')
    for k in range(5):
        v = hi * k / 4
        y = top + ph - ph * k / 4
        lab = f"{v:.0%}" if percent else f"{v:,.2f}"
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e3e5e8"/>'
                    f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{lab}</text>')
    segment: list[str] = []
    for i, v in enumerate(vals + [None]):
        if v is None:
            if segment:
                body.append(f'<polyline class="mark" points="{" ".join(segment)}" fill="none" stroke="{color}" '
                            'stroke-width="2"/>')
            segment = []
            continue
        x, y = xy(i, v)
        segment.append(f"{x:.1f},{y:.1f}")
    for i, (lab, v) in enumerate(points):
        if v is not None:
            x, y = xy(i, float(v))
            body.append(f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                        f'<title>{E(lab)}: {(f"{float(v):.1%}" if percent else f"{float(v):,.3f}")}</title></circle>')
        if i % max(1, n // 6) == 0 or i == n - 1:
            x, _ = xy(i, 0)
            body.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" font-size="10">{E(lab)}</text>')
    return _svg(width, height, title, body, x_label, y_label)


def heatmap(rows: list[str], cols: list[str], cells: dict, title: str, width=640,
            x_label: str = "", y_label: str = "") -> str:
    """Grid of rows × cols; a cell value of None is shown as suppressed."""
    vals = [float(v) for v in cells.values() if v is not None]
    if not rows or not cols or not vals:
        return _empty(title, width)
    hi = max(vals) or 1.0
    label_w, head = 90, 24
    cw = (width - label_w) / len(cols)
    ch = 30
    body = []
    for j, c in enumerate(cols):
        body.append(f'<text x="{label_w + cw * j + cw / 2:.1f}" y="16" text-anchor="middle">{E(c)}</text>')
    for i, r in enumerate(rows):
        y = head + i * ch
        body.append(f'<text x="{label_w - 6}" y="{y + 19}" text-anchor="end">{E(r)}</text>')
        for j, c in enumerate(cols):
            v = cells.get((r, c))
            x = label_w + cw * j
            if v is None:
                body.append(f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1}" width="{cw - 2:.1f}" height="{ch - 2}" '
                            f'fill="#eceef1"><title>{E(r)} · {E(c)}: suppressed (small cell)</title></rect>'
                            f'<text x="{x + cw / 2:.1f}" y="{y + 19}" text-anchor="middle" fill="#888">–</text>')
                continue
            a = 0.12 + 0.88 * float(v) / hi
            body.append(f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1}" width="{cw - 2:.1f}" height="{ch - 2}" '
                        f'fill="#2f6db5" fill-opacity="{a:.2f}"><title>{E(r)} · {E(c)}: {float(v):,.2f}</title></rect>'
                        f'<text x="{x + cw / 2:.1f}" y="{y + 19}" text-anchor="middle" '
                        f'fill="{"#fff" if a > 0.55 else "#123"}">{float(v):,.0f}</text>')
    return _svg(width, head + ch * len(rows) + 4, title, body, x_label, y_label)


# ---------------------------------------------------------------- HTML

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC",
 "PingFang SC","Hiragino Sans GB","Microsoft YaHei","WenQuanYi Micro Hei","Noto Sans CJK JP",sans-serif;
 color:#1d232b;margin:0;background:#f6f7f9}
main{max-width:1060px;margin:0 auto;padding:20px 24px 60px;background:#fff}
h1{font-size:24px;margin:.2em 0} h2{font-size:18px;margin:1.6em 0 .5em;border-bottom:1px solid #dde1e6;padding-bottom:4px}
h3{font-size:15px;margin:1.2em 0 .4em}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-size:13px;vertical-align:middle}
.published{background:#2e7d4f}.failed{background:#b3261e}.preview{background:#8a6d00}.unchanged{background:#4a6072}
.banner{border-radius:6px;padding:12px 16px;margin:14px 0}
.banner.fail{background:#fdecea;border:2px solid #b3261e}.banner.warn{background:#fff7e0;border:1px solid #e0b400}
.banner.ok{background:#e9f5ee;border:1px solid #2e7d4f}
.banner h2{border:0;margin:0 0 6px;color:#b3261e}
pre{background:#f4f5f7;padding:8px 10px;overflow-x:auto;white-space:pre-wrap;font-size:12px;border-radius:4px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border-bottom:1px solid #e3e5e8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f5f7} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.sum td{font-weight:600;border-top:1px solid #9aa3ad}
.okc{color:#2e7d4f;font-weight:600}.bad{color:#b3261e;font-weight:700}
tr.fail td{background:#fdecea}
.meta{color:#4a5561;font-size:13px} .meta code{font-size:12px}
nav a{margin-right:12px;font-size:13px;color:#2f6db5}
.grid{display:grid;grid-template-columns:1fr;gap:8px}
svg.chart{display:block;max-width:100%;height:auto;font-size:12px;margin:4px 0 14px}
.note{color:#5f6b77;font-size:12px}
@media print{nav{display:none} body{background:#fff}}
"""

BIN_LABELS = ["< 0 (debt)", "0 – 10", "10 – 100", "100 – 500", "500 – 1,000", "1,000 – 5,000",
              "5,000 – 20,000", "≥ 20,000"]


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset(), classes: list[str] | None = None) -> str:
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"n" if i in numeric else ""}">{E(h)}</th>' for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for k, r in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="{"n" if i in numeric else ""}">{v if isinstance(v, _Raw) else E(_fmt(v))}</td>'
            for i, v in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return f"{v:,.2f}" if v.as_tuple().exponent == -2 else f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def render_html(warehouse: Path, state: dict, data: dict | None = None) -> str:
    if data is None:
        try:
            data = collect(warehouse, state)
        except Exception as exc:  # noqa: BLE001 - the report must exist even when the warehouse cannot be read
            data = {"errors": {"warehouse": str(exc)}}
    req = state.get("request") or {}
    plan = state.get("plan") or {}
    month = req.get("month", "unknown")
    status = state.get("status") or "failed"
    attempt = state.get("attempt_id", "attempt")
    src = data.get("source")
    parts: list[str] = []
    add = parts.append

    add(f'<header><h1>Settlement {E(month)} <span class="badge {E(status)}">{E(status.upper())}</span></h1>')
    add('<p class="meta">'
        f'attempt <code>{E(attempt)}</code> · run id <code>{E(str(plan.get("run_id", "-")))}</code><br>'
        f'started {E(str(state.get("started_at", "")))} · finished {E(str(state.get("finished_at", "")))} · '
        f'triggered by {E(str(req.get("triggered_by", "")))}<br>'
        f'cutoff {E(str(plan.get("cutoff", "-")))} · input files {E(str(plan.get("input_files", "-")))} · '
        f'input fingerprint <code>{E((plan.get("input_fingerprint") or "")[:16])}</code></p></header>')
    add('<nav><a href="#reconciliation">Reconciliation</a><a href="#checks">Checks</a><a href="#payouts">Payouts</a>'
        '<a href="#clawbacks">Clawbacks</a><a href="#buyers">Buyers</a><a href="#groups">Groups</a>'
        '<a href="#top">Top</a><a href="#inputs">Inputs</a></nav>')

    if status == "failed":
        add('<section class="banner fail" id="why"><h2>Why it failed — nothing was published</h2>')
        add(f"<pre>{E(scrub(state.get('error') or 'the run stopped without an error message; see the .json state'))}</pre>")
        add(f"<p><strong>What to do next:</strong> {E(next_steps(state))}</p></section>")
    elif status == "preview":
        add('<section class="banner warn"><strong>PREVIEW — nothing was published.</strong> '
            f"The figures below are this run's candidate tables. {E(next_steps(state))}</section>")
    elif status == "unchanged":
        add(f'<section class="banner ok">{E(plan.get("message") or "")} The figures below are the published month.</section>')
    else:
        add(f'<section class="banner ok"><strong>Published.</strong> {E(next_steps(state))}</section>')
    if req.get("reopen"):
        add(f'<p class="banner warn">REOPEN, reason: {E(req.get("reason") or "")}</p>')
    if req.get("accept_suspense"):
        add(f'<p class="banner warn">Suspense above the limit accepted by finance: {E(req.get("accept_suspense_reason") or "")}</p>')
    if src is not None and not src["published"]:
        add('<p class="banner warn">The figures below come from the candidate tables of this run '
            '(<code>settlement_build</code>): they were <strong>not published</strong>.</p>')
    elif src is None:
        add('<p class="note">No figures: this attempt produced no candidate tables and the month is not published.</p>')

    # reconciliation
    add('<section id="reconciliation"><h2>Totals and reconciliation</h2>')
    rec = reconciliation(data) if src is not None else []
    if rec:
        body, classes = [], []
        for r in rec:
            mark = "" if r["ok"] is None else ("✓" if r["ok"] else f"✗ tables say {r['check']:,.2f}")
            body.append([r["sign"], r["label"], r["amount"], r["note"],
                         _Raw(f'<span class="{"okc" if r["ok"] else "bad"}">{E(mark)}</span>') if mark else ""])
            classes.append(("fail " if r["ok"] is False else "") + ("sum" if r["sign"] == "=" else ""))
        add(_table(["", "from lines to what is paid", "CNY", "", "adds up"], body, {2}, classes))
        bad = [r for r in rec if r["ok"] is False]
        add(f'<p class="{"bad" if bad else "okc"}">'
            + (f"{len(bad)} line(s) of the reconciliation do NOT add up." if bad else
               "Every subtotal equals the figure read from the ledger and the payouts.") + "</p>")
    elif "ledger" in data.get("errors", {}):
        add(f"<p class='bad'>could not read the ledger: {E(data['errors']['ledger'])}</p>")
    else:
        add("<p class='note'>No reconciliation: no ledger for this attempt.</p>")
    t = data.get("totals") or {}
    if t and t.get("suspense_lines") is not None:
        ratio = t.get("suspense_ratio")
        add(f"<p>Suspense: {t.get('suspense_lines'):,} lines, base {_fmt(t.get('suspense_base'))} CNY"
            f" (ratio {float(ratio or 0):.4%} of settled + suspense base; limit 0.5 %).</p>")
    funnel = funnel_rows(t)
    if funnel:
        add('<h3 id="funnel">Order-line funnel: every delivered line, once</h3>')
        body = [[label, n] for label, n in funnel[:-1]] + [[funnel[-1][0], funnel[-1][1]]]
        add(_table(["order lines", "lines"], body, {1}, [""] * (len(funnel) - 1) + ["sum"]))
        parts_sum = sum(n for _, n in funnel[:-1])
        ok = parts_sum == funnel[-1][1]
        add(f'<p class="{"okc" if ok else "bad"}">'
            + ("The buckets add up to the lines delivered." if ok else
               f"The buckets add up to {parts_sum:,}, NOT to the lines delivered.") + "</p>")
        if t.get("orphan_events") is not None:
            add(f"<p class='note'>Besides: {t['orphan_events']:,} order events of lines never delivered "
                "(orphan events, before the cutoff).</p>")
    if data.get("suspense"):
        add(_table(["suspense reason", "lines", "base"], [[r["reason"], r["lines"], r["base"]] for r in data["suspense"]], {1, 2}))
    if data.get("status_rows"):
        add("<h3>Payout rows by status</h3>")
        add(_table(["status", "promoters", "gross due", "net paid", "tax", "carried out", "forfeited"],
                   [[r["status"], r["promoters"], r["gross_due"], r["net_paid"], r["tax"], r["carried_out"], r["forfeited"]]
                    for r in data["status_rows"]], {1, 2, 3, 4, 5, 6}))
    add("</section>")

    # checks
    add('<section id="checks"><h2>Checks</h2>')
    gate = state.get("gate")
    inv = (gate or {}).get("invariants")
    if inv is None and t.get("checks"):
        try:
            inv = (json.loads(t["checks"]) or {}).get("invariants")
            add("<p class='note'>Checks of the published run (this attempt did not rerun them).</p>")
        except (TypeError, ValueError):
            inv = None
    if inv:
        failed = {c["check"]: c for c in (gate or {}).get("failed_checks") or []}
        nbad = sum(1 for i in inv if i["violations"])
        add(f'<p class="{"bad" if nbad else "okc"}">{len(inv) - nbad} of {len(inv)} invariants hold'
            + (f"; {nbad} FAILED." if nbad else ".") + "</p>")
        rows, classes = [], []
        for i in sorted(inv, key=lambda i: (i["violations"] == 0, i["check"])):
            f = failed.get(i["check"], {})
            rows.append([i["check"], i["violations"], "pass" if i["violations"] == 0 else "FAIL",
                         f.get("description", ""), scrub(f.get("examples", ""))[:600]])
            classes.append("fail" if i["violations"] else "")
        add(_table(["invariant", "violations", "outcome", "what it means", "examples"], rows, {1}, classes))
    else:
        add("<p class='note'>The checks did not run in this attempt (it stopped before the quality gate, "
            "or there was nothing to settle).</p>")
    if gate and gate.get("results"):
        res = gate["results"]
        nbad = sum(1 for r in res if not r["success"])
        add(f"<h3>Great Expectations: {len(res) - nbad} passed, {nbad} failed</h3>")
        rows, classes = [], []
        for r in sorted(res, key=lambda r: r["success"]):
            col = r["column"] if not isinstance(r["column"], list) else ", ".join(map(str, r["column"]))
            rows.append([r["suite"], r["expectation"], str(col or "")[:80], "pass" if r["success"] else "FAIL",
                         r.get("unexpected_count") or 0,
                         scrub("; ".join(r.get("examples") or []) or (r.get("observed") if not r["success"] else "") or "")[:300]
                         + (f" (error: {scrub(r['error'])})" if r.get("error") else "")])
            classes.append("" if r["success"] else "fail")
        add(_table(["suite", "expectation", "column", "outcome", "unexpected", "examples"], rows, {4}, classes))
    build = state.get("build") or {}
    if build and not build.get("ok", True):
        add("<h3>dbt failures</h3><ul>")
        for f in build.get("failures", []):
            add(f"<li><code>{E(f['node'])}</code>: {E(scrub(f['message'][:800]))}")
            exs = [{k: v for k, v in ex.items() if not re.search("buyer|phone", k, re.IGNORECASE)} for ex in f.get("examples", [])]
            if exs:
                add(f"<pre>{E(scrub(chr(10).join(map(str, exs))))}</pre>")
            add("</li>")
        add("</ul>")
    add("</section>")

    # charts
    if src is not None:
        add('<section id="payouts"><h2>Payouts</h2><div class="grid">')
        dist = {r["bin"]: r["n"] for r in data.get("distribution") or []}
        add("<h3>Payout distribution (promoters by gross due, CNY)</h3>")
        add(bar_chart([(BIN_LABELS[b], dist.get(b, 0)) for b in range(len(BIN_LABELS))],
                      "Promoters by gross due", x_label="promoters (payout rows)", y_label="gross due, CNY"))
        for key, name, series in (("tier_mix", "tier", ["T1", "T2", "T3"]),
                                  ("status_mix", "status", ["paid", "below_threshold", "held", "debt", "forfeited"])):
            mix: dict = {}
            for r in data.get(key) or []:
                mix.setdefault(r["platform"], {})[r[name]] = r["n"]
            add(f"<h3>{name.capitalize()} mix by platform (payout rows)</h3>")
            add(stacked_bars(sorted(mix.items()), series, f"{name} mix by platform",
                             x_label=f"share of the platform's payout rows by {name} (count in the bar)",
                             y_label="platform"))
        add("</div></section>")

        add('<section id="clawbacks"><h2>Clawbacks</h2>')
        cl = data.get("clawbacks") or []
        add("<p class='note'>Late refunds and cancels of lines settled in earlier months, "
            "by the month the line was first settled and level.</p>")
        add(bar_chart([(f"{r['line_month']} · level {r['level']}", r["amount"]) for r in cl],
                      "Clawback amounts", money=True, x_label="clawback amount, CNY",
                      y_label="month first settled · level"))
        if cl:
            add(_table(["line first settled", "level", "postings", "amount"],
                       [[r["line_month"], r["level"], r["postings"], r["amount"]] for r in cl], {2, 3}))
        add("</section>")

        add('<section id="buyers"><h2>GMV by buyer city tier × gender</h2>')
        demo = data.get("demographics")
        if demo and demo["cells"]:
            cells_rows = demo["cells"]
            tiers = sorted({r["city_tier"] for r in cells_rows})
            genders = [g for g in ("F", "M", "U", "?") if any(r["gender"] == g for r in cells_rows)]
            cells = {(f"tier {r['city_tier']}", r["gender"]): (None if r["suppressed"] else r["gmv"]) for r in cells_rows}
            add(heatmap([f"tier {x}" for x in tiers], genders, cells, "GMV by buyer city tier and gender",
                        x_label="buyer gender", y_label="buyer city tier"))

            def shown(r):
                return ["suppressed", "", "", ""] if r["suppressed"] else [r["buyers"], r["orders"], r["gmv"], r["aov"]]

            rows = [[f"tier {r['city_tier']}", r["gender"]] + shown(r) for r in cells_rows]
            if demo["total"] is not None:
                rows.append(["all", "all"] + shown(demo["total"]))
            add(_table(["city tier", "gender", "buyers", "orders", "GMV", "AOV"], rows, {2, 3, 4, 5},
                       [""] * len(cells_rows) + ["sum"] * (demo["total"] is not None)))
            add(f"<p class='note'>Attributed orders placed in {E(month)}, from the analytics mart "
                "<code>marts.buyer_demographics_monthly</code> as it was last refreshed (paid amount before refunds). "
                "Its small-cell suppression applies: cells of fewer than 10 buyers are hidden, and further cells (or "
                "the total) wherever a hidden cell could be computed from the others. No buyer is shown individually.</p>")
        elif "demographics" in data.get("errors", {}):
            add(f"<p class='note'>No buyer figures: {E(data['errors']['demographics'])}.</p>")
        else:
            add(f"<p class='note'>No buyer figures: the analytics marts have no rows for {E(month)} in this warehouse "
                "(refresh them with <code>supernova marts</code> or the analytics_marts DAG, then run the report again).</p>")
        add("</section>")

        add('<section id="groups"><h2>Groups: orders per group per day and dead groups (僵死群)</h2>')
        act = data.get("activity")
        if act and act["days"]:
            by_day = {r["d"]: r for r in act["days"]}
            last = act["last_day"]
            span = [act["start"] + timedelta(days=i) for i in range((act["end"] - act["start"]).days + 1)]
            complete = [d for d in span if d in by_day and (last is None or d <= last)]
            note = f"the marts were last refreshed with data up to {last}" if last else "not in the marts"

            def series(f):
                return [(str(d)[5:], f(by_day[d]) if d in complete else None) for d in span]

            add(line_chart(series(lambda r: (r["orders"] / r["groups"]) if r["groups"] else 0.0),
                           "Orders per existing group per day", x_label="order date (month-day)",
                           y_label="attributed orders per group", incomplete_note=note))
            add(line_chart(series(lambda r: (r["dead"] / r["groups"]) if r["groups"] else 0.0),
                           "Dead-group rate", percent=True, color=PALETTE[3], x_label="as-of date (month-day)",
                           y_label="dead groups / existing groups", incomplete_note=note))
            end = by_day[complete[-1]] if complete else None
            if end:
                rate = end["dead"] / end["groups"] if end["groups"] else 0
                add(f"<p>On {E(str(complete[-1]))}: {end['groups']:,} groups, {end['dead']:,} dead "
                    f"(<strong>{rate:.1%}</strong>); {sum(by_day[d]['orders'] for d in complete):,} attributed orders "
                    "of the groups in the month.</p>")
            if len(complete) < len(span):
                add(f"<p class='note'>Days after {E(str(complete[-1]) if complete else '-')} are marked incomplete "
                    f"({E(note)}).</p>")
            add("<p class='note'>From the analytics marts (<code>marts.group_activity_summary</code>, built on "
                "<code>group_status</code>): every attributed order of a group by its order date, whether its lines "
                "are settled yet or not. Dead (僵死群) as in group_status: no attributed order in the 30 days ending "
                "that day (or never, for a group created 30 or more days before).</p>")
        elif "activity" in data.get("errors", {}):
            add(f"<p class='note'>No group figures: {E(data['errors']['activity'])}.</p>")
        else:
            add(f"<p class='note'>No group figures: the analytics marts have no rows for {E(month)} in this warehouse "
                "(refresh them with <code>supernova marts</code> or the analytics_marts DAG, then run the report again).</p>")
        add("</section>")

        add('<section id="top"><h2>Top promoters and groups</h2>')
        tp = data.get("top_promoters") or []
        add("<h3>Top 10 promoters by gross due</h3>")
        add(bar_chart([(r["promoter_id"], r["gross_due"]) for r in tp], "Top promoters by gross due", money=True,
                      x_label="gross due, CNY", y_label="promoter"))
        if tp:
            add(_table(["promoter", "platform", "tier", "status", "level 1", "level 2", "tier bonus", "clawbacks",
                        "gross due", "tax", "net paid"],
                       [[r[k] for k in ("promoter_id", "platform", "tier", "status", "level1_amount", "level2_amount",
                                        "tier_bonus", "clawback_amount", "gross_due", "tax_withheld", "net_paid")] for r in tp],
                       set(range(4, 11))))
        tg = data.get("top_groups") or []
        add("<h3>Top 10 groups by GMV (lines first settled in this run)</h3>")
        add(bar_chart([(r["group_id"], r["gmv"]) for r in tg], "Top groups by GMV", money=True, color=PALETTE[2],
                      x_label="GMV of the group's lines first settled this run, CNY", y_label="group"))
        if tg:
            add(_table(["group", "promoter", "orders", "GMV", "commission accrued"],
                       [[r["group_id"], r["promoter_id"], r["orders"], r["gmv"], r["commission"]] for r in tg], {2, 3, 4}))
        add("</section>")

    add('<section id="inputs"><h2>Inputs and findings</h2>')
    ing = state.get("ingest") or {}
    if ing.get("summary"):
        add(f"<pre>{E(scrub(ing['summary']))}</pre>")
    if data.get("rejected_files"):
        add("<h3>Rejected landing files (not settled; upstream must resend)</h3>")
        add(_table(["file", "reason"], [[r["file_path"], scrub(r["reason"] or "")] for r in data["rejected_files"]]))
    if data.get("findings"):
        add("<h3>Findings (did not stop the run; rows in settlement.findings)</h3>")
        add(_table(["kind", "rows"], [[r["kind"], r["n"]] for r in data["findings"]], {1}))
    if data.get("errors"):
        add("<h3>Sections that could not be computed</h3><ul>"
            + "".join(f"<li>{E(k)}: {E(scrub(v)[:300])}</li>" for k, v in data["errors"].items()) + "</ul>")
    add(f'<p class="note">Files: {E(attempt)}.md (text), {E(attempt)}.json (raw state) next to this page.</p></section>')

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Settlement {E(month)}: {E(status)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def write_html(warehouse: Path, state: dict, path: Path) -> Path:
    path.write_text(render_html(warehouse, state), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the month's page


def _attempts(out_dir: Path) -> list[dict]:
    """Every attempt's state in a month's report folder, oldest first."""
    states = []
    for p in out_dir.glob("*.json"):
        try:
            st = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(st, dict) and st.get("attempt_id"):
            states.append(st)
    return sorted(states, key=lambda st: (str(st.get("finished_at") or st.get("started_at") or ""), st["attempt_id"]))


def write_month_index(out_dir: Path) -> Path:
    """reports/<month>/index.html, rewritten after every attempt (so it is always the
    folder's newest page): the month's published result, i.e. the page of its newest
    published attempt, with every attempt listed on top; or, while nothing is published,
    a page that says so and lists the attempts. A failed attempt never stands for the month."""
    attempts = _attempts(out_dir)
    month = out_dir.name
    published = [st for st in attempts if st.get("status") == "published"
                 and (out_dir / f"{st['attempt_id']}.html").exists()]
    rows = []
    for st in reversed(attempts):
        a = st["attempt_id"]
        text = (st.get("error") or (st.get("plan") or {}).get("message") or "").strip()
        why = scrub((text.splitlines() or [""])[0])
        mark = " (shown below)" if published and a == published[-1]["attempt_id"] else ""
        rows.append(f'<tr><td><a href="{E(a)}.html">{E(a)}</a>{E(mark)}</td><td>{E(str(st.get("status")))}</td>'
                    f'<td>{E(str(st.get("started_at") or ""))}</td><td>{E(str(st.get("finished_at") or ""))}</td>'
                    f'<td>{E(why[:200])}</td></tr>')
    listing = ('<section class="attempts" id="attempts"><h2>Attempts for this month</h2>'
               '<table><thead><tr><th>attempt</th><th>status</th><th>started</th><th>finished</th><th>message</th>'
               '</tr></thead><tbody>' + "".join(rows) + "</tbody></table></section>")
    if published:
        best = published[-1]
        page = (out_dir / f"{best['attempt_id']}.html").read_text(encoding="utf-8")
        head = (f'<section class="banner ok" id="month-status"><strong>{E(month)} is published</strong> by attempt '
                f'<code>{E(best["attempt_id"])}</code> (run <code>{E(str((best.get("plan") or {}).get("run_id", "-")))}'
                "</code>): this page is its report. Other attempts, failed ones included, are listed below it.</section>")
        page = page.replace("<main>", "<main>" + head, 1).replace("</main>", listing + "</main>", 1)
    else:
        page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>Settlement {E(month)}: not published</title><style>{CSS}</style></head><body><main>"
                f'<header><h1>Settlement {E(month)} <span class="badge failed">NOT PUBLISHED</span></h1></header>'
                f'<section class="banner warn" id="month-status">No attempt has published {E(month)} yet. '
                "Each attempt's own report is linked below.</section>" + listing + "</main></body></html>\n")
    path = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- entry point


def write_report(warehouse: Path, state: dict) -> Path:
    req = state.get("request", {})
    month = req.get("month", "unknown")
    plan = state.get("plan") or {}
    out_dir = Path(warehouse) / "reports" / month
    out_dir.mkdir(parents=True, exist_ok=True)
    attempt = state.get("attempt_id", "attempt")
    (out_dir / f"{attempt}.json").write_text(json.dumps(state, indent=2, default=str, ensure_ascii=False))
    try:
        write_html(warehouse, state, out_dir / f"{attempt}.html")
    except Exception as exc:  # noqa: BLE001 - never lose the .md because of the HTML
        (out_dir / f"{attempt}.html").write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>report error</title></head><body>"
            f"<h1>Settlement {E(month)}: {E(str(state.get('status')))}</h1><p>The HTML report could not be "
            f"built: {E(str(exc))}. See {E(attempt)}.md.</p><pre>{E(scrub(state.get('error') or ''))}</pre></body></html>",
            encoding="utf-8")

    status = state.get("status", "unknown")
    lines = [f"# Settlement {month}: {status.upper()}", ""]
    if req.get("preview"):
        lines += ["**PREVIEW** — nothing was published.", ""]
    lines += [
        f"- attempt: `{attempt}`; run id: `{plan.get('run_id', '-')}`",
        f"- started {state.get('started_at')}, finished {state.get('finished_at')}",
        f"- triggered by: {req.get('triggered_by')}",
        f"- input files: {plan.get('input_files')}; input fingerprint `{(plan.get('input_fingerprint') or '')[:16]}`",
        f"- cutoff: {plan.get('cutoff')}",
        f"- full report with charts: `{attempt}.html` (open it in a browser)",
    ]
    if req.get("reopen"):
        lines.append(f"- REOPEN, reason: {req.get('reason')}")
    if req.get("accept_suspense"):
        lines.append(f"- suspense over the limit accepted by finance: {req.get('accept_suspense_reason')}")
    if plan.get("message"):
        lines += ["", plan["message"]]
    if state.get("error"):
        lines += ["", "## Why it failed", "", "```", scrub(state["error"]), "```", "", f"Next: {next_steps(state)}"]
    ing = state.get("ingest")
    if ing:
        lines += ["", "## Ingestion", "", "```", ing.get("summary", ""), "```"]
    totals = run_totals(warehouse, plan.get("run_id")) if status == "published" else None
    if totals:
        lines += ["", "## Totals (lines first settled this month)", "", "| figure | CNY |", "|---|---:|"]
        for k in ["base_amount", "line_commission", "platform_fee", "level1_amount", "level2_amount",
                  "operator_retained", "tier_bonus_amount", "clawback_amount", "adjustment_amount",
                  "postings_amount", "gross_due", "tax_withheld", "net_paid", "carried_out",
                  "forfeited_amount", "suspense_base"]:
            lines.append(f"| {k} | {_money(totals.get(k))} |")
        lines += ["", (f"Lines settled: {totals.get('lines_settled')}; payout rows: {totals.get('payout_rows')}; "
                       f"suspense lines: {totals.get('suspense_lines')} (ratio {totals.get('suspense_ratio')})")]
        funnel = funnel_rows(totals)
        if funnel:
            lines += ["", "## Order-line funnel", "", "| order lines | lines |", "|---|---:|"]
            lines += [f"| {label} | {n:,} |" for label, n in funnel]
            lines += ["", f"Orphan events (lines never delivered): {totals.get('orphan_events')}"]
    gate = state.get("gate")
    if gate:
        lines += ["", "## Checks", "", "| check | violations |", "|---|---:|"]
        for inv in gate.get("invariants", []):
            lines.append(f"| {inv['check']} | {inv['violations']} |")
        lines += ["", "| suite | expectation | column | outcome | unexpected | examples |", "|---|---|---|---|---:|---|"]
        for r in gate.get("results", []):
            lines.append(f"| {r['suite']} | {r['expectation']} | {r['column']} | "
                         f"{'pass' if r['success'] else 'FAIL'} | {r['unexpected_count'] or 0} | "
                         f"{scrub('; '.join(r['examples']))[:200]} |")
    build = state.get("build")
    if build and not build.get("ok"):
        lines += ["", "## dbt failures", ""]
        for f in build.get("failures", []):
            lines.append(f"- `{f['node']}`: {scrub(f['message'][:500])}")
            for ex in f.get("examples", []):
                lines.append(f"  - e.g. {scrub(ex)}")
    path = out_dir / f"{attempt}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        write_month_index(out_dir)
    except Exception as exc:  # noqa: BLE001 - the attempt's own report is written; say so, do not fail the run
        (out_dir / "index-error.txt").write_text(f"index.html could not be rewritten: {exc}\n", encoding="utf-8")
    return path
