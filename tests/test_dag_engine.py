"""monthly_settlement settles on the engine $SUPERNOVA_ENGINE of the Airflow worker names
(default duckdb; issue 16): the same tasks under both; on spark the data steps are
supernova/spark_settle.py's, each task in its own process with its own Spark session.

The Spark run (marker `spark`, needs the `spark` group):

    UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark \\
        pytest -m spark tests/test_dag_engine.py -s
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import DEFAULT_CONF, ROOT
from test_spark_parity import HAVE_SPARK, SKIP_REASON

TASKS = ["begin", "ingest", "plan", "build", "validate", "publish", "finish"]


def _settlement_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "monthly_settlement.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["monthly_settlement"]


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_the_dag_has_the_same_tasks_under_both_engines(engine, monkeypatch):
    monkeypatch.setenv("SUPERNOVA_ENGINE", engine)
    dag = _settlement_dag()
    assert [t.task_id for t in dag.topological_sort()] == TASKS


def _conf(landing: Path, wh: Path) -> dict:
    return {**DEFAULT_CONF, "landing": str(landing), "warehouse": str(wh), "month": "2026-09"}


@pytest.mark.skipif(HAVE_SPARK, reason="this environment has the spark group")
def test_spark_without_the_spark_group_refuses_in_words(
    airflow_db, tmp_path, tiny_landing, monkeypatch
):
    monkeypatch.setenv("SUPERNOVA_ENGINE", "spark")
    wh = tmp_path / "wh"
    run = _settlement_dag().test(run_conf=_conf(tiny_landing, wh))
    assert str(run.state).endswith("failed")
    tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert tis["begin"].endswith("failed") and not tis["ingest"].endswith("success")
    notes = [p.read_text() for p in (wh / "alerts").glob("*.md")]
    assert any("--engine spark needs the optional `spark` dependency group" in n for n in notes), (
        notes
    )
    # refused before the lease and before ingestion
    assert not (wh / "run.lock").exists() and not (wh / "supernova.duckdb").exists()


def test_an_unknown_engine_is_refused(airflow_db, tmp_path, tiny_landing, monkeypatch):
    monkeypatch.setenv("SUPERNOVA_ENGINE", "sprak")
    wh = tmp_path / "wh"
    run = _settlement_dag().test(run_conf=_conf(tiny_landing, wh))
    assert str(run.state).endswith("failed")
    notes = [p.read_text() for p in (wh / "alerts").glob("*.md")]
    assert any("SUPERNOVA_ENGINE must be one of duckdb, spark, not 'sprak'" in n for n in notes)
    assert not (wh / "supernova.duckdb").exists()


# ------------------------------------------------------------------------ on Spark

_STEP_IN_A_NEW_PROCESS = """
import json, sys
from supernova import spark_settle
name, args, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
result = getattr(spark_settle, name)(*args, log=lambda m: print(m, file=sys.stderr))
with open(out, "w") as f:
    json.dump(result, f, default=str)
"""


def _in_a_new_process(name: str):
    """spark_settle's step `name`, run in a new Python process (its own JVM and Spark
    session, as an Airflow task under a real scheduler), not in this one."""

    def step(*args, log=print):
        with tempfile.TemporaryDirectory() as tmp:
            # a script file, not `python -c`: pyspark takes a __main__ without a file for
            # its own doctests and exits 0 at import (pyspark.sql.connect.utils)
            script, result = Path(tmp) / "step.py", Path(tmp) / "result.json"
            script.write_text(_STEP_IN_A_NEW_PROCESS)
            out = subprocess.run(
                [sys.executable, script, name, json.dumps(args), result],
                capture_output=True,
                text=True,
            )
            sys.stderr.write(out.stdout[-2000:] + out.stderr[-4000:])
            if out.returncode != 0:
                raise RuntimeError(f"{name} failed in its own process:\n{out.stderr[-2000:]}")
            return json.loads(result.read_text())

    return step


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_SPARK, reason=SKIP_REASON)
def test_the_dag_settles_on_spark_with_a_session_per_task(
    airflow_db, tmp_path, tiny_landing, monkeypatch
):
    """dag.test() runs every task in this process; here each step that uses Spark runs in
    a new process, so build, validate and publish each open their own session on the
    catalog in <warehouse>/spark. The payouts (and every published table) equal the
    DuckDB run's, to the fen."""
    from test_spark_cluster import _rows

    from supernova import spark_settle
    from supernova.publish import PUBLISHED_TABLES, partition_dir

    monkeypatch.setenv("SUPERNOVA_SPARK_MASTER", "local[1]")
    dag = _settlement_dag()

    monkeypatch.setenv("SUPERNOVA_ENGINE", "duckdb")
    duck_wh = tmp_path / "duck"
    assert str(dag.test(run_conf=_conf(tiny_landing, duck_wh)).state).endswith("success")

    monkeypatch.setenv("SUPERNOVA_ENGINE", "spark")
    for name in ("build_step", "gate_step", "publish_step", "finish_step"):
        monkeypatch.setattr(spark_settle, name, _in_a_new_process(name))
    spark_wh = tmp_path / "spark"
    run = dag.test(run_conf=_conf(tiny_landing, spark_wh))
    assert str(run.state).endswith("success")
    (state_file,) = (spark_wh / "runs").glob("*/state.json")
    state = json.loads(state_file.read_text())
    assert (state["engine"], state["status"]) == ("spark", "published"), state
    duck_state = json.loads(next((duck_wh / "runs").glob("*/state.json")).read_text())
    assert "engine" not in duck_state and duck_state["status"] == "published"

    spark_run, duck_run = state["plan"]["run_id"], duck_state["plan"]["run_id"]
    for table in PUBLISHED_TABLES:
        want_cols, want = _rows(partition_dir(duck_wh, table, "2026-09") / "part-0.parquet")
        have_cols, have = _rows(partition_dir(spark_wh, table, "2026-09") / "part-0.parquet")
        assert have_cols == want_cols, table
        want = sorted(tuple(spark_run if v == duck_run else v for v in r) for r in want)
        assert len(have) == len(want) == state["publish"]["rows"][table], table
        assert have == want, table
    assert state["publish"]["rows"]["payouts"] > 0
