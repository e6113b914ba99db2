"""Writes an attempt's report files next to the outputs: <warehouse>/reports/<month>/
<attempt_id>.json (the raw state), .html (the page; an error page if it cannot be built)
and .md, then rewrites the month's index.html."""

from __future__ import annotations

import json
from pathlib import Path

from supernova.report.data import run_totals
from supernova.report.markdown import render_markdown
from supernova.report.month_index import write_month_index
from supernova.report.render import render_error_page, write_html


def write_report(warehouse: Path, state: dict) -> Path:
    month = state.get("request", {}).get("month", "unknown")
    plan = state.get("plan") or {}
    out_dir = Path(warehouse) / "reports" / month
    out_dir.mkdir(parents=True, exist_ok=True)
    attempt = state.get("attempt_id", "attempt")
    (out_dir / f"{attempt}.json").write_text(
        json.dumps(state, indent=2, default=str, ensure_ascii=False)
    )
    try:
        write_html(warehouse, state, out_dir / f"{attempt}.html")
    except Exception as exc:  # noqa: BLE001 - never lose the .md because of the HTML
        (out_dir / f"{attempt}.html").write_text(render_error_page(state, exc), encoding="utf-8")
    totals = (
        run_totals(warehouse, plan.get("run_id"), state.get("engine"))
        if state.get("status", "unknown") == "published"
        else None
    )
    path = out_dir / f"{attempt}.md"
    path.write_text(render_markdown(state, totals), encoding="utf-8")
    try:
        write_month_index(out_dir)
    except Exception as exc:  # noqa: BLE001 - the attempt's own report is written; say so, do not fail the run
        (out_dir / "index-error.txt").write_text(
            f"index.html could not be rewritten: {exc}\n", encoding="utf-8"
        )
    return path
