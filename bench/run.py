"""Benchmark harness: one command, every stage in its own process, several runs, medians.

    uv run --frozen python -m bench.run --scale today --runs 3

What it does (everything under --root, default var/bench, which is git-ignored):

1. data/<scale>/landing: generated once by `supernova generate` (2026-10-01, --days days,
   seed 7) and reused while its marker file says the same arguments;
2. data/<scale>/warehouse: the whole landing ingested once (stage `ingest_month`; its
   measurement is kept in data/<scale>/ingest_month.json and reused with the cache), then
   its staging layer built once (stage `stage_month`, data/<scale>/stage_month.json;
   redone when the staging code changes), as the daily ingest_exports runs leave it;
3. per run, on throw-away copies of that warehouse (the DuckDB file is copied, the raw
   Parquet is shared read-only through a symlink):
   * ingest_day: one typical delivery day (--day) into an empty warehouse;
   * stage_day: that day's files merged into the staging layer built from all the others
     (what the daily ingest_exports run does after loading them);
   * settle: the monthly_settlement DAG end to end through Airflow (`supernova settle`);
   * build, gate, publish: the same steps one process each (what each costs);
   * marts: `dbt build` of the marts (full refresh) + their Parquet copies, when
     supernova.marts exists;
   * floor: the same settlement SQL in one DuckDB connection (bench/floor.py);
   * spark_build (with --spark): the same dbt project on Spark local mode (bench/spark.py),
     in the environment given by --spark-env (default .venv-spark).
4. Wall time and peak memory of each stage's whole process tree: RSS of the process and
   all its descendants summed every 0.2 s from /proc, and ru_maxrss from wait4() (the
   larger is reported); user/sys CPU; load average before and after.

Results: <root>/results/<scale>.json (every run) and <root>/results/<scale>.md (medians).
`python -m bench.plot` draws docs/benchmarks.svg from the result files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench.data import (
    DEFAULT_DAYS,
    START,
    base_warehouse,
    clone,
    dataset,
    day_landing,
    marts_available,
    stage,
    staged_base,
)
from bench.measure import ROOT, machine, versions
from bench.results import write_results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scale",
        default="today",
        choices=["tiny", "demo", "pilot", "today", "target", "target3x"],
        help="target3x: a today warehouse replicated 3x by bench.replicate (run that first)",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--day", default="2026-10-15", help="the delivery day of stage ingest_day")
    p.add_argument("--root", type=Path, default=ROOT / "var" / "bench")
    p.add_argument(
        "--stages",
        default="ingest_day,stage_day,settle,build,gate,publish,marts,floor",
        help="comma-separated subset (ingest_month is measured with the cache)",
    )
    p.add_argument("--spark", action="store_true", help="also measure stage spark_build")
    p.add_argument("--spark-env", type=Path, default=ROOT / ".venv-spark")
    p.add_argument("--keep", action="store_true", help="keep the run warehouses")
    return p


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    """One benchmark session: the data set and base warehouse, prepared once, then
    `runs` rounds of the wanted stages, each on its own clone."""

    def __init__(self, a: argparse.Namespace, log=_log):
        self.a, self.log = a, log
        self.root = a.root.resolve()
        self.wanted = [s for s in a.stages.split(",") if s]
        if a.spark and "spark_build" not in self.wanted:
            self.wanted.append("spark_build")
        self.work = self.root / "runs" / a.scale
        self.logs = self.root / "logs" / a.scale
        self.floor_target = self.work / "floor-target"
        self.day = a.day
        if (date.fromisoformat(self.day) - date.fromisoformat(START)).days >= a.days:
            self.day = (date.fromisoformat(START) + timedelta(days=min(1, a.days - 1))).isoformat()
        self.results = {
            "scale": a.scale,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "runs": a.runs,
            "machine": machine(),
            "versions": versions(),
            "stages": {},
            "notes": [],
        }

    def prepare(self) -> None:
        a, root, results = self.a, self.root, self.results
        self.landing = dataset(root, a.scale, a.days, self.log)
        generated = json.loads((root / "data" / a.scale / "generated.json").read_text())
        results["landing_bytes"] = generated["landing_bytes"]
        self.base, ingest_month = base_warehouse(root, a.scale, self.landing, self.log)
        results["data"] = {k: ingest_month.get(k) for k in ("raw_rows", "raw_parquet_bytes")}
        results["stages"]["ingest_month"] = [ingest_month]
        results["stages"]["stage_month"] = [
            staged_base(root, a.scale, self.base, self.landing, self.log)
        ]
        if "marts" in self.wanted and not marts_available():
            self.wanted.remove("marts")
            results["notes"].append(
                "marts: supernova.marts does not exist in this checkout; not measured"
            )

    def rec(self, name: str, m: dict) -> None:
        self.results["stages"].setdefault(name, []).append(m)
        self.log(
            f"  {name:<12} {m['wall_s']:>8.1f} s  {m['peak_rss_mb']:>8.0f} MB  rc={m['rc']}  "
            f"load {m['load_before']}"
        )

    def run(self, i: int) -> None:
        """Round i: every wanted stage once."""
        self.log(f"run {i}/{self.a.runs} ({self.a.scale})")
        self._day_stages(i)
        steps = [s for s in ("build", "gate", "publish", "marts", "build_full") if s in self.wanted]
        if "settle" in self.wanted:
            self._settle(i, steps)
        if steps or "floor" in self.wanted:
            self._steps(i, steps)
        if "spark_build" in self.wanted:
            self._spark(i)
        if not self.a.keep:
            for d in (
                "settle",
                "steps",
                "floor",
                "floor-target",
                "ingest-day",
                "stage-day",
                "spark",
            ):
                shutil.rmtree(self.work / d, ignore_errors=True)

    def _day_stages(self, i: int) -> None:
        landing, work, logs = self.landing, self.work, self.logs
        if "ingest_day" in self.wanted and any(landing.iterdir()):
            dl = day_landing(landing, self.day, work / "day-landing")
            wh = work / "ingest-day"
            shutil.rmtree(wh, ignore_errors=True)
            self.rec("ingest_day", stage("ingest", dl, wh, logs / f"ingest_day-{i}.log"))
        if "stage_day" in self.wanted:
            wh = clone(self.base, work / "stage-day")
            self.rec(
                "stage_day",
                stage(
                    "stage_day",
                    landing,
                    wh,
                    logs / f"stage_day-{i}.log",
                    extra_args=["--day", self.day],
                ),
            )

    def _settle(self, i: int, steps: list[str]) -> None:
        """The whole DAG; `steps` loses "marts" when they are measured on its warehouse."""
        wh = clone(self.base, self.work / "settle")
        self.rec("settle", stage("settle", self.landing, wh, self.logs / f"settle-{i}.log"))
        if "build" in steps or not (wh / "dbt" / "target" / "manifest.json").exists():
            return
        # the floor replays the DAG's own dbt build
        shutil.rmtree(self.floor_target, ignore_errors=True)
        shutil.copytree(
            wh / "dbt" / "target",
            self.floor_target,
            ignore=shutil.ignore_patterns("compiled", "run", "*.msgpack", "*.gpickle"),
        )
        if "marts" in steps:  # marts do not depend on the settlement: same warehouse
            self.rec("marts", stage("marts", self.landing, wh, self.logs / f"marts-{i}.log"))
            steps.remove("marts")

    def _steps(self, i: int, steps: list[str]) -> None:
        landing, logs = self.landing, self.logs
        wh = clone(self.base, self.work / "steps")
        for s in ("build", "gate", "publish", "marts"):
            if s in steps:
                self.rec(s, stage(s, landing, wh, logs / f"{s}-{i}.log"))
            if s == "build" and s in steps:  # the floor replays exactly this build's compiled SQL
                shutil.rmtree(self.floor_target, ignore_errors=True)
                self.floor_target.mkdir(parents=True)
                for f in ("manifest.json", "run_results.json"):
                    if (wh / "dbt" / "target" / f).exists():
                        shutil.copy2(wh / "dbt" / "target" / f, self.floor_target / f)
        if "build_full" in steps:  # its own clone: staging rebuilt from the whole history
            fb = clone(self.base, self.work / "build-full")
            self.rec("build_full", stage("build_full", landing, fb, logs / f"build_full-{i}.log"))
            shutil.rmtree(fb, ignore_errors=True)
        if "floor" in self.wanted:
            fw = clone(self.base, self.work / "floor")
            floor_env = {"BENCH_DBT_TARGET": str(self.floor_target)}
            self.rec(
                "floor",
                stage("floor", landing, fw, logs / f"floor-{i}.log", extra_env=floor_env),
            )

    def _spark(self, i: int) -> None:
        spark_env = self.a.spark_env
        if not (spark_env / "bin" / "python").exists():
            self.results["notes"].append(f"spark_build: no Spark environment at {spark_env}")
            self.wanted.remove("spark_build")
            return
        sw = self.work / "spark"
        shutil.rmtree(sw, ignore_errors=True)
        sw.mkdir(parents=True)
        os.symlink((self.base / "raw").resolve(), sw / "raw")
        self.rec(
            "spark_build",
            stage(
                "build",
                self.landing,
                sw,
                self.logs / f"spark_build-{i}.log",
                env_dir=spark_env,
                module="bench.spark",
            ),
        )

    def finish(self) -> int:
        """Write results/<scale>.json and .md, print the table; 1 if a stage failed."""
        md = write_results(self.root / "results", self.a.scale, self.results)
        print(md)
        summary = self.results["summary"]
        failed = [n for n, s in summary.items() if isinstance(s, dict) and s["ok"] < s["runs"]]
        if failed:
            self.log(f"stages with failed runs: {', '.join(failed)} (see {self.logs})")
        return 1 if failed else 0


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    bench = Bench(a)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(bench.root / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
    )
    bench.prepare()
    for i in range(1, a.runs + 1):
        bench.run(i)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
