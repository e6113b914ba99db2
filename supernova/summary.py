"""The short summary a person reads at the end of `supernova settle`."""

from __future__ import annotations

from pathlib import Path

from supernova.report import run_totals
from supernova.settle import RunState


def print_summary(warehouse: Path, attempt_id: str, dag_state: str) -> None:
    state = RunState(Path(warehouse), attempt_id).load()
    month = (state.get("request") or {}).get("month", "?")
    status = state.get("status") or "failed"
    plan = state.get("plan") or {}
    print()
    print(f"=== settlement {month}: {status.upper()} (DAG run {dag_state.split('.')[-1]}) ===")
    if state.get("error"):
        print(state["error"])
    if plan.get("message"):
        print(plan["message"])
    totals = run_totals(Path(warehouse), plan.get("run_id")) if status == "published" else None
    if totals:
        print(f"run id            {totals['run_id']}")
        print(f"lines settled     {totals['lines_settled']:>14,}   base {totals['base_amount']:>16,.2f}")
        print(f"commission        {totals['line_commission']:>16,.2f}   platform fee {totals['platform_fee']:>14,.2f}")
        print(f"level 1 / level 2 {totals['level1_amount']:>16,.2f} / {totals['level2_amount']:,.2f}"
              f"   operator retained {totals['operator_retained']:,.2f}")
        print(f"tier bonus        {totals['tier_bonus_amount']:>16,.2f}   clawbacks {totals['clawback_amount']:,.2f}")
        print(f"payout rows       {totals['payout_rows']:>14,}   net paid {totals['net_paid']:,.2f}"
              f"   tax {totals['tax_withheld']:,.2f}   carried out {totals['carried_out']:,.2f}")
        print(f"suspense          {totals['suspense_lines']:>14,} lines, base {totals['suspense_base']:,.2f}"
              f" (ratio {float(totals['suspense_ratio']):.4%})")
    gate = state.get("gate")
    if gate:
        print(f"checks            {gate.get('checks_passed')} expectations passed, {gate.get('checks_failed')} failed; "
              f"{sum(1 for i in gate.get('invariants', []) if i['violations'] == 0)}/"
              f"{len(gate.get('invariants', []))} invariants hold")
    if status == "published":
        print(f"outputs           {Path(warehouse) / 'supernova.duckdb'} (schema settlement)")
        print(f"                  {Path(warehouse) / 'parquet' / 'settlement'}/<table>/settlement_month={month}/")
    report = Path(warehouse) / "reports" / month / f"{attempt_id}.md"
    if report.exists():
        print(f"report            {report}")
    if status == "failed":
        print("next              fix the cause above (see the report), then run the same command again.")
