"""Two months settled on a real Spark standalone cluster (a master and two workers, each
its own JVM, started and stopped by this test; executors in the workers' JVMs) through
the same steps as on DuckDB: the dbt build (dbt-spark `method: session` pointed at the
master), the gate (the Great Expectations suites through GX's Spark datasource, the
`settlement_checks` invariants through Spark SQL, all 0) and the publish (the same
Parquet partitions and commit markers as supernova/publish.py). October is built on top
of what Spark published for September. Spark reads the ingestion manifest as Parquet
(`<raw>/_manifest/manifest.parquet`), not the DuckDB file.

Every published table (payouts, payout_lines, suspense, findings, line_terms) and the run
totals must equal the DuckDB run's to the fen, row for row.

    UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark \\
        pytest -m spark tests/test_spark_cluster.py -s

SUPERNOVA_SPARK_TEST_MASTER=local[2] runs the same flow on local mode instead (for the
timing comparison in docs/spark.md). Needs Java 17 and the `spark` group; skipped
elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from spark_cluster import jvm_pids, standalone_cluster
from test_spark_parity import HAVE_SPARK, SKIP_REASON

MONTHS = [("2026-09", "2026-09"), ("2026-10", "2026-09")]  # (month, first month)
LOCAL_MASTER = os.environ.get("SUPERNOVA_SPARK_TEST_MASTER", "")  # e.g. local[2]: no cluster


def _step_ctx(landing: Path, wh: Path, month: str) -> dict:
    return {
        "attempt_id": f"cluster-{month}",
        "month": month,
        "landing": str(landing),
        "warehouse": str(wh),
        "preview": False,
        "reopen": False,
        "reason": "",
        "accept_suspense": False,
        "accept_suspense_reason": "",
        "triggered_by": "test",
    }


def _duckdb_months(landing: Path, wh: Path) -> dict:
    """September and October on DuckDB with the run's own steps; returns each month's run
    totals (the published Parquet stays in <wh>/parquet for the comparison)."""
    from ingestion import ingest
    from supernova import settle as s

    ingest(landing, wh, progress=lambda *_: None)
    totals = {}
    for month, first in MONTHS:
        ctx = _step_ctx(landing, wh, month)
        plan = {
            "action": "settle",
            "run_id": f"{month}-cluster",
            "first_month": first,
            "input_fingerprint": "cluster",
            "code_fingerprint": "cluster",
            "input_files": 0,
        }
        s.RunState(wh, ctx["attempt_id"]).update(started_at="2026-11-25T00:00:00+08:00")
        s.build_step(ctx, plan, log=lambda *_: None)
        s.gate_step(ctx, plan, log=lambda *_: None)
        con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
        try:
            cur = con.execute("select * from settlement_build.settlement_run_totals")
            names = [d[0] for d in cur.description]
            totals[month] = [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            con.close()
        s.publish_step(ctx, plan, log=lambda *_: None)
    return totals


def _norm(v):
    if isinstance(v, Decimal):
        return format(v, "f")  # 0E-8 and 0.00000000 are the same amount
    return "" if v is None else str(v)


def _rows(path: Path) -> tuple[list[str], list[tuple]]:
    table = pq.read_table(path)
    return table.column_names, sorted(
        tuple(_norm(v) for v in r.values()) for r in table.to_pylist()
    )


def _executors_per_worker(cluster, app_id: str) -> dict[str, int]:
    """From the master's JSON: each worker's cores and memory in use (only our app runs),
    and from each worker's JSON (linked by the master), its executors of our app."""
    state = cluster.state()
    assert [a["id"] for a in state["activeapps"]] == [app_id], state["activeapps"]
    out = {}
    for w in state["workers"]:
        assert (w["state"], w["coresused"], w["memoryused"]) == ("ALIVE", 1, 1024), w
        with urllib.request.urlopen(f"{w['webuiaddress']}/json", timeout=5) as resp:
            executors = json.load(resp)["executors"]
        out[w["id"]] = sum(e["appid"] == app_id for e in executors)
    return out


def _cpu(groups: set[int], driver_jvm: int | None) -> dict[int, float]:
    """CPU seconds so far of this process, the driver JVM and every cluster JVM."""
    from supernova.spark_support import pids_in_groups, process_cpu_seconds

    me = resource.getrusage(resource.RUSAGE_SELF)
    out = {os.getpid(): me.ru_utime + me.ru_stime}
    for pid in pids_in_groups(groups) + ([driver_jvm] if driver_jvm else []):
        out[pid] = process_cpu_seconds(pid)
    return out


def _fake_commit(wh: Path, table: str, month: str, run_id: str) -> None:
    """A partition staged and committed the way spark_publish does, without Spark."""
    from supernova.publish import commit_partition, partition_dir

    staged = partition_dir(wh, table, month).parent / f".tmp-test-{table}"
    staged.mkdir(parents=True)
    (staged / "part-0.parquet").write_text(run_id)
    commit_partition(wh, table, month, staged, run_id)


def test_a_month_is_published_only_when_every_table_names_the_same_run(tmp_path):
    from supernova import spark_publish
    from supernova.publish import PUBLISHED_TABLES

    tables = list(PUBLISHED_TABLES)
    for table in tables[:-1]:
        _fake_commit(tmp_path, table, "2026-09", "run-a")
    # killed before the last table's commit: not published, and readers skip that table
    assert spark_publish.published_run(tmp_path, "2026-09") is None
    assert spark_publish.committed_months(tmp_path, tables[-1]) == []
    _fake_commit(tmp_path, tables[-1], "2026-09", "run-a")
    assert spark_publish.published_run(tmp_path, "2026-09") == "run-a"
    assert spark_publish.committed_months(tmp_path, tables[0]) == ["2026-09"]
    # a reopen half-way (one table of run b): the month is no run's until it completes
    _fake_commit(tmp_path, tables[0], "2026-09", "run-b")
    assert spark_publish.published_run(tmp_path, "2026-09") is None


def test_a_killed_publish_leaves_hidden_leftovers_that_the_next_one_removes(tmp_path):
    from supernova import spark_publish
    from supernova.publish import PUBLISHED_TABLES, _marker, partition_dir

    for table in PUBLISHED_TABLES:
        _fake_commit(tmp_path, table, "2026-09", "run-a")
    target = partition_dir(tmp_path, "payouts", "2026-09")
    staged = target.parent / ".tmp-settlement_month=2026-09-999"  # staged, never committed
    staged.mkdir()
    (staged / "part-0.parquet").write_text("run-b")
    aside = target.parent / ".old-settlement_month=2026-09-999"  # swapped out, not deleted
    aside.mkdir()
    marker_tmp = _marker(tmp_path, "payouts", "2026-09").with_name(".tmp-2026-09-999")
    marker_tmp.write_text("run-b\n")
    assert spark_publish.published_run(tmp_path, "2026-09") == "run-a"
    assert (target / "part-0.parquet").read_text() == "run-a"
    assert sorted(p.name for p in spark_publish.clean_leftovers(tmp_path)) == sorted(
        [staged.name, aside.name, marker_tmp.name]
    )
    assert not staged.exists() and not aside.exists() and not marker_tmp.exists()
    assert spark_publish.published_run(tmp_path, "2026-09") == "run-a"


def test_a_failed_gate_publishes_nothing(tmp_path):
    from supernova import spark_publish
    from supernova.publish import PublishError

    for gate in (None, {"ok": False}):
        with pytest.raises(PublishError, match="the gate did not pass"):
            spark_publish.publish_month(None, tmp_path, "2026-09", "run-a", gate)
    assert not (tmp_path / "parquet").exists()


def _settle_on_spark(landing: Path, wh: Path, month: str) -> dict:
    """`supernova settle --engine spark` for the month (the CLI's function, in this
    process); returns the attempt's state (with the exit code)."""
    from supernova.cli import main

    before = set((wh / "runs").glob("*/state.json"))
    rc = main(
        ["settle", "--month", month, "--engine", "spark"]
        + ["--landing", str(landing), "--warehouse", str(wh)]
    )
    (new,) = set((wh / "runs").glob("*/state.json")) - before
    return {**json.loads(new.read_text()), "rc": rc}


def _same(a, b) -> bool:
    """Equal values; amounts compared as numbers (0E-8 and 0.00000000 are one amount)."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return a is not None and b is not None and Decimal(str(a)) == Decimal(str(b))
    return _norm(a) == _norm(b)


def _check_published_month(
    spark_wh: Path, duck_wh: Path, month: str, state: dict, duck, run_ids: dict
) -> str:
    """The Spark month's run record, report, partitions and rows against DuckDB's; returns
    the run id. `run_ids`: the Spark run id of each month settled so far (this one added)."""
    from supernova import spark_publish, spark_runs
    from supernova.publish import PUBLISHED_TABLES, TOTAL_COLUMNS, partition_dir

    assert (state["rc"], state["status"], state["engine"]) == (0, "published", "spark"), state
    run_id = state["plan"]["run_id"]
    assert run_id.startswith(f"{month}-r0-") and state["publish"]["run_id"] == run_id
    assert spark_publish.published_run(spark_wh, month) == run_id
    run_ids[month] = run_id
    gate = state["gate"]
    assert gate["ok"] and len(gate["invariants"]) == 18
    assert all(c["violations"] == 0 for c in gate["invariants"])
    assert gate["checks_failed"] == 0 and gate["checks_passed"] == len(gate["results"])
    # the run record: one Parquet row, totals equal to DuckDB's run totals to the fen
    (row,) = [r for r in spark_runs.read_runs(spark_wh) if r["attempt_id"] == state["attempt_id"]]
    assert (row["run_id"], row["status"], row["settlement_month"]) == (run_id, "published", month)
    assert row["input_fingerprint"] == state["plan"]["input_fingerprint"]
    assert (row["checks_passed"], row["checks_failed"]) == (gate["checks_passed"], 0)
    (want,) = duck
    diffs = {c: (row[c], want[c]) for c in TOTAL_COLUMNS if not _same(row[c], want[c])}
    assert not diffs, (month, diffs)
    # the BI catalog reads it, as it reads DuckDB's
    bi = duckdb.connect(str(spark_wh / "bi" / "supernova_bi.duckdb"), read_only=True)
    try:
        assert bi.execute(
            "select net_paid from settlement.settlement_runs where run_id = ? and status = 'published'",
            [run_id],
        ).fetchall() == [(row["net_paid"],)]
    finally:
        bi.close()
    # the report, written from the run state and the published Parquet
    report = spark_wh / "reports" / month / f"{state['attempt_id']}.md"
    text = report.read_text()
    assert text.startswith(f"# Settlement {month}: PUBLISHED") and run_id in text, text[:400]
    assert f"{row['net_paid']:,.2f}" in text
    assert (report.with_suffix(".html")).is_file()
    # every published table equals DuckDB's, row for row, to the fen; the DuckDB reference
    # ran under its own run ids (`<month>-cluster`), read as the Spark run's of that month
    spark_run_of = {f"{m}-cluster": r for m, r in run_ids.items()}
    for table in PUBLISHED_TABLES:
        want_cols, want_rows = _rows(partition_dir(duck_wh, table, month) / "part-0.parquet")
        have_cols, have_rows = _rows(partition_dir(spark_wh, table, month) / "part-0.parquet")
        assert have_cols == want_cols, (table, have_cols, want_cols)
        want_rows = sorted(tuple(spark_run_of.get(v, v) for v in r) for r in want_rows)
        assert len(have_rows) == len(want_rows) == state["publish"]["rows"][table], (month, table)
        diffs = [(w, h) for w, h in zip(want_rows, have_rows) if w != h]
        assert not diffs, (month, table, diffs[:5])
    return run_id


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_SPARK, reason=SKIP_REASON)
def test_two_months_on_a_standalone_cluster_equal_duckdb(
    tiny_landing, tmp_path_factory, monkeypatch
):
    from supernova import plan, spark_publish, spark_runs, spark_support
    from supernova.publish import PUBLISHED_TABLES, PublishError, partition_dir
    from supernova.spark_build import spark_session

    # the code's fingerprint as of the start: the dbt project in a shared checkout may be
    # edited during these minutes, and a closed month whose code changed is (rightly)
    # refused rather than `unchanged`; the rerun here is about the data's facts
    code = plan.code_fingerprint()
    monkeypatch.setattr(plan, "code_fingerprint", lambda: code)
    duck_wh = tmp_path_factory.mktemp("duck-warehouse")
    duck_totals = _duckdb_months(tiny_landing, duck_wh)

    # a fresh warehouse: the Spark run ingests the landing itself (raw Parquet + the
    # manifest Parquet), then never opens the DuckDB file
    spark_wh = tmp_path_factory.mktemp("spark-warehouse")
    cluster_tmp = tmp_path_factory.mktemp("spark-cluster")
    saved = dict(os.environ)
    cluster_cm = contextlib.nullcontext() if LOCAL_MASTER else standalone_cluster(cluster_tmp)
    with cluster_cm as cluster:
        try:
            if cluster is not None:
                os.environ.update(spark_support.cluster_session_env(cluster.master_url))
            else:
                os.environ.update(
                    SUPERNOVA_SPARK_MASTER=LOCAL_MASTER, SUPERNOVA_SPARK_DRIVER_MEMORY="2g"
                )
            groups = {p.pid for p in cluster.processes} if cluster else set()
            t0, cpu0 = time.perf_counter(), _cpu(groups, None)
            driver_jvm, seconds, run_ids = None, {}, {}
            for month, _first in MONTHS:
                t_month = time.perf_counter()
                state = _settle_on_spark(tiny_landing, spark_wh, month)
                seconds[month] = time.perf_counter() - t_month
                spark = spark_session()
                driver_jvm = spark_support.driver_jvm_pid(spark)
                if cluster is not None and month == MONTHS[0][0]:
                    assert spark.sparkContext.master == cluster.master_url
                    per_worker = _executors_per_worker(cluster, spark.sparkContext.applicationId)
                    assert len(per_worker) == 2 and all(n >= 1 for n in per_worker.values()), (
                        per_worker
                    )
                run_id = _check_published_month(
                    spark_wh, duck_wh, month, state, duck_totals[month], run_ids
                )
                for table in PUBLISHED_TABLES:
                    folder = partition_dir(spark_wh, table, month).parent
                    assert sorted(p.name for p in folder.iterdir()) == sorted(
                        f"{PUBLISHED_TABLES[table][0]}={m}" for m in seconds
                    )  # committed partitions only: nothing staged or renamed aside is left
                with pytest.raises(PublishError):  # a failed gate publishes nothing
                    spark_publish.publish_month(spark, spark_wh, month, "other", {"ok": False})

                # the same inputs again: `unchanged`, nothing written but the report
                records = spark_runs.read_runs(spark_wh)
                again = _settle_on_spark(tiny_landing, spark_wh, month)
                assert (again["rc"], again["status"]) == (0, "unchanged"), again
                assert again["plan"]["run_id"] == run_id
                assert spark_runs.read_runs(spark_wh) == records
                assert spark_publish.published_run(spark_wh, month) == run_id
                assert (spark_wh / "reports" / month / f"{again['attempt_id']}.md").is_file()
                print(
                    f"spark {month}: {state['publish']['rows']}, run {seconds[month]:.0f} s "
                    f"(dbt build {state['build']['seconds']} s, gate {state['gate']['seconds']} s)"
                )
            wall = time.perf_counter() - t0
            cpu1 = _cpu(groups, driver_jvm)
            cpu = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
            print(
                f"SPARK_RUN master={LOCAL_MASTER or 'standalone 2x(1 core, 1g)'} "
                f"wall={wall:.0f}s cpu={cpu:.0f}s months={seconds} jvms={len(cpu1) - 1}"
            )
            # October carried September's clawbacks: the published ledger has clawback lines
            lines = pq.read_table(partition_dir(spark_wh, "payout_lines", "2026-10"))
            assert lines.column("kind").to_pylist().count("clawback") > 0
        finally:
            with contextlib.suppress(Exception):
                spark_session().stop()
            os.environ.clear()
            os.environ.update(saved)
    if cluster is not None:
        assert not [p for p in cluster.processes if p.poll() is None]
        assert jvm_pids(str(cluster_tmp)) == []
        from supernova.spark_support import pids_in_groups

        assert pids_in_groups(groups) == []
