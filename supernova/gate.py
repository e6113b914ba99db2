"""The data-quality gate: Great Expectations suites (expectations/*.json) over the month's
candidate tables, fail-closed.

Great Expectations has no working DuckDB datasource, so each table is read into pandas
DataFrames and validated there; the large tables in chunks of bounded size, read by
supernova/gate_chunks.py, so the gate's memory does not grow with the month. The ledger
(payout_lines) is read from the Parquet partition publish will swap in, written here
sorted by key (supernova/gated_ledger.py), so its rows are sorted once per close. DuckDB fetches
the next chunk, and evaluates the invariants, while GX validates in Python. DECIMAL becomes
float in pandas, so exact money identities are not checked here: they are proven in SQL by the dbt model `settlement_checks`, and the
`settlement_checks` suite requires every one of those checks to report 0 violations.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from supernova import gated_ledger, settings
from supernova.gate_chunks import CHUNK_BY, spill_folder, table_chunks, when_ready
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


def _result(suite_name: str, r) -> dict:
    cfg = r.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    return {
        "suite": suite_name,
        "expectation": cfg.type,
        "column": kwargs.get("column") or kwargs.get("column_list"),
        "success": bool(r.success),
        "unexpected_count": (r.result or {}).get("unexpected_count"),
        "examples": [str(x) for x in ((r.result or {}).get("partial_unexpected_list") or [])[:5]],
        "observed": str((r.result or {}).get("observed_value", ""))[:200],
        "error": (r.exception_info or {}).get("exception_message") if r.exception_info else None,
    }


def _combine(chunks: list[dict]) -> dict:
    """One expectation's results over every chunk: it passes when every chunk passes."""
    failed = [c for c in chunks if not c["success"]]
    out = dict(failed[0] if failed else chunks[-1])
    out["success"] = not failed
    counts = [c["unexpected_count"] for c in chunks if c["unexpected_count"] is not None]
    out["unexpected_count"] = sum(counts) if counts else None
    out["examples"] = [x for c in failed for x in c["examples"]][:5]
    errors = [c["error"] for c in chunks if c.get("error")]
    out["error"] = errors[0] if errors else None
    out["chunks"] = len(chunks)
    return out


def validate_frames(frames: dict, month: str, phases: dict | None = None) -> list[dict]:
    """Validate each suite's data with its suite; one result dict per expectation. A value
    of `frames` is a DataFrame or an iterable of DataFrames (chunks of one table). With
    `phases`, the seconds spent inside Great Expectations are added up in `gx_seconds`
    (the rest of the validation is waiting for the next frame)."""
    import pandas as pd

    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = ctx.data_sources.add_pandas("supernova")
    results = []
    gx_seconds = 0.0  # rounded once at the end: rounding each chunk's would add up its errors
    for suite_name, data in frames.items():
        asset = source.add_dataframe_asset(name=suite_name)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{suite_name}_all")
        suite = ctx.suites.add(gx.ExpectationSuite(**load_suite(suite_name, month)))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_def, suite=suite)
        )
        per_expectation: list[list[dict]] = []
        for df in [data] if isinstance(data, pd.DataFrame) else data:
            started = time.perf_counter()
            res = vd.run(batch_parameters={"dataframe": df})
            gx_seconds += time.perf_counter() - started
            for i, r in enumerate(res.results):
                if i == len(per_expectation):
                    per_expectation.append([])
                per_expectation[i].append(_result(suite_name, r))
            del df, res  # bounded memory: this chunk and the one being fetched
        results.extend(_combine(chunks) for chunks in per_expectation)
    if phases is not None:
        phases["gx_seconds"] = round(gx_seconds, 1)
    return results


def run_gate(warehouse: Path, month: str) -> dict:
    """Validate the candidate tables in settlement_build. Returns
    {"ok": bool, "results": [...], "failed_checks": [...], "what_to_do": ...}; each failed
    check and failed expectation has its own `what_to_do`. Never publishes anything."""
    # wall seconds of the gate's phases (docs/benchmarks.md profiles the close with them);
    # the invariants run beside the validation, so the phases overlap
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def invariants():
        started = time.perf_counter()
        frame = checks_cur.execute("select * from settlement_build.settlement_checks").df()
        phases["invariants_seconds"] = round(time.perf_counter() - started, 1)
        return frame

    with connect(warehouse, read_only=True) as con:
        # the invariants (a DuckDB query over the whole month) are evaluated while GX
        # validates the large tables, on a connection of their own
        checks_cur = con.cursor()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-invariants")
        try:
            checks_future = pool.submit(invariants)
            frames = {
                # the ledger is read from the partition publish will swap in (sorted once)
                suite: gated_ledger.ledger_chunks(con, warehouse, month, phases)
                if table == gated_ledger.TABLE
                else table_chunks(
                    con, table, CHUNK_BY.get(table), spill_under=spill_folder(warehouse)
                )
                for suite, table in SUITES.items()
                if table != "settlement_checks"
            }
            frames["settlement_checks"] = when_ready(checks_future)
            order = list(SUITES)
            results = sorted(
                validate_frames(frames, month, phases), key=lambda r: order.index(r["suite"])
            )
            phases["validation_seconds"] = round(time.perf_counter() - t0, 1)
            checks = checks_future.result()
        except BaseException:
            checks_cur.interrupt()  # the gate already failed: do not wait for the invariants
            gated_ledger.discard(warehouse, month)
            raise
        finally:
            pool.shutdown(wait=True)
            checks_cur.close()
    failed = failed_checks(checks)
    for r in results:
        if not r["success"]:
            r["what_to_do"] = expectation_what_to_do(r["suite"])
    ok = all(r["success"] for r in results) and not failed
    if not ok:
        gated_ledger.discard(warehouse, month)  # never published: not kept either
    return {
        "ok": ok,
        "results": results,
        "failed_checks": failed,
        "what_to_do": None if ok else NOTHING_PUBLISHED,
        "checks_passed": int(sum(r["success"] for r in results)),
        "checks_failed": int(sum(not r["success"] for r in results)),
        "invariants": [
            {"check": r.check_name, "violations": int(r.violations)} for r in checks.itertuples()
        ],
        "phases": phases,
    }


# What finance does next when an invariant fails (settlement-rules §8: "the report says which
# check failed with example rows"; issue #19: and the way out). Kept as data in the gate
# result (`what_to_do` on each failed check), so the run state, the report and the CLI
# summary show the same text without logic of their own.
_DEFECT = (
    "This is a defect in the settlement code or configuration, not in your data: send this "
    "report to the data team, and run the month again once they have fixed it."
)
_OR_DEFECT = (
    "if they are right, it is a defect in the settlement code: send this report to the data "
    "team, and run the month again once they have fixed it."
)

WHAT_TO_DO = {
    "line_split_sums_to_commission": "The listed lines' fee and shares do not add up to their commission. "
    + _DEFECT,
    "line_rate_in_range": "The listed lines got a rate outside 0..max_commission_rate: correct the commission rule in the "
    "commission_rules export (merchant settings) or max_commission_rate in the configuration, then run "
    "the month again.",
    "line_base_in_range": "The listed lines have a base below 0 or above their paid amount: check their refunds and paid_amount "
    "in the exports and have upstream re-deliver corrected rows; " + _OR_DEFECT,
    "ledger_reconciles_to_entitlement": "What has been posted for the listed lines (order#line) does not equal what they are entitled to as "
    "of the cutoff. Check those lines' events and terms (a completion withdrawn or moved past the cutoff "
    "is a clawback and no longer fails here); send the lines and this report to the data team, and run "
    "the month again once fixed.",
    "ledger_references_settled_line": "Postings name order lines that are not settled (listed). "
    + _DEFECT,
    "ledger_levels_at_most_2": "A posting has a level other than 1 or 2 (never more than 2 levels may be paid). "
    + _DEFECT,
    "ledger_kind_signs": "A posting has an unknown kind or the wrong sign. " + _DEFECT,
    "ledger_key_unique": "A ledger key (month, order, line, beneficiary, level, kind) appears twice. "
    + _DEFECT,
    "tier_bonus_matches_rule": "The listed promoters' tier or tier bonus differs from the tier rule. Check the tiers in the "
    "configuration; " + _OR_DEFECT,
    "payout_identity": "The listed payouts do not satisfy carried in + postings = net paid + tax + carried out + forfeited. "
    + _DEFECT,
    "payout_matches_ledger": "The listed promoters' payouts do not carry exactly their postings. "
    + _DEFECT,
    "carried_in_chain": "The listed promoters' carried-in balance differs from last month's published carried-out. Was the "
    "previous month changed outside the pipeline? Restore it (or reopen it with a reason), then run this "
    "month again.",
    "payout_amount_rules": "The listed payouts break the status or tax rules (net paid >= 0, tax >= 0, paid only when due). "
    "Check the payout threshold and tax brackets in the configuration; " + _OR_DEFECT,
    "payout_one_row_per_promoter": "A promoter has more than one payout row. " + _DEFECT,
    "beneficiary_known": "The listed beneficiaries are not promoters known as of the cutoff: have upstream deliver the missing "
    "promoters rows, then run the month again.",
    "manifest_rows_balance": "Ingestion lost rows of the listed landing files (rows read <> loaded + quarantined): send the file "
    "names to the data team; have upstream re-deliver them if asked; then run the month again.",
    "suspense_within_limit": "Too much base is in suspense (lines whose SKU, link, promoter or inviter is unknown; see the "
    "suspense section). Either have upstream deliver the missing reference data (skus, links, promoters) "
    "and run the month again, or, if the month must be paid now, run it again with accept_suspense and a "
    "reason (`supernova settle --month YYYY-MM --accept-suspense --reason TEXT`; recorded): the suspended lines "
    "then settle in a later month once their data arrives.",
    "month_totals_reconcile": "The month's postings, payouts and change in entitlement do not add up (example: the ledger total). "
    "See ledger_reconciles_to_entitlement for the lines concerned; send this report to the data team, and "
    "run the month again once fixed.",
}

_UNKNOWN_CHECK = (
    "Send this report to the data team, and run the month again once they have fixed the cause."
)

NOTHING_PUBLISHED = (
    "Nothing was published for this month; months settle in order, so later months wait "
    "until it publishes."
)


def what_to_do(check: str) -> str:
    """The way out of a failed invariant, in words for finance."""
    return WHAT_TO_DO.get(check, _UNKNOWN_CHECK)


def expectation_what_to_do(suite: str) -> str:
    """The way out of a failed Great Expectations expectation on a candidate table."""
    if suite == "settlement_checks":
        return "The invariants table is incomplete (a check is missing or unnamed). " + _DEFECT
    return f"A candidate table ({suite}) failed a data-quality expectation. " + _DEFECT


def failed_checks(checks) -> list[dict]:
    """The failed invariants of a settlement_checks frame, each with its way out."""
    return [
        {
            "check": row.check_name,
            "description": row.description,
            "violations": int(row.violations),
            "examples": row.examples,
            "what_to_do": what_to_do(row.check_name),
        }
        for row in checks.itertuples()
        if int(row.violations) != 0
    ]


def describe_failures(gate: dict) -> str:
    """Which checks failed, example rows, and what to do next about each."""
    lines = []
    for c in gate["failed_checks"]:
        lines.append(
            f"  - invariant {c['check']}: {c['violations']} violation(s) ({c['description']}); "
            f"e.g. {c['examples']}"
        )
        lines.append(f"    what to do: {c.get('what_to_do') or what_to_do(c['check'])}")
    for r in gate["results"]:
        if not r["success"] and not (
            r["suite"] == "settlement_checks" and r["column"] == "violations"
        ):
            lines.append(
                f"  - {r['suite']}: {r['expectation']} on {r['column']}: "
                f"{r['unexpected_count']} unexpected; e.g. {r['examples'] or r['observed']}"
                + (f" (error: {r['error']})" if r.get("error") else "")
            )
            lines.append(
                f"    what to do: {r.get('what_to_do') or expectation_what_to_do(r['suite'])}"
            )
    if lines:
        lines.append(f"  {NOTHING_PUBLISHED}")
    return "\n".join(lines)
