"""Measuring one command: wall time and peak memory of its whole process tree, CPU, load
and steal, and the machine and versions it ran on.

Peak memory is the RSS of the process and all its descendants summed every 0.2 s from
/proc, and ru_maxrss from wait4() (the larger is reported): a stage's memory is mostly in
the children it starts (dbt, DuckDB, Airflow tasks).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: every measured command runs here


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
