"""The ingest_exports DAG: it parses, is configured as documented, and runs end to end
under dag.test() (success on good files, failed run when a file is rejected)."""

from __future__ import annotations

import pytest
from ingestion_cases.helpers import csv_text, query, row, write


def test_dag_imports_and_is_configured(dagbag):
    assert not any("ingest_exports" in k for k in dagbag.import_errors), dagbag.import_errors
    dag = dagbag.dags["ingest_exports"]
    assert dag.max_active_runs == 1
    # no catch-up: a first unpause must not queue a run per day since start_date (issue 14)
    assert dag.catchup is False
    assert str(dag.timezone.name) == "Asia/Shanghai"
    assert set(dag.params) >= {"landing", "warehouse"}
    assert dag.doc_md and "ingest" in dag.doc_md
    ingest_task, stage_task = dag.get_task("ingest_new_files"), dag.get_task("stage_new_files")
    announce = dag.get_task("announce_new_data")
    # the Asset comes from its own task, which skips itself when nothing was loaded
    assert [o.uri for o in announce.outlets] == ["supernova://warehouse/raw"]
    assert not ingest_task.outlets and not stage_task.outlets
    assert stage_task.upstream_task_ids == {"ingest_new_files"}
    assert ingest_task.upstream_task_ids == {"wait_for_warehouse"}
    # every task that opens the warehouse file is in the 1-slot pool; the lease sensor and
    # the announcement never open it and stay out of it (a waiting sensor holds no slot)
    opens_file = {"ingest_new_files", "stage_new_files"}
    assert {t.pool for t in dag.tasks if t.task_id in opens_file} == {"supernova_warehouse"}
    assert all(t.pool != "supernova_warehouse" for t in dag.tasks if t.task_id not in opens_file)


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from supernova.settings import DAGS_DIR

    return DagBag(dag_folder=str(DAGS_DIR / "ingest_exports.py")).dags["ingest_exports"]


def test_dag_test_run_ingests_and_fails_on_rejection(dag, tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write(landing, "orders", "o.csv", csv_text([row("orders"), row("orders", order_id="O2")]))
    run = dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)})
    assert run.state == "success"
    assert query(wh, "SELECT count(*) FROM raw.orders") == [(2,)]
    # ... and staged them: the staging layer is current after the daily run
    assert query(wh, "SELECT order_id FROM staging.stg_exports__orders ORDER BY 1") == [
        ("O1",),
        ("O2",),
    ]
    assert query(
        wh, "SELECT count(*) FROM staging.staged_files WHERE model = 'stg_exports__orders'"
    ) == [(1,)]

    write(landing, "orders", "bad.csv", "order_id\nO3\n")
    write(landing, "clicks", "c.csv", csv_text([row("clicks")]))
    run = dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)})
    assert run.state == "failed"
    # the good file still loaded, the rejection is recorded
    assert query(wh, "SELECT count(*) FROM raw.clicks") == [(1,)]
    assert query(wh, "SELECT status FROM raw.manifest WHERE file_name = 'bad.csv'") == [
        ("rejected",)
    ]
