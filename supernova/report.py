"""The run report: what the run did, its totals, every check and its outcome.

Written for every attempt (published, failed, preview, unchanged) next to the outputs:
<warehouse>/reports/<month>/<attempt_id>.md (and the raw state as .json).
"""

from __future__ import annotations

import json
from pathlib import Path

from supernova.warehouse import connect, table_exists


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


def write_report(warehouse: Path, state: dict) -> Path:
    req = state.get("request", {})
    month = req.get("month", "unknown")
    plan = state.get("plan") or {}
    out_dir = Path(warehouse) / "reports" / month
    out_dir.mkdir(parents=True, exist_ok=True)
    attempt = state.get("attempt_id", "attempt")
    (out_dir / f"{attempt}.json").write_text(json.dumps(state, indent=2, default=str, ensure_ascii=False))

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
    ]
    if req.get("reopen"):
        lines.append(f"- REOPEN, reason: {req.get('reason')}")
    if req.get("accept_suspense"):
        lines.append(f"- suspense over the limit accepted by finance: {req.get('accept_suspense_reason')}")
    if plan.get("message"):
        lines += ["", plan["message"]]
    if state.get("error"):
        lines += ["", "## Why it failed", "", "```", state["error"], "```"]
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
        lines += ["", f"Lines settled: {totals.get('lines_settled')}; payout rows: {totals.get('payout_rows')}; "
                      f"suspense lines: {totals.get('suspense_lines')} (ratio {totals.get('suspense_ratio')})"]
    gate = state.get("gate")
    if gate:
        lines += ["", "## Checks", "", "| check | violations |", "|---|---:|"]
        for inv in gate.get("invariants", []):
            lines.append(f"| {inv['check']} | {inv['violations']} |")
        lines += ["", "| suite | expectation | column | outcome | unexpected | examples |", "|---|---|---|---|---:|---|"]
        for r in gate.get("results", []):
            lines.append(f"| {r['suite']} | {r['expectation']} | {r['column']} | "
                         f"{'pass' if r['success'] else 'FAIL'} | {r['unexpected_count'] or 0} | "
                         f"{'; '.join(r['examples'])[:200]} |")
    build = state.get("build")
    if build and not build.get("ok"):
        lines += ["", "## dbt failures", ""]
        for f in build.get("failures", []):
            lines.append(f"- `{f['node']}`: {f['message'][:500]}")
            for ex in f.get("examples", []):
                lines.append(f"  - e.g. {ex}")
    path = out_dir / f"{attempt}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
