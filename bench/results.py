"""A benchmark's results: medians per stage, the ratios the targets are judged by, and
the files <root>/results/<scale>.json (every run) and <scale>.md (the medians table).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

# The seconds a stage reports from inside (its result), summarised and shown per stage.
INSIDE_SECONDS = (
    "build_seconds",
    "gate_seconds",
    "models_seconds",
    "tests_seconds",
    "publish_seconds",
    "dbt_seconds",
)


def median_of(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get("rc") == 0 and r.get(key) is not None]
    return round(statistics.median(vals), 2) if vals else None


def summarize(results: dict) -> dict:
    out = {}
    for name, runs in results["stages"].items():
        ok = [r for r in runs if r.get("rc") == 0]
        out[name] = {
            "runs": len(runs),
            "ok": len(ok),
            "wall_s": median_of(runs, "wall_s"),
            "peak_rss_mb": median_of(runs, "peak_rss_mb"),
            "min_wall_s": min((r["wall_s"] for r in ok), default=None),
            "max_wall_s": max((r["wall_s"] for r in ok), default=None),
            "load": [r["load_before"] for r in runs],
            "steal_pct": [r.get("steal_pct") for r in runs],
            "cpu_s": median_of(
                [{**r, "cpu_s": (r.get("user_s") or 0) + (r.get("sys_s") or 0)} for r in runs],
                "cpu_s",
            ),
        }
        for k in INSIDE_SECONDS:
            vals = [
                r["result"][k]
                for r in ok
                if isinstance(r.get("result"), dict) and r["result"].get(k) is not None
            ]
            if vals:
                out[name][k] = round(statistics.median(vals), 2)
    s, f = out.get("settle", {}).get("wall_s"), out.get("floor", {}).get("wall_s")
    if s and f:
        out["overhead_vs_floor"] = round((s - f) / f, 3)
    # Spark rebuilds staging every run: compare with DuckDB doing the same when measured
    sp = out.get("spark_build", {}).get("wall_s")
    b = out.get("build_full", {}).get("wall_s") or out.get("build", {}).get("wall_s")
    if sp and b:
        out["spark_over_duckdb_build"] = round(sp / b, 2)
    return out


STAGE_TITLES = {
    "ingest_day": "ingest one delivery day (empty warehouse)",
    "ingest_month": "ingest the whole landing (38 days)",
    "stage_month": "stage the whole landing (incremental staging built once, cached)",
    "stage_day": "stage one delivery day (merge into current staging)",
    "settle": "settle the month end to end: monthly_settlement DAG (Airflow, dbt, GX, publish)",
    "build": "settlement `dbt build` alone (staging current)",
    "build_full": "settlement `dbt build` alone, staging rebuilt from the whole history",
    "gate": "GX gate alone",
    "publish": "publish alone",
    "marts": "marts refresh (dbt build + Parquet)",
    "floor": "floor: same SQL in one DuckDB connection",
    "spark_build": "settlement `dbt build` on Spark local mode",
}


def markdown(results: dict, summary: dict) -> str:
    m = results["machine"]
    lines = [
        f"### {results['scale']} — {results['started']}",
        "",
        f"Machine: {m['cores']} cores, {m['mem_gb']} GB; load before/after each stage in the table. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in results['versions'].items())}.",
        f"Data: {json.dumps(results.get('data', {}).get('raw_rows', {}))}; raw Parquet "
        f"{results.get('data', {}).get('raw_parquet_bytes', 0) / 1e9:.2f} GB; landing "
        f"{results.get('landing_bytes', 0) / 1e9:.2f} GB.",
        "",
        "| stage | runs ok | median wall s | min–max s | median CPU s (user+sys) | median peak MB | load at start | CPU steal % | inside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        if not isinstance(s, dict):
            continue
        inside = ", ".join(
            f"{k.replace('_seconds', '')} {s[k]} s" for k in INSIDE_SECONDS if k in s
        )
        lines.append(
            f"| {STAGE_TITLES.get(name, name)} | {s['ok']}/{s['runs']} | {s['wall_s']} | "
            f"{s['min_wall_s']}–{s['max_wall_s']} | {s.get('cpu_s')} | {s['peak_rss_mb']} | "
            f"{', '.join(str(x) for x in s['load'])} | "
            f"{', '.join('' if x is None else str(x) for x in s.get('steal_pct', []))} | {inside} |"
        )
    if "overhead_vs_floor" in summary:
        lines.append("")
        lines.append(
            f"Orchestration overhead (settle − floor) / floor: **{summary['overhead_vs_floor']:.0%}**."
        )
    if "spark_over_duckdb_build" in summary:
        vs = "build_full" if "build_full" in summary else "build"
        lines.append(
            f"Spark local mode / DuckDB (settlement dbt build; DuckDB stage `{vs}`): "
            f"**{summary['spark_over_duckdb_build']}×**."
        )
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, scale: str, results: dict) -> str:
    """Add the summary to results, write <scale>.json and <scale>.md; the markdown."""
    summary = summarize(results)
    results["summary"] = summary
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{scale}.json").write_text(json.dumps(results, indent=1, default=str))
    md = markdown(results, summary)
    (out_dir / f"{scale}.md").write_text(md)
    return md
