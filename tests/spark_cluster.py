"""A real Spark standalone cluster for tests: one master and two workers, each a JVM of
its own started from the installed PySpark (`pyspark/bin/spark-class`), on 127.0.0.1 with
free ports, work and log folders under a temporary directory, 1 core and 1 GB per worker.

`standalone_cluster(tmp)` is a context manager yielding a `SparkCluster`; the test's
driver connects with `spark.master = cluster.master_url` and its executors run in the
workers' JVMs. Each daemon is started in a process group of its own (start_new_session)
and stopped by that group's id at the end, so no JVM outlives the test (`jvm_pids` lets a
test check this with `ps`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

WORKER_CORES = 1
WORKER_MEMORY = "1g"
DAEMON_MEMORY = "256m"  # the master's and workers' own heap (not the executors')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class SparkCluster:
    master_url: str
    master_webui: str
    work: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def state(self) -> dict:
        """The master's state as its web UI publishes it (workers, applications)."""
        with urllib.request.urlopen(f"{self.master_webui}/json", timeout=5) as resp:
            return json.load(resp)

    def alive_workers(self) -> list[dict]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def executor_workers(self, app_name: str | None = None) -> dict[str, list[str]]:
        """Per worker id, the executor folders its work dir holds (one per executor the
        worker launched, `<work>/<worker>/<app-id>/<executor-id>`)."""
        out = {}
        for worker_dir in sorted((self.work / "workers").iterdir()):
            out[worker_dir.name] = sorted(
                f"{app.name}/{ex.name}"
                for app in worker_dir.glob("app-*")
                for ex in app.iterdir()
                if ex.is_dir()
            )
        return out


def _daemon(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped as a whole
        )


def _wait(predicate, what: str, timeout: float, processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p.args for p in processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"Spark daemon exited while waiting for {what}: {dead}")
        try:
            if predicate():
                return
        except OSError:
            pass  # the web UI is not up yet
        time.sleep(0.5)
    raise TimeoutError(f"Spark standalone cluster: {what} not within {timeout:.0f} s")


def stop(processes: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM to each daemon's process group, SIGKILL after `grace` seconds."""
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for p in processes:  # executors are children of a worker: in its group, or orphaned
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


def jvm_pids(marker: str) -> list[int]:
    """PIDs of the running java processes whose command line contains `marker`."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [
        int(line.split(None, 1)[0])
        for line in out.splitlines()
        if marker in line and "java" in line.split(None, 2)[1]
    ]


@contextlib.contextmanager
def standalone_cluster(tmp: Path, workers: int = 2, timeout: float = 120.0):
    tmp = Path(tmp)
    home = spark_home()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(tmp / "logs"),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_NO_DAEMONIZE": "1",
    }
    port, webui = free_port(), free_port()
    cluster = SparkCluster(
        master_url=f"spark://127.0.0.1:{port}",
        master_webui=f"http://127.0.0.1:{webui}",
        work=tmp,
    )
    spark_class = str(home / "bin" / "spark-class")
    try:
        cluster.processes.append(
            _daemon(
                [spark_class, "org.apache.spark.deploy.master.Master"]
                + ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui)],
                tmp / "logs" / "master.log",
                env,
            )
        )
        _wait(lambda: cluster.state() is not None, "master web UI", timeout, cluster.processes)
        for i in range(workers):
            cluster.processes.append(
                _daemon(
                    [spark_class, "org.apache.spark.deploy.worker.Worker"]
                    + ["--host", "127.0.0.1", "--port", str(free_port())]
                    + ["--webui-port", str(free_port())]
                    + ["--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY]
                    + ["--work-dir", str(tmp / "workers" / f"worker-{i}"), cluster.master_url],
                    tmp / "logs" / f"worker-{i}.log",
                    env,
                )
            )
        _wait(
            lambda: len(cluster.alive_workers()) == workers,
            f"{workers} workers registered",
            timeout,
            cluster.processes,
        )
        yield cluster
    finally:
        stop(cluster.processes)
