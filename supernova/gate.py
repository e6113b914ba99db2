"""The data-quality gate: Great Expectations suites (expectations/*.json) over the month's
candidate tables, fail-closed.

Great Expectations has no working DuckDB datasource, so each table is read into a pandas
DataFrame and validated there. DECIMAL becomes float in pandas, so exact money identities
are not checked here: they are proven in SQL by the dbt model `settlement_checks`, and the
`settlement_checks` suite requires every one of those checks to report 0 violations.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from supernova import settings
from supernova.warehouse import connect

SUITES = {
    # suite name -> table in settlement_build validated by it
    "settlement_checks": "settlement_checks",
    "payouts": "payouts",
    "payout_lines": "payout_lines",
    "run_totals": "settlement_run_totals",
}


def load_suite(name: str, month: str) -> dict:
    text = (settings.EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text.replace("$MONTH", month))


def _import_gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx


def validate_frames(frames: dict, month: str) -> list[dict]:
    """Validate each DataFrame with its suite; one result dict per expectation."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = ctx.data_sources.add_pandas("supernova")
    results = []
    for suite_name, df in frames.items():
        asset = source.add_dataframe_asset(name=suite_name)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{suite_name}_all")
        suite = ctx.suites.add(gx.ExpectationSuite(**load_suite(suite_name, month)))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_def, suite=suite)
        )
        res = vd.run(batch_parameters={"dataframe": df})
        for r in res.results:
            cfg = r.expectation_config
            kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
            results.append({
                "suite": suite_name,
                "expectation": cfg.type,
                "column": kwargs.get("column") or kwargs.get("column_list"),
                "success": bool(r.success),
                "unexpected_count": (r.result or {}).get("unexpected_count"),
                "examples": [str(x) for x in ((r.result or {}).get("partial_unexpected_list") or [])[:5]],
                "observed": str((r.result or {}).get("observed_value", ""))[:200],
                "error": (r.exception_info or {}).get("exception_message") if r.exception_info else None,
            })
    return results


def run_gate(warehouse: Path, month: str) -> dict:
    """Validate the candidate tables in settlement_build. Returns
    {"ok": bool, "results": [...], "failed_checks": [...]} ; never publishes anything."""
    with connect(warehouse, read_only=True) as con:
        frames = {suite: con.execute(f"select * from settlement_build.{table}").df()
                  for suite, table in SUITES.items()}
    results = validate_frames(frames, month)
    checks = frames["settlement_checks"]
    failed_checks = [
        {"check": row.check_name, "description": row.description,
         "violations": int(row.violations), "examples": row.examples}
        for row in checks.itertuples() if int(row.violations) != 0
    ]
    ok = all(r["success"] for r in results) and not failed_checks
    return {"ok": ok, "results": results, "failed_checks": failed_checks,
            "checks_passed": int(sum(r["success"] for r in results)),
            "checks_failed": int(sum(not r["success"] for r in results)),
            "invariants": [{"check": r.check_name, "violations": int(r.violations)} for r in checks.itertuples()]}


def describe_failures(gate: dict) -> str:
    lines = []
    for c in gate["failed_checks"]:
        lines.append(f"  - invariant {c['check']}: {c['violations']} violation(s) ({c['description']}); "
                     f"e.g. {c['examples']}")
    for r in gate["results"]:
        if not r["success"] and not (r["suite"] == "settlement_checks" and r["column"] == "violations"):
            lines.append(f"  - {r['suite']}: {r['expectation']} on {r['column']}: "
                         f"{r['unexpected_count']} unexpected; e.g. {r['examples'] or r['observed']}"
                         + (f" (error: {r['error']})" if r.get("error") else ""))
    return "\n".join(lines)
