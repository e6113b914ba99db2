"""The ingest_exports DAG: it parses, is configured as documented, and runs end to end
under dag.test() (success on good files, failed run when a file is rejected)."""

from __future__ import annotations

import pytest
from ingestion_cases.helpers import csv_text, query, row, write


def test_dag_imports_and_is_configured(dagbag):
    assert not any("ingest_exports" in k for k in dagbag.import_errors), dagbag.import_errors
    dag = dagbag.dags["ingest_exports"]
    assert dag.max_active_runs == 1
    assert dag.catchup is True
    assert str(dag.timezone.name) == "Asia/Shanghai"
    assert set(dag.params) >= {"landing", "warehouse"}
    assert dag.doc_md and "ingest" in dag.doc_md
    ingest_task, stage_task = dag.get_task("ingest_new_files"), dag.get_task("stage_new_files")
    assert [o.uri for o in ingest_task.outlets] == ["supernova://warehouse/raw"]
    assert stage_task.upstream_task_ids == {"ingest_new_files"}
    assert {t.pool for t in dag.tasks} == {"supernova_warehouse"}


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
    assert query(wh, "SELECT order_id FROM staging.stg_exports__orders ORDER BY 1") == [("O1",), ("O2",)]
    assert query(wh, "SELECT count(*) FROM staging.staged_files WHERE model = 'stg_exports__orders'") == [(1,)]

    write(landing, "orders", "bad.csv", "order_id\nO3\n")
    write(landing, "clicks", "c.csv", csv_text([row("clicks")]))
    run = dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)})
    assert run.state == "failed"
    # the good file still loaded, the rejection is recorded
    assert query(wh, "SELECT count(*) FROM raw.clicks") == [(1,)]
    assert query(wh, "SELECT status FROM raw.manifest WHERE file_name = 'bad.csv'") == [("rejected",)]
