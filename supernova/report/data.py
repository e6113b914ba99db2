"""The report's figures, read from the warehouse in one read-only connection.

Figures come from the published tables (`settlement.*`) for published and unchanged runs,
and from the run's candidate tables (`settlement_build.*`, labelled "not published") for
previews and runs that failed after their build. Group activity (dead groups, 僵死群) and
buyer figures are read from the analytics marts (`marts.group_activity_summary`, built on
`group_status`, and `marts.buyer_demographics_monthly`), so the report and the marts have
one definition of a dead group and one small-cell suppression. No buyer id is ever read.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from supernova import settings
from supernova.warehouse import connect, table_exists

MONTH_RE = settings.MONTH_RE
MIN_BUYERS = 10  # privacy: a buyer cell with fewer buyers is suppressed (as in the marts)


def _reader(warehouse: Path, engine: str | None):
    """Where the figures are read: the warehouse's DuckDB file, or for a Spark run an
    in-memory DuckDB over the published Parquet (supernova.spark_runs.parquet_reader)."""
    if engine == "spark":
        from supernova.spark_runs import parquet_reader

        return parquet_reader(warehouse)
    return connect(warehouse, read_only=True)


def run_totals(warehouse: Path, run_id: str | None, engine: str | None = None) -> dict | None:
    if not run_id:
        return None
    with _reader(warehouse, engine) as con:
        if not table_exists(con, "settlement", "settlement_runs"):
            return None
        cur = con.execute(
            "select * from settlement.settlement_runs where run_id = ? "
            "order by finished_at desc limit 1",
            [run_id],
        )
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None


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
    rows = _rows(
        con,
        """
        select coalesce(cast(city_tier as varchar), '?') as city_tier, coalesce(gender, '?') as gender, is_total,
               buyers, orders, gmv, aov, suppressed
        from marts.buyer_demographics_monthly where month = ?
        order by is_total, city_tier nulls last, gender nulls last""",
        [_month_days(month)[0]],
    )
    return {
        "cells": [r for r in rows if not r["is_total"]],
        "total": next((r for r in rows if r["is_total"]), None),
    }


def _marts_activity(con, month: str) -> dict | None:
    """Per day of the month: existing groups, dead groups (group_status's definition) and
    attributed orders of the groups, summed over marts.group_activity_summary; and the
    marts' last day (days after it are not in the marts yet). None when not built."""
    if not table_exists(con, "marts", "group_activity_summary"):
        return None
    start, end = _month_days(month)
    days = _rows(
        con,
        """
        select activity_date as d, sum(existing_groups) as groups, sum(dead_groups) as dead, sum(orders) as orders
        from marts.group_activity_summary where activity_date between ? and ?
        group by 1 order by 1""",
        [start, end],
    )
    last = _one(con, "select max(activity_date) as last_day from marts.group_activity_summary").get(
        "last_day"
    )
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
            return {
                "schema": "settlement",
                "published": True,
                "month": month,
                "where": f"settlement_month = '{month}'",
                "terms_where": f"first_settlement_month = '{month}'",
            }
        return None
    build = state.get("build") or {}
    if build.get("ok") and table_exists(con, "settlement_build", "payouts"):
        run_ids = {
            r["run_id"]
            for r in _rows(
                con,
                "select distinct run_id from settlement_build.payouts "
                "union select distinct run_id from settlement_build.payout_lines",
            )
        }
        if run_ids <= {plan.get("run_id")}:
            return {
                "schema": "settlement_build",
                "published": False,
                "month": month,
                "where": "true",
                "terms_where": "true",
            }
    return None


def _totals(con, state: dict, src: dict | None, month: str) -> dict | None:
    """The settlement_runs row of this attempt (recorded for failed/preview) or of the
    published run; else the candidate run totals; None when there are none."""
    totals = None
    if table_exists(con, "settlement", "settlement_runs"):
        if state.get("status") in ("published", "unchanged"):
            totals = _one(
                con,
                "select * from settlement.settlement_runs where settlement_month = ? "
                "and status = 'published' order by finished_at desc limit 1",
                [month],
            )
        elif src is not None:
            totals = _one(
                con,
                "select * from settlement.settlement_runs where attempt_id = ? "
                "order by finished_at desc limit 1",
                [state.get("attempt_id")],
            )
    if (
        src is not None
        and not totals
        and table_exists(con, "settlement_build", "settlement_run_totals")
    ):
        totals = _one(con, "select * from settlement_build.settlement_run_totals")
    return totals


def _rejected_files(con) -> list[dict]:
    if not table_exists(con, "raw", "manifest"):
        return []
    return _rows(
        con,
        "select file_path, reason from raw.manifest where status = 'rejected' "
        "order by file_path limit 50",
    )


def _relations(con, src: dict) -> dict[str, str]:
    """The attempt's payouts (P), ledger lines (L), line terms first settled (T) and every
    line's terms up to the month (TA), as subqueries over the published or candidate tables."""
    s, w, tw, month = src["schema"], src["where"], src["terms_where"], src["month"]
    if src["published"]:
        every_term = (
            f"(select * from settlement.line_terms where first_settlement_month <= '{month}')"
        )
    elif table_exists(con, "settlement", "line_terms"):
        every_term = (
            f"(select * from settlement.line_terms where first_settlement_month < '{month}' "
            f"union all by name select * from settlement_build.line_terms)"
        )
    else:
        every_term = "settlement_build.line_terms"
    return {
        "P": f"(select * from {s}.payouts where {w})",
        "L": f"(select * from {s}.payout_lines where {w})",
        "T": f"(select * from {s}.line_terms where {tw})",
        "TA": every_term,
        "s": s,
        "w": w,
    }


# The sections read from the attempt's tables: name -> (one row or many, SQL over _relations).
SECTION_SQL: dict[str, tuple[bool, str]] = {
    "ledger": (
        True,
        """
        select count(*) as postings,
          coalesce(sum(amount) filter (where kind = 'accrual' and level = 1), 0) as accrual_l1,
          coalesce(sum(amount) filter (where kind = 'accrual' and level = 2), 0) as accrual_l2,
          coalesce(sum(amount) filter (where kind = 'tier_bonus'), 0) as tier_bonus,
          coalesce(sum(amount) filter (where kind = 'clawback'), 0) as clawback,
          coalesce(sum(amount) filter (where kind = 'adjustment'), 0) as adjustment,
          coalesce(sum(amount), 0) as total
        from {L}""",
    ),
    "payout_sums": (
        True,
        """
        select count(*) as rows, coalesce(sum(carried_in), 0) as carried_in,
          coalesce(sum(level1_amount), 0) as level1, coalesce(sum(level2_amount), 0) as level2,
          coalesce(sum(tier_bonus), 0) as tier_bonus, coalesce(sum(clawback_amount), 0) as clawback,
          coalesce(sum(adjustment_amount), 0) as adjustment, coalesce(sum(gross_due), 0) as gross_due,
          coalesce(sum(tax_withheld), 0) as tax, coalesce(sum(net_paid), 0) as net_paid,
          coalesce(sum(carried_out), 0) as carried_out, coalesce(sum(forfeited_amount), 0) as forfeited
        from {P}""",
    ),
    "status_rows": (
        False,
        """
        select status, count(*) as promoters, sum(gross_due) as gross_due, sum(net_paid) as net_paid,
               sum(tax_withheld) as tax, sum(carried_out) as carried_out, sum(forfeited_amount) as forfeited
        from {P} group by 1 order by 1""",
    ),
    "distribution": (
        False,
        """
        select case when gross_due < 0 then 0 when gross_due < 10 then 1 when gross_due < 100 then 2
                    when gross_due < 500 then 3 when gross_due < 1000 then 4 when gross_due < 5000 then 5
                    when gross_due < 20000 then 6 else 7 end as bin, count(*) as n
        from {P} group by 1 order by 1""",
    ),
    "tier_mix": (False, "select platform, tier, count(*) as n from {P} group by all order by all"),
    "status_mix": (
        False,
        "select platform, status, count(*) as n from {P} group by all order by all",
    ),
    "clawbacks": (
        False,
        """
        select coalesce(t.first_settlement_month, '?') as line_month, l.level, count(*) as postings,
               sum(l.amount) as amount
        from {L} l left join {TA} t using (order_id, line_no)
        where l.kind = 'clawback' group by all order by all""",
    ),
    "top_promoters": (
        False,
        """
        select promoter_id, platform, tier, status, level1_amount, level2_amount, tier_bonus,
               clawback_amount, gross_due, tax_withheld, net_paid
        from {P} order by gross_due desc, promoter_id limit 10""",
    ),
    "top_groups": (
        False,
        """
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
        group by l.group_id order by gmv desc, l.group_id limit 10""",
    ),
}
MARTS_SECTIONS = {"demographics": _marts_demographics, "activity": _marts_activity}
TAIL_SQL = {
    "suspense": "select reason, count(*) as lines, sum(base_amount) as base "
    "from {s}.suspense where {w} group by 1 order by 2 desc",
    "findings": "select kind, count(*) as n from {s}.findings where {w} group by 1 order by 2 desc",
}


def _section(data: dict, name: str, fn) -> None:
    try:
        data[name] = fn()
    except Exception as exc:  # noqa: BLE001 - one section must not hide the others
        data["errors"][name] = str(exc)


def _sections(con, data: dict, src: dict, month: str) -> None:
    rel = _relations(con, src)
    for name, (single, sql) in SECTION_SQL.items():
        read = _one if single else _rows
        _section(data, name, lambda read=read, sql=sql: read(con, sql.format(**rel)))
    if MONTH_RE.match(month):
        for name, fn in MARTS_SECTIONS.items():
            _section(data, name, lambda fn=fn: fn(con, month))
    for name, sql in TAIL_SQL.items():
        _section(data, name, lambda sql=sql: _rows(con, sql.format(**rel)))


def collect(warehouse: Path, state: dict) -> dict:
    """Everything the HTML shows, read in one read-only connection. Sections that cannot
    be computed are reported as such instead of failing the report."""
    data: dict = {"errors": {}}
    month = (state.get("request") or {}).get("month") or ""
    engine = state.get("engine")
    if engine != "spark" and not (Path(warehouse) / "supernova.duckdb").exists():
        return data
    with _reader(warehouse, engine) as con:
        src = _source(con, state)
        data["source"] = src
        try:
            totals = _totals(con, state, src, month)
            if totals is not None:
                data["totals"] = totals
        except Exception as exc:  # noqa: BLE001 - a report section must not fail the report
            data["errors"]["totals"] = str(exc)
        _section(data, "rejected_files", lambda: _rejected_files(con))
        if src is not None:
            _sections(con, data, src, month)
            _section(
                data,
                "earnings",
                lambda: _earnings(con, month, (state.get("plan") or {}).get("run_id")),
            )
    return data


def _earnings(con, month: str, run_id: str | None) -> dict:
    """The close's reconciliation of the promoters' estimated earnings (promoter_earnings_daily)
    with what this run accrued: built with the settlement, kept in settlement_build until
    the next close, so a later re-render of an older month finds none."""
    if not run_id or not table_exists(
        con, "settlement_build", "rpt_promoter_earnings_reconciliation"
    ):
        return {}
    return _one(
        con,
        "select * from settlement_build.rpt_promoter_earnings_reconciliation "
        "where settlement_month = ? and run_id = ?",
        [month, run_id],
    )
