"""The run report as Markdown (<attempt_id>.md): the attempt, why it failed and what to do,
the published totals and funnel, every check and dbt failure. Plain text, so built line by
line rather than from an HTML template; free text goes through `scrub`."""

from __future__ import annotations

from supernova.report.messages import next_steps, scrub
from supernova.report.reconcile import funnel_rows

TOTAL_FIGURES = [
    "base_amount",
    "line_commission",
    "platform_fee",
    "level1_amount",
    "level2_amount",
    "operator_retained",
    "tier_bonus_amount",
    "clawback_amount",
    "adjustment_amount",
    "postings_amount",
    "gross_due",
    "tax_withheld",
    "net_paid",
    "carried_out",
    "forfeited_amount",
    "suspense_base",
]


def _money(v) -> str:
    return "" if v is None else f"{v:,.2f}" if not isinstance(v, str) else v


def _header(state: dict) -> list[str]:
    req = state.get("request", {})
    plan = state.get("plan") or {}
    attempt = state.get("attempt_id", "attempt")
    lines = [
        f"# Settlement {req.get('month', 'unknown')}: {state.get('status', 'unknown').upper()}",
        "",
    ]
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
        lines.append(
            f"- suspense over the limit accepted by finance: {req.get('accept_suspense_reason')}"
        )
    if plan.get("message"):
        lines += ["", plan["message"]]
    if state.get("error"):
        lines += [
            "",
            "## Why it failed",
            "",
            "```",
            scrub(state["error"]),
            "```",
            "",
            f"Next: {next_steps(state)}",
        ]
    ing = state.get("ingest")
    if ing:
        lines += ["", "## Ingestion", "", "```", ing.get("summary", ""), "```"]
    return lines


def _totals(totals: dict | None) -> list[str]:
    if not totals:
        return []
    lines = ["", "## Totals (lines first settled this month)", "", "| figure | CNY |", "|---|---:|"]
    lines += [f"| {k} | {_money(totals.get(k))} |" for k in TOTAL_FIGURES]
    lines += [
        "",
        (
            f"Lines settled: {totals.get('lines_settled')}; payout rows: {totals.get('payout_rows')}; "
            f"suspense lines: {totals.get('suspense_lines')} (ratio {totals.get('suspense_ratio')})"
        ),
    ]
    funnel = funnel_rows(totals)
    if funnel:
        lines += ["", "## Order-line funnel", "", "| order lines | lines |", "|---|---:|"]
        lines += [f"| {label} | {n:,} |" for label, n in funnel]
        lines += ["", f"Orphan events (lines never delivered): {totals.get('orphan_events')}"]
    return lines


def _checks(gate: dict | None) -> list[str]:
    if not gate:
        return []
    lines = ["", "## Checks", "", "| check | violations |", "|---|---:|"]
    lines += [f"| {inv['check']} | {inv['violations']} |" for inv in gate.get("invariants", [])]
    lines += [
        "",
        "| suite | expectation | column | outcome | unexpected | examples |",
        "|---|---|---|---|---:|---|",
    ]
    for r in gate.get("results", []):
        lines.append(
            f"| {r['suite']} | {r['expectation']} | {r['column']} | "
            f"{'pass' if r['success'] else 'FAIL'} | {r['unexpected_count'] or 0} | "
            f"{scrub('; '.join(r['examples']))[:200]} |"
        )
    return lines


def _dbt_failures(build: dict | None) -> list[str]:
    if not build or build.get("ok"):
        return []
    lines = ["", "## dbt failures", ""]
    for f in build.get("failures", []):
        lines.append(f"- `{f['node']}`: {scrub(f['message'][:500])}")
        lines += [f"  - e.g. {scrub(ex)}" for ex in f.get("examples", [])]
    return lines


def render_markdown(state: dict, totals: dict | None) -> str:
    """The .md report; `totals` is the published run's settlement_runs row (None otherwise)."""
    lines = (
        _header(state)
        + _totals(totals)
        + _checks(state.get("gate"))
        + _dbt_failures(state.get("build"))
    )
    return "\n".join(lines) + "\n"
