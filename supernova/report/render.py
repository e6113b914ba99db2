"""The run report as a self-contained HTML page (inline CSS and SVG charts, no script, no
external URL), and the month's index page, rendered from the Jinja2 templates next to this
module (autoescaped). Python prepares the figures, the charts and the rows of each table;
the markup lives in templates/."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from supernova.report.charts import PALETTE, bar_chart, heatmap, line_chart, stacked_bars
from supernova.report.data import collect
from supernova.report.messages import next_steps, scrub
from supernova.report.reconcile import earnings_reconciliation, funnel_rows, reconciliation

TEMPLATES = Path(__file__).parent / "templates"
CSS = (TEMPLATES / "report.css").read_text(encoding="utf-8")
BIN_LABELS = [
    "< 0 (debt)",
    "0 – 10",
    "10 – 100",
    "100 – 500",
    "500 – 1,000",
    "1,000 – 5,000",
    "5,000 – 20,000",
    "≥ 20,000",
]
MIX_SERIES = (
    ("tier_mix", "tier", ["T1", "T2", "T3"]),
    ("status_mix", "status", ["paid", "below_threshold", "held", "debt", "forfeited"]),
)


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


def _cell(v):
    """A table cell: markup prepared here (a check mark) as is, any other value formatted."""
    return v if isinstance(v, Markup) else _fmt(v)


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(
    cell=_cell,
    spec=format,
    scrub=scrub,
    pick=lambda rows, keys: [[r[k] for k in keys] for r in rows],
)


# ---------------------------------------------------------------- the sections' figures


def _reconciliation(data: dict, src: dict | None) -> dict | None:
    return _checked_rows(reconciliation(data) if src is not None else [])


def _checked_rows(rec: list[dict]) -> dict | None:
    """Rows of a reconciliation (label, amount, sign, check) as a table with ✓/✗ marks."""
    if not rec:
        return None
    body, classes = [], []
    for r in rec:
        mark = "" if r["ok"] is None else ("✓" if r["ok"] else f"✗ tables say {r['check']:,.2f}")
        body.append(
            [
                r["sign"],
                r["label"],
                r["amount"],
                r["note"],
                Markup('<span class="{}">{}</span>').format("okc" if r["ok"] else "bad", mark)
                if mark
                else "",
            ]
        )
        classes.append(("fail " if r["ok"] is False else "") + ("sum" if r["sign"] == "=" else ""))
    return {"rows": body, "classes": classes, "bad": sum(1 for r in rec if r["ok"] is False)}


def _invariants(state: dict, totals: dict) -> dict | None:
    """The invariants of this attempt's gate, or of the published run when it did not rerun them."""
    gate = state.get("gate") or {}
    inv, of_published = gate.get("invariants"), False
    if inv is None and totals.get("checks"):
        try:
            inv, of_published = (json.loads(totals["checks"]) or {}).get("invariants"), True
        except (TypeError, ValueError):
            inv = None
    if not inv:
        return {"of_published": of_published, "rows": []} if of_published else None
    failed = {c["check"]: c for c in gate.get("failed_checks") or []}
    rows, classes = [], []
    for i in sorted(inv, key=lambda i: (i["violations"] == 0, i["check"])):
        f = failed.get(i["check"], {})
        rows.append(
            [
                i["check"],
                i["violations"],
                "pass" if i["violations"] == 0 else "FAIL",
                f.get("description", ""),
                scrub(f.get("examples", ""))[:600],
            ]
        )
        classes.append("fail" if i["violations"] else "")
    return {
        "of_published": of_published,
        "rows": rows,
        "classes": classes,
        "total": len(inv),
        "bad": sum(1 for i in inv if i["violations"]),
    }


def _expectations(gate: dict | None) -> dict | None:
    res = (gate or {}).get("results")
    if not res:
        return None
    rows, classes = [], []
    for r in sorted(res, key=lambda r: r["success"]):
        col = r["column"] if not isinstance(r["column"], list) else ", ".join(map(str, r["column"]))
        examples = (
            "; ".join(r.get("examples") or [])
            or (r.get("observed") if not r["success"] else "")
            or ""
        )
        rows.append(
            [
                r["suite"],
                r["expectation"],
                str(col or "")[:80],
                "pass" if r["success"] else "FAIL",
                r.get("unexpected_count") or 0,
                scrub(examples)[:300]
                + (f" (error: {scrub(r['error'])})" if r.get("error") else ""),
            ]
        )
        classes.append("" if r["success"] else "fail")
    nbad = sum(1 for r in res if not r["success"])
    return {"rows": rows, "classes": classes, "passed": len(res) - nbad, "failed": nbad}


def _dbt_failures(build: dict) -> list[dict] | None:
    if not build or build.get("ok", True):
        return None
    out = []
    for f in build.get("failures", []):
        exs = [
            {k: v for k, v in ex.items() if not re.search("buyer|phone", k, re.IGNORECASE)}
            for ex in f.get("examples", [])
        ]
        out.append(
            {
                "node": f["node"],
                "message": scrub(f["message"][:800]),
                "examples": scrub(chr(10).join(map(str, exs))) if exs else "",
            }
        )
    return out


def _payout_charts(data: dict) -> list[tuple[str, Markup]]:
    dist = {r["bin"]: r["n"] for r in data.get("distribution") or []}
    charts = [
        (
            "Payout distribution (promoters by gross due, CNY)",
            bar_chart(
                [(BIN_LABELS[b], dist.get(b, 0)) for b in range(len(BIN_LABELS))],
                "Promoters by gross due",
                x_label="promoters (payout rows)",
                y_label="gross due, CNY",
            ),
        )
    ]
    for key, name, series in MIX_SERIES:
        mix: dict = {}
        for r in data.get(key) or []:
            mix.setdefault(r["platform"], {})[r[name]] = r["n"]
        charts.append(
            (
                f"{name.capitalize()} mix by platform (payout rows)",
                stacked_bars(
                    sorted(mix.items()),
                    series,
                    f"{name} mix by platform",
                    x_label=f"share of the platform's payout rows by {name} (count in the bar)",
                    y_label="platform",
                ),
            )
        )
    return [(h, Markup(svg)) for h, svg in charts]


def _clawbacks(data: dict) -> dict:
    cl = data.get("clawbacks") or []
    chart = bar_chart(
        [(f"{r['line_month']} · level {r['level']}", r["amount"]) for r in cl],
        "Clawback amounts",
        money=True,
        x_label="clawback amount, CNY",
        y_label="month first settled · level",
    )
    return {
        "chart": Markup(chart),
        "rows": [[r["line_month"], r["level"], r["postings"], r["amount"]] for r in cl],
    }


def _buyers(data: dict) -> dict | None:
    demo = data.get("demographics")
    if not (demo and demo["cells"]):
        return None
    cells_rows = demo["cells"]
    tiers = sorted({r["city_tier"] for r in cells_rows})
    genders = [g for g in ("F", "M", "U", "?") if any(r["gender"] == g for r in cells_rows)]
    cells = {
        (f"tier {r['city_tier']}", r["gender"]): (None if r["suppressed"] else r["gmv"])
        for r in cells_rows
    }
    chart = heatmap(
        [f"tier {x}" for x in tiers],
        genders,
        cells,
        "GMV by buyer city tier and gender",
        x_label="buyer gender",
        y_label="buyer city tier",
    )

    def shown(r):
        return (
            ["suppressed", "", "", ""]
            if r["suppressed"]
            else [r["buyers"], r["orders"], r["gmv"], r["aov"]]
        )

    rows = [[f"tier {r['city_tier']}", r["gender"]] + shown(r) for r in cells_rows]
    if demo["total"] is not None:
        rows.append(["all", "all"] + shown(demo["total"]))
    return {
        "chart": Markup(chart),
        "rows": rows,
        "classes": [""] * len(cells_rows) + ["sum"] * (demo["total"] is not None),
    }


def _groups(data: dict) -> dict | None:
    """Orders per group and the dead-group rate per day of the month; days the marts do not
    cover yet are marked incomplete, not drawn as zero."""
    act = data.get("activity")
    if not (act and act["days"]):
        return None
    by_day = {r["d"]: r for r in act["days"]}
    last = act["last_day"]
    span = [act["start"] + timedelta(days=i) for i in range((act["end"] - act["start"]).days + 1)]
    complete = [d for d in span if d in by_day and (last is None or d <= last)]
    note = f"the marts were last refreshed with data up to {last}" if last else "not in the marts"

    def series(f):
        return [(str(d)[5:], f(by_day[d]) if d in complete else None) for d in span]

    charts = [
        line_chart(
            series(lambda r: (r["orders"] / r["groups"]) if r["groups"] else 0.0),
            "Orders per existing group per day",
            x_label="order date (month-day)",
            y_label="attributed orders per group",
            incomplete_note=note,
        ),
        line_chart(
            series(lambda r: (r["dead"] / r["groups"]) if r["groups"] else 0.0),
            "Dead-group rate",
            percent=True,
            color=PALETTE[3],
            x_label="as-of date (month-day)",
            y_label="dead groups / existing groups",
            incomplete_note=note,
        ),
    ]
    end = by_day[complete[-1]] if complete else None
    return {
        "charts": [Markup(c) for c in charts],
        "note": note,
        "complete": len(complete) < len(span),
        "last_complete": str(complete[-1]) if complete else None,
        "end": end,
        "rate": (end["dead"] / end["groups"] if end["groups"] else 0) if end else None,
        "orders": sum(by_day[d]["orders"] for d in complete),
    }


def _top(data: dict) -> dict:
    tp = data.get("top_promoters") or []
    tg = data.get("top_groups") or []
    keys = (
        "promoter_id",
        "platform",
        "tier",
        "status",
        "level1_amount",
        "level2_amount",
        "tier_bonus",
        "clawback_amount",
        "gross_due",
        "tax_withheld",
        "net_paid",
    )
    return {
        "promoter_chart": Markup(
            bar_chart(
                [(r["promoter_id"], r["gross_due"]) for r in tp],
                "Top promoters by gross due",
                money=True,
                x_label="gross due, CNY",
                y_label="promoter",
            )
        ),
        "promoters": [[r[k] for k in keys] for r in tp],
        "group_chart": Markup(
            bar_chart(
                [(r["group_id"], r["gmv"]) for r in tg],
                "Top groups by GMV",
                money=True,
                color=PALETTE[2],
                y_label="group",
                x_label="GMV of the group's lines first settled this run, CNY",
            )
        ),
        "groups": [
            [r["group_id"], r["promoter_id"], r["orders"], r["gmv"], r["commission"]] for r in tg
        ],
    }


def _context(state: dict, data: dict) -> dict:
    req = state.get("request") or {}
    src = data.get("source")
    totals = data.get("totals") or {}
    funnel = funnel_rows(totals)
    ctx = {
        "css": Markup(CSS),
        "state": state,
        "req": req,
        "plan": state.get("plan") or {},
        "month": req.get("month", "unknown"),
        "status": state.get("status") or "failed",
        "attempt": state.get("attempt_id", "attempt"),
        "src": src,
        "data": data,
        "t": totals,
        "errors": data.get("errors", {}),
        "next_steps": next_steps(state),
        "rec": _reconciliation(data, src),
        "funnel": funnel,
        "earnings": _checked_rows(earnings_reconciliation(data.get("earnings") or {})),
        "funnel_sum": sum(n for _, n in funnel[:-1]),
        "invariants": _invariants(state, totals),
        "expectations": _expectations(state.get("gate")),
        "dbt_failures": _dbt_failures(state.get("build") or {}),
        "ingest_summary": (state.get("ingest") or {}).get("summary"),
        "rejected_files": [
            [r["file_path"], scrub(r["reason"] or "")] for r in data.get("rejected_files") or []
        ],
    }
    if src is not None:
        ctx.update(
            payout_charts=_payout_charts(data),
            clawbacks=_clawbacks(data),
            buyers=_buyers(data),
            groups=_groups(data),
            top=_top(data),
        )
    return ctx


def render_html(warehouse: Path, state: dict, data: dict | None = None) -> str:
    if data is None:
        try:
            data = collect(warehouse, state)
        except Exception as exc:  # noqa: BLE001 - the report must exist even when the warehouse cannot be read
            data = {"errors": {"warehouse": str(exc)}}
    return ENV.get_template("report.html.j2").render(_context(state, data))


def write_html(warehouse: Path, state: dict, path: Path) -> Path:
    path.write_text(render_html(warehouse, state), encoding="utf-8")
    return path


def render_error_page(state: dict, exc: Exception) -> str:
    """The page written instead when the report itself could not be built."""
    return ENV.get_template("report_error.html.j2").render(
        month=(state.get("request") or {}).get("month", "unknown"),
        status=str(state.get("status")),
        attempt=state.get("attempt_id", "attempt"),
        exc=str(exc),
        error=scrub(state.get("error") or ""),
    )
