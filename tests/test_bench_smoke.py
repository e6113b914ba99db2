"""The benchmark harness (bench/) end to end on tiny data: it generates, ingests, measures
a stage in its own process several times and writes its result table. No timing is
asserted (figures depend on the machine's load); docs/benchmarks.md has the real runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_harness_produces_its_result_table(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--scale",
            "tiny",
            "--days",
            "2",
            "--runs",
            "2",
            "--stages",
            "ingest_day,stage_day",
            "--root",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert results["machine"]["cores"] >= 1 and results["versions"]["duckdb"] != "?"
    assert results["data"]["raw_rows"]["orders"] > 0
    day = results["stages"]["ingest_day"]
    assert len(day) == 2 and all(r["rc"] == 0 and r["result"]["ok"] for r in day)
    assert all(r["wall_s"] > 0 and r["peak_rss_mb"] > 10 for r in day)
    assert all(r["result"]["rows_loaded"] > 0 for r in day), "the day's files were not ingested"
    [staged] = results["stages"]["stage_month"]
    assert (
        staged["rc"] == 0 and staged["result"]["ok"] and staged["result"]["full_refresh"] is False
    )
    merged = results["stages"]["stage_day"]
    assert len(merged) == 2 and all(r["rc"] == 0 and r["result"]["ok"] for r in merged)
    # the merged day's files were really re-staged, incrementally
    assert all(
        r["result"]["file_records_forgotten"] > 0 and not r["result"]["full_refresh"]
        for r in merged
    )
    summary = results["summary"]["ingest_day"]
    assert summary["ok"] == 2 and summary["wall_s"] is not None
    table = (tmp_path / "results" / "tiny.md").read_text()
    assert "| stage | runs ok | median wall s |" in table
    assert "ingest one delivery day" in table and "ingest the whole landing" in table
    assert "stage one delivery day" in table
    # the cached dataset is reused by a second invocation (no regeneration)
    marker = tmp_path / "data" / "tiny" / "generated.json"
    before = marker.stat().st_mtime
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--scale",
            "tiny",
            "--days",
            "2",
            "--runs",
            "1",
            "--stages",
            "ingest_day",
            "--root",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert marker.stat().st_mtime == before


def test_summary_reports_overhead_against_the_floor_and_spark_ratio():
    from bench.results import markdown, summarize

    def run(wall, rc=0):
        return {"wall_s": wall, "peak_rss_mb": 100.0, "rc": rc, "load_before": 1.0}

    results = {
        "scale": "x",
        "started": "now",
        "machine": {"cores": 2, "mem_gb": 24},
        "versions": {},
        "stages": {
            "settle": [run(12), run(10), run(11)],
            "floor": [run(8), run(8), run(99, rc=1)],
            "build": [run(5)],
            "spark_build": [run(60)],
        },
    }
    s = summarize(results)
    assert s["settle"]["wall_s"] == 11 and s["floor"]["wall_s"] == 8 and s["floor"]["ok"] == 2
    assert s["overhead_vs_floor"] == round(3 / 8, 3)
    assert s["spark_over_duckdb_build"] == 12
    md = markdown(results, s)
    assert "38%" in md and "12.0×" in md


def test_svg_plot_is_written(tmp_path):
    from bench.plot import svg

    r = {
        "data": {"raw_rows": {"orders": 10_000}},
        "summary": {"settle": {"wall_s": 20, "peak_rss_mb": 500}},
    }
    r2 = {
        "data": {"raw_rows": {"orders": 10_000_000}},
        "summary": {"settle": {"wall_s": 90, "peak_rss_mb": 4000}},
    }
    text = svg([r, r2], "t")
    assert text.startswith("<svg") and "polyline" in text and "</svg>" in text
