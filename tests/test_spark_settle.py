"""A month on Spark (`supernova settle --engine spark`, supernova/spark_settle.py) without
Spark: the plan's facts read from the Parquet a Spark run leaves (the ingestion manifest,
the commit markers, the run record), the run record's atomic write, the recovery of a
killed attempt, and the report read from the published Parquet, never the DuckDB file.
The run itself on a real cluster: tests/test_spark_cluster.py (marker `spark`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_spark_parity import HAVE_SPARK

from supernova import lock, serving, spark_runs, spark_settle
from supernova.months import SHANGHAI
from supernova.plan import code_fingerprint, input_fingerprint
from supernova.publish import PUBLISHED_TABLES, commit_partition, partition_dir
from supernova.run_request import RunRefused
from supernova.run_state import RunState

AFTER_CUTOFFS = datetime(2026, 12, 1, tzinfo=SHANGHAI)
MONTH = "2026-09"


def _manifest(wh: Path, files: dict[str, str]) -> None:
    """The ingestion manifest Parquet: sha256 -> status."""
    folder = wh / "raw" / "_manifest"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "file_path": [f"f{i}.csv" for i in range(len(files))],
                "sha256": list(files),
                "status": list(files.values()),
                "reason": [None] * len(files),
            }
        ),
        folder / "manifest.parquet",
    )


def _commit(wh: Path, month: str, run_id: str, tables=tuple(PUBLISHED_TABLES)) -> None:
    """Partitions committed the way spark_publish commits them (markers last)."""
    con = duckdb.connect()
    for table in tables:
        staged = partition_dir(wh, table, month).parent / f".tmp-test-{month}"
        staged.mkdir(parents=True)
        con.execute(
            "copy (select 'P1' as promoter_id, 12.30::decimal(18,2) as net_paid, "
            f"'{run_id}' as run_id) to '{staged}/part-0.parquet' (format parquet)"
        )
        commit_partition(wh, table, month, staged, run_id)
    con.close()


def _ctx(wh: Path, reopen=False) -> dict:
    return {
        "warehouse": str(wh),
        "month": MONTH,
        "attempt_id": "test",
        "accept_suspense": False,
        "preview": False,
        "reopen": reopen,
        "scheduled": False,
    }


def _published(wh: Path, fingerprint: str, attempt="a1", run_id=f"{MONTH}-r0-abc") -> dict:
    _commit(wh, MONTH, run_id)
    row = {
        "attempt_id": attempt,
        "run_id": run_id,
        "settlement_month": MONTH,
        "status": "published",
        "started_at": "2026-10-09T01:02:03",
        "input_fingerprint": fingerprint,
        "net_paid": Decimal("12.30"),
        "suspense_ratio": Decimal("0.01234567"),
    }
    spark_runs.write_run_row(wh, row)
    return row


def test_the_fingerprint_is_over_the_manifest_loaded_files(tmp_path):
    _manifest(tmp_path, {"a" * 64: "loaded", "b" * 64: "rejected"})
    facts = spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS)
    code = code_fingerprint()
    assert (facts.input_files, facts.published) == (1, {})
    assert facts.input_fingerprint == input_fingerprint(MONTH, ["f0.csv:" + "a" * 64], code, False)
    # a rejected file changes nothing; a loaded one changes the fingerprint
    _manifest(tmp_path, {"a" * 64: "loaded", "b" * 64: "rejected", "c" * 64: "rejected"})
    assert spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS) == facts
    _manifest(tmp_path, {"c" * 64: "loaded", "a" * 64: "loaded", "b" * 64: "rejected"})
    added = spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS)
    assert added.input_files == 2
    assert added.input_fingerprint == input_fingerprint(
        MONTH, ["f0.csv:" + "c" * 64, "f1.csv:" + "a" * 64], code, False
    )


def test_a_rerun_of_unchanged_inputs_is_unchanged(tmp_path):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    first = spark_settle.plan_step(_ctx(tmp_path), log=lambda *_: None, now=AFTER_CUTOFFS)
    assert (first["action"], first["run_id"]) == (
        "settle",
        f"{MONTH}-r0-{first['input_fingerprint'][:10]}",
    )
    _published(tmp_path, first["input_fingerprint"], run_id=first["run_id"])
    again = spark_settle.plan_step(_ctx(tmp_path), log=lambda *_: None, now=AFTER_CUTOFFS)
    assert (again["action"], again["run_id"]) == ("unchanged", first["run_id"])
    assert RunState(tmp_path, "test").load()["plan"] == again


def test_a_closed_month_with_new_inputs_is_refused_unless_reopened(tmp_path):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    fingerprint = spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS).input_fingerprint
    _published(tmp_path, fingerprint)
    _manifest(tmp_path, {"a" * 64: "loaded", "d" * 64: "loaded"})  # a late file
    with pytest.raises(
        RunRefused,
        match=r"2026-09 is closed \(published by run 2026-09-r0-abc\) and its inputs have changed",
    ):
        spark_settle.plan_step(_ctx(tmp_path), log=lambda *_: None, now=AFTER_CUTOFFS)
    reopened = spark_settle.plan_step(
        _ctx(tmp_path, reopen=True), log=lambda *_: None, now=AFTER_CUTOFFS
    )
    assert reopened["action"] == "settle" and reopened["reopen_count"] == 1
    assert reopened["run_id"] == f"{MONTH}-r1-{reopened['input_fingerprint'][:10]}"


def test_a_month_is_published_only_when_every_marker_names_a_recorded_run(tmp_path):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    _commit(tmp_path, MONTH, "r-half", tables=list(PUBLISHED_TABLES)[:-1])  # killed mid-commit
    assert spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS).published == {}
    _published(tmp_path, "f" * 64, run_id="r-whole")
    published = spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS).published
    assert list(published) == [MONTH] and published[MONTH]["run_id"] == "r-whole"


def test_the_run_record_is_one_parquet_row_replaced_atomically(tmp_path, monkeypatch):
    row = _published(tmp_path, "f" * 64)
    folder = spark_runs.runs_dir(tmp_path)
    assert [p.name for p in folder.iterdir()] == ["spark-a1.parquet"]

    def killed(src, dst):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(spark_runs.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        spark_runs.write_run_row(tmp_path, {**row, "status": "reopened"})
    monkeypatch.undo()
    (kept,) = spark_runs.read_runs(tmp_path)
    assert (kept["status"], kept["net_paid"], kept["suspense_ratio"]) == (
        "published",
        Decimal("12.30"),
        Decimal("0.01234567"),
    )
    assert kept["started_at"] == datetime(2026, 10, 9, 1, 2, 3)
    # the BI catalog reads the row (the hidden temporary file is not a *.parquet), typed
    # as DuckDB's settlement_runs
    con = duckdb.connect(str(serving.write_catalog(tmp_path)), read_only=True)
    try:
        assert con.execute(
            "select status, net_paid, typeof(net_paid), typeof(input_files) "
            "from settlement.settlement_runs"
        ).fetchall() == [("published", Decimal("12.30"), "DECIMAL(18,2)", "BIGINT")]
    finally:
        con.close()


def test_a_killed_attempt_is_recorded_by_the_next_begin(tmp_path, tiny_landing):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    request = {"month": MONTH, "landing": str(tiny_landing), "warehouse": str(tmp_path)}
    # killed after its partitions were committed, before its row was written
    done = RunState(tmp_path, "killed-done")
    done.update(request=request, engine="spark", started_at="2026-10-09T01:00:00+08:00")
    done.update(plan={"run_id": "r-done", "input_fingerprint": "f" * 64})
    _commit(tmp_path, MONTH, "r-done")
    # killed before publishing anything
    RunState(tmp_path, "killed-early").update(
        request={**request, "month": "2026-10"},
        engine="spark",
        started_at="2026-11-09T01:00:00+08:00",
    )
    # an attempt of the DuckDB engine, killed after its plan: Spark's markers say nothing
    # about it, so it is recorded the DuckDB way (its own transaction's outcome)
    RunState(tmp_path, "killed-duckdb").update(
        request=request, started_at="2026-10-09T02:00:00+08:00", plan={"run_id": "r-done"}
    )
    ctx = spark_settle.begin({**request, "attempt_id": "next"}, log=lambda *_: None)
    lock.release(tmp_path, ctx["attempt_id"])
    rows = {r["attempt_id"]: r for r in spark_runs.read_runs(tmp_path)}
    assert (rows["killed-done"]["status"], rows["killed-done"]["run_id"]) == ("published", "r-done")
    assert rows["killed-done"]["input_fingerprint"] == "f" * 64
    assert (rows["killed-early"]["status"], rows["killed-early"]["run_id"]) == (
        "failed",
        "2026-10-unplanned",
    )
    assert rows["killed-early"]["message"].startswith("interrupted: the process died")
    # not judged by Spark's markers (which name r-done): not recorded as Spark's
    assert "killed-duckdb" not in rows
    assert RunState(tmp_path, "killed-duckdb").load()["status"] == "failed"
    assert RunState(tmp_path, "next").load()["engine"] == "spark"
    assert (
        spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS).published[MONTH]["run_id"]
        == "r-done"
    )


def test_the_report_of_a_spark_run_reads_the_parquet_not_the_duckdb_file(tmp_path):
    from supernova.report import collect, write_report

    (tmp_path / "supernova.duckdb").write_text("not a database: opening it would fail")
    _manifest(tmp_path, {"a" * 64: "loaded"})
    _published(tmp_path, "f" * 64)
    serving.write_catalog(tmp_path)
    state = {
        "request": {"month": MONTH, "preview": False},
        "attempt_id": "a2",
        "engine": "spark",
        "status": "published",
        "plan": {"run_id": f"{MONTH}-r0-abc", "action": "settle"},
    }
    data = collect(tmp_path, state)
    assert data["source"]["published"] is True
    assert (data["totals"]["run_id"], data["totals"]["net_paid"]) == (
        f"{MONTH}-r0-abc",
        Decimal("12.30"),
    )
    assert data["rejected_files"] == []
    text = write_report(tmp_path, state).read_text()
    assert text.startswith("# Settlement 2026-09: PUBLISHED") and "| net_paid | 12.30 |" in text


def test_settle_takes_the_engine_from_the_flag_or_supernova_engine(monkeypatch, tmp_path, capsys):
    from supernova.cli import build_parser, main

    assert build_parser().parse_args(["settle", "--month", MONTH]).engine == "duckdb"
    monkeypatch.setenv("SUPERNOVA_ENGINE", "spark")
    assert build_parser().parse_args(["settle", "--month", MONTH]).engine == "spark"
    monkeypatch.setenv("SUPERNOVA_ENGINE", "flink")
    (tmp_path / "landing").mkdir()
    args = ["settle", "--month", MONTH, "--landing", str(tmp_path / "landing")]
    assert main(args + ["--warehouse", str(tmp_path / "wh")]) == 2
    assert "--engine (or SUPERNOVA_ENGINE) must be one of duckdb, spark, not 'flink'" in (
        capsys.readouterr().err
    )


@pytest.mark.skipif(HAVE_SPARK, reason="checks the message shown where Spark is not installed")
def test_settle_on_spark_without_the_spark_group_says_how_to_install_it(tmp_path, capsys):
    from supernova.cli import main

    (tmp_path / "landing").mkdir()
    args = ["settle", "--month", MONTH, "--landing", str(tmp_path / "landing")]
    assert main(args + ["--warehouse", str(tmp_path / "wh"), "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "--engine spark needs the optional `spark` dependency group" in err
    assert "make spark" in err
    assert not (tmp_path / "wh" / "run.lock").exists()  # refused before the lease


def test_a_refused_spark_request_is_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    from supernova import cli

    monkeypatch.setattr(cli, "check_spark_installed", lambda: None)  # refused before Spark
    (tmp_path / "landing").mkdir()
    args = ["settle", "--month", MONTH, "--landing", str(tmp_path / "landing")]
    args += ["--warehouse", str(tmp_path / "wh"), "--engine", "spark"]
    assert cli.main(args + ["--preview", "--reopen", "--reason", "a correction"]) == 1
    err = capsys.readouterr().err
    assert f"{MONTH} on Spark: refused:" in err and "preview" in err
    assert not (tmp_path / "wh" / "run.lock").exists()  # nothing taken


def _attempt(wh: Path, landing: Path, attempt: str, **state) -> dict:
    """An attempt begun on Spark (its state file and lease), as the steps leave it."""
    request = {"month": MONTH, "landing": str(landing), "warehouse": str(wh)}
    ctx = spark_settle.begin({**request, "attempt_id": attempt}, log=lambda *_: None)
    RunState(wh, attempt).update(**state)
    return ctx


def test_a_publish_stopped_before_its_row_is_recorded_by_finish(tmp_path, tiny_landing):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    ctx = _attempt(tmp_path, tiny_landing, "stopped", plan={"run_id": "r-pub", "action": "settle"})
    _commit(tmp_path, MONTH, "r-pub")  # the markers name the run; then an exception
    result = spark_settle.finish_step(ctx, log=lambda *_: None)
    assert result["status"] == "published"
    rows = [r for r in spark_runs.read_runs(tmp_path) if r["run_id"] == "r-pub"]
    assert [(r["status"], r["attempt_id"]) for r in rows] == [("published", "stopped")]
    facts = spark_settle.gather_facts(_ctx(tmp_path), AFTER_CUTOFFS)
    assert facts.published[MONTH]["run_id"] == "r-pub"  # the plan sees the month closed
    assert not (tmp_path / "run.lock").exists()


@pytest.mark.skipif(HAVE_SPARK, reason="here no Spark session can be opened for the totals")
def test_a_failed_attempt_is_recorded_even_when_spark_cannot_give_its_totals(
    tmp_path, tiny_landing
):
    _manifest(tmp_path, {"a" * 64: "loaded"})
    ctx = _attempt(
        tmp_path,
        tiny_landing,
        "gate-lost",
        plan={"run_id": "r-fail", "action": "settle", "first_month": MONTH},
        build={"ok": True},
        error="executor lost during the gate",
    )
    result = spark_settle.finish_step(ctx, log=lambda *_: None)
    assert result["status"] == "failed"
    (row,) = [r for r in spark_runs.read_runs(tmp_path) if r["attempt_id"] == "gate-lost"]
    assert (row["status"], row["run_id"], row["net_paid"]) == ("failed", "r-fail", None)
    assert "executor lost" in row["message"]
