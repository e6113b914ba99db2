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
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

# The benchmark generates its exports and ingests them at once: they are complete when
# written, so the quiet period that protects real deliveries (exports.md) is off here.
os.environ.setdefault("SUPERNOVA_INGEST_QUIET_SECONDS", "0")

ROOT = Path(__file__).resolve().parent.parent
START = "2026-10-01"
MONTH = "2026-10"
DEFAULT_DAYS = 38  # October plus its 7-day return window: the month settles after 2026-11-08
SEED = 7


# ---------------------------------------------------------------- measuring a process tree


def _tree_rss_kb(pid: int) -> int:
    """Sum of VmRSS over pid and all its descendants (0 when it is gone)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                try:
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        stack.extend(int(c) for c in f.read().split())
                except OSError:
                    pass
        except OSError:
            continue
    return total


def _cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat; (0, 0) where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])


def measure(cmd: list[str], log_path: Path, env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run cmd, return wall time, peak tree RSS, CPU and the stage's BENCH_RESULT line.
    Also the share of CPU time the hypervisor gave to other guests meanwhile (steal): on
    a shared VM it slows every stage without showing up in the load average."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    steal0, total0 = _cpu_ticks()
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **(env or {})}
        )
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
                done.wait(0.2)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        th.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    steal1, total1 = _cpu_ticks()
    steal_pct = round(100 * (steal1 - steal0) / (total1 - total0), 1) if total1 > total0 else None
    result = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT ") :])
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(max(peak[0], ru.ru_maxrss) / 1024, 1),
        "user_s": round(ru.ru_utime, 1),
        "sys_s": round(ru.ru_stime, 1),
        "rc": proc.returncode,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "steal_pct": steal_pct,
        "result": result,
        "log": str(log_path),
    }


# ---------------------------------------------------------------- data


def _py(env_dir: Path | None = None) -> str:
    return str((env_dir / "bin" / "python") if env_dir else Path(sys.executable))


def dataset(root: Path, scale: str, days: int, log=print) -> Path:
    d = root / "data" / scale
    landing = d / "landing"
    marker = d / "generated.json"
    want = {"start": START, "days": days, "scale": scale, "seed": SEED}
    if marker.exists():
        args = json.loads(marker.read_text()).get("args", {})
        if args == want and landing.is_dir():
            return landing
        if (
            args == want
            and (d / "ingest_month.json").exists()
            and (d / "warehouse" / "supernova.duckdb").exists()
        ):
            # the landing was deleted to save disk after the month was ingested: the cached
            # warehouse is still good for every stage but ingest_day (which is then skipped)
            landing.mkdir(parents=True, exist_ok=True)
            return landing
        if args.get("replicated_from"):  # made by bench.replicate: no landing of its own
            landing.mkdir(parents=True, exist_ok=True)
            return landing
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    log(f"generating {scale} data: {days} days from {START} into {landing} ...")
    m = measure(
        [
            _py(),
            "-m",
            "supernova.cli",
            "generate",
            "--out",
            str(landing),
            "--start",
            START,
            "--days",
            str(days),
            "--scale",
            scale,
            "--seed",
            str(SEED),
        ],
        d / "generate.log",
    )
    if m["rc"] != 0:
        raise SystemExit(f"generator failed, see {m['log']}")
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    marker.write_text(json.dumps({"args": want, "measure": m, "landing_bytes": size}, indent=1))
    return landing


def base_warehouse(root: Path, scale: str, landing: Path, log=print) -> tuple[Path, dict]:
    """The month ingested once (stage ingest_month), reused by every run."""
    d = root / "data" / scale
    wh = d / "warehouse"
    marker = d / "ingest_month.json"
    if marker.exists() and (wh / "supernova.duckdb").exists():
        return wh, json.loads(marker.read_text())
    shutil.rmtree(wh, ignore_errors=True)
    log(f"ingesting the whole {scale} landing into {wh} (stage ingest_month) ...")
    m = stage("ingest", landing, wh, d / "ingest_month.log")
    if m["rc"] != 0:
        raise SystemExit(f"ingest failed, see {m['log']}")
    m.update(data_facts(wh))
    marker.write_text(json.dumps(m, indent=1))
    return wh, m


def staged_base(root: Path, scale: str, wh: Path, landing: Path, log=print) -> dict:
    """The base warehouse with its staging layer built by the current staging code (stage
    `stage_month`: what the daily ingest_exports runs do, all at once). Re-done when the
    staging code changed, since a settle would otherwise pay for a full staging refresh."""
    from supernova import staging

    d = root / "data" / scale
    marker = d / "stage_month.json"
    want = staging.code_fingerprint()
    if marker.exists():
        m = json.loads(marker.read_text())
        if m.get("code_fingerprint") == want:
            return m
    log(f"staging the ingested {scale} warehouse {wh} (stage stage_month) ...")
    m = stage("stage", landing, wh, d / "stage_month.log")
    if m["rc"] != 0:
        raise SystemExit(f"staging failed, see {m['log']}")
    m["code_fingerprint"] = want
    marker.write_text(json.dumps(m, indent=1))
    return m


def data_facts(wh: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        rows = {
            t: con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("orders", "clicks", "order_events", "buyers", "links", "promoters")
        }
        rows["orders_in_month"] = con.execute(
            f"select count(*) from raw.orders where ordered_at >= '{MONTH}-01' "
            f"and ordered_at < '{MONTH}-01'::date + interval 1 month"
        ).fetchone()[0]
    finally:
        con.close()
    raw_bytes = sum(p.stat().st_size for p in (wh / "raw").rglob("*.parquet"))
    return {"raw_rows": rows, "raw_parquet_bytes": raw_bytes}


def clone(base: Path, dest: Path) -> Path:
    """A throw-away warehouse: a copy of the DuckDB file, the raw Parquet shared."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy2(base / "supernova.duckdb", dest / "supernova.duckdb")
    os.symlink((base / "raw").resolve(), dest / "raw")
    return dest


def day_landing(landing: Path, day: str, dest: Path) -> Path:
    """A landing folder holding only one delivery day (hard links to its files: ingestion
    lists regular files and does not follow symlinks)."""
    shutil.rmtree(dest, ignore_errors=True)
    for export_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        src = export_dir / day
        if src.is_dir():
            out = dest / export_dir.name / day
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted(src.iterdir()):
                try:
                    os.link(f, out / f.name)
                except OSError:
                    shutil.copy2(f, out / f.name)
    return dest


def stage(
    name: str,
    landing: Path,
    wh: Path,
    log_path: Path,
    env_dir: Path | None = None,
    extra_env: dict | None = None,
    module: str = "bench.stage",
    extra_args: list | None = None,
) -> dict:
    return measure(
        [
            _py(env_dir),
            "-m",
            module,
            name,
            "--landing",
            str(landing),
            "--warehouse",
            str(wh),
            "--month",
            MONTH,
            *(extra_args or []),
        ],
        log_path,
        env=extra_env,
    )


def marts_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("supernova.marts") is not None


# ---------------------------------------------------------------- report


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
        for k in (
            "build_seconds",
            "gate_seconds",
            "models_seconds",
            "tests_seconds",
            "publish_seconds",
            "dbt_seconds",
        ):
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
            f"{k.replace('_seconds', '')} {s[k]} s"
            for k in (
                "build_seconds",
                "gate_seconds",
                "models_seconds",
                "tests_seconds",
                "publish_seconds",
                "dbt_seconds",
            )
            if k in s
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


def versions() -> dict:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in (
        "duckdb",
        "dbt-core",
        "dbt-duckdb",
        "apache-airflow",
        "great-expectations",
        "pyarrow",
    ):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "?"
    return out


def machine() -> dict:
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
    }


# ---------------------------------------------------------------- main


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
        results = self.results
        summary = summarize(results)
        results["summary"] = summary
        out_dir = self.root / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{self.a.scale}.json").write_text(json.dumps(results, indent=1, default=str))
        md = markdown(results, summary)
        (out_dir / f"{self.a.scale}.md").write_text(md)
        print(md)
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
