"""What a Spark run needs beside the dbt project (docs/spark.md): the ingestion manifest
as Parquet next to the raw files, the session settings for a standalone cluster, and the
CPU accounting of the run's processes.

The manifest: Spark reads `<raw>/_manifest/manifest.parquet` (one row per landing file,
DuckDB's `raw.manifest`), never the DuckDB file. Ingestion writes it at the end of every
run (ingestion/manifest_export.py); `write_manifest_of_warehouse` writes it for a
warehouse ingested before that.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingestion.manifest_export import (  # noqa: F401 - the manifest's home, used from here
    MANIFEST_DIR,
    MANIFEST_FILE,
    manifest_parquet_path,
    write_manifest_parquet,
)


def write_manifest_of_warehouse(warehouse: Path) -> Path:
    """The same, from a warehouse's DuckDB file (read-only), for a warehouse ingested
    before ingestion wrote the Parquet manifest itself."""
    import duckdb

    from supernova import settings

    raw = (Path(warehouse) / "raw").resolve()
    con = duckdb.connect(str(settings.duckdb_path(raw.parent)), read_only=True)
    try:
        return write_manifest_parquet(con, raw)
    finally:
        con.close()


def cluster_session_env(
    master_url: str, driver_memory: str = "2g", executor_memory: str = "1g"
) -> dict[str, str]:
    """Environment for dbt-spark `method: session` on a standalone master: profiles.yml
    reads the master and the driver memory; executor settings go through
    PYSPARK_SUBMIT_ARGS (read when the driver JVM starts). The driver binds to loopback,
    where the test's cluster listens."""
    return {
        "SUPERNOVA_SPARK_MASTER": master_url,
        "SUPERNOVA_SPARK_DRIVER_MEMORY": driver_memory,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": (
            f"--conf spark.executor.memory={executor_memory} "
            "--conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 "
            "pyspark-shell"
        ),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[11], fields[12]: utime, stime (fields 14 and 15 of proc(5), counted from 1)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_in_groups(groups: set[int]) -> list[int]:
    """Live processes whose process group is one of `groups` (a daemon and the
    executors it launched). Zombies are left out: a Spark worker does not reap every
    short-lived child it starts, and once the worker is gone such an exited child waits
    for PID 1 to reap it; it holds no memory and runs nothing."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups and fields[0] != "Z":  # fields 5 and 3 of proc(5): pgrp, state
            out.append(int(entry.name))
    return out


def driver_jvm_pid(spark) -> int | None:
    """The PID of the driver JVM PySpark launched for this process (None if attached)."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    return proc.pid if proc is not None else None
