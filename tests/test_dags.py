"""The DAG files: they import, every task that opens the warehouse is in the warehouse pool
or waits for the lease, every task announces its failure, no private imports, the
settlement schedule follows cutoff_day, the settlement's parameters are refused in words,
the raw Asset is updated only when files were loaded, triggered_by names the user."""

from __future__ import annotations

import ast
import getpass
import http.server
import json
import os
import shutil
import threading
from datetime import UTC, datetime

import pytest
import yaml
from conftest import DEFAULT_CONF, ROOT

from supernova import dag_support, run_request, settings
from supernova.months import settlement_config

DAG_IDS = {"monthly_settlement", "ingest_exports", "analytics_marts"}
# tasks that never open the warehouse file: the wait itself, and the Asset announcement
NO_WAREHOUSE = {"wait_for_warehouse", "announce_new_data"}


# ---------------------------------------------------------------- integrity (moved from test_dbt_project)


def test_dags_load_without_import_errors(dagbag):
    assert not dagbag.import_errors, dagbag.import_errors
    assert set(dagbag.dags) >= DAG_IDS
    dag = dagbag.dags["monthly_settlement"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "begin",
        "ingest",
        "plan",
        "build",
        "validate",
        "publish",
        "finish",
    ]
    assert dag.max_active_runs == 1
    assert dag.params["month"] is not None and dag.get_task("finish").is_teardown


def test_month_param_rejects_bad_input(dagbag):
    param = dagbag.dags["monthly_settlement"].params.get_param("month")
    assert param.resolve("2026-10") == "2026-10"
    assert param.resolve("") == ""
    for bad in ("2026-13", "2026-1", "October", "2026-10; drop table x"):
        with pytest.raises(Exception, match="does not match"):
            param.resolve(bad)


def test_every_warehouse_task_is_in_the_pool_and_other_writers_wait_for_the_lease(dagbag):
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        for t in dag.tasks:
            if t.task_id not in NO_WAREHOUSE:
                assert t.pool == dag_support.POOL, (
                    f"{dag_id}.{t.task_id} opens the warehouse outside the pool"
                )
        if dag_id == "monthly_settlement":
            continue  # it takes the lease itself, in begin
        wait = dag.get_task("wait_for_warehouse")
        assert wait.mode == "reschedule" and wait.pool != dag_support.POOL, (
            "waiting must hold neither a worker slot nor the warehouse pool"
        )
        writers = {t.task_id for t in dag.tasks} - NO_WAREHOUSE
        assert writers <= wait.get_flat_relative_ids(upstream=False), (
            f"{dag_id}: every writer runs after the wait"
        )


def test_every_task_announces_its_failure(dagbag):
    for dag_id in DAG_IDS:
        for t in dagbag.dags[dag_id].tasks:
            callbacks = t.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert dag_support.announce_failure in callbacks, f"{dag_id}.{t.task_id} fails silently"


def test_dag_files_import_nothing_private():
    for path in sorted((ROOT / "dags").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (
                    f"{path.name} imports private names {private} from {node.module}"
                )
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                raise AssertionError(f"{path.name}:{node.lineno} uses a private name .{node.attr}")


def test_catch_up_cannot_pile_up_runs(dagbag):
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert dag.catchup is False and dag.max_active_runs == 1, dag_id


# ---------------------------------------------------------------- the schedule follows cutoff_day


def test_settlement_schedule_follows_cutoff_day(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    project = tmp_path / "dbt_project"
    project.mkdir()
    cfg = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    cfg["vars"]["supernova"]["cutoff_day"] = 5
    (project / "dbt_project.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    monkeypatch.setattr(settings, "DBT_PROJECT_DIR", project)
    dag = DagBag(dag_folder=str(ROOT / "dags" / "monthly_settlement.py")).dags["monthly_settlement"]
    assert dag.schedule == "0 2 5 * *"


# ---------------------------------------------------------------- parameters


def _trigger_time_validation(dagbag, conf: dict):
    """What the API server does with a trigger's conf (SerializedDAG.create_dagrun):
    merge it into the serialized DAG's params and validate them."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.deserialize_dag(
        DagSerialization.serialize_dag(dagbag.dags["monthly_settlement"])
    )
    return serialized.params.deep_merge(conf).validate()


def test_the_trigger_interface(dagbag):
    assert set(dagbag.dags["monthly_settlement"].params) == set(run_request.REQUEST_KEYS)
    ok = _trigger_time_validation(dagbag, {"month": "2026-10", "reopen_reason": "late refunds"})
    assert ok["reopen_reason"] == "late refunds"
    from airflow.exceptions import ParamValidationError

    for bad in (
        {"preview": "yes"},
        {"reopen_reason": True},
        {"month": "2026-13"},
        {"attempt_id": "a b"},
    ):
        with pytest.raises(ParamValidationError):
            _trigger_time_validation(dagbag, bad)


@pytest.mark.parametrize(
    "conf, words",
    [
        ({"Month": "2026-10"}, "unknown parameter 'Month' (did you mean 'month'?)"),
        ({"month": "2026-10", "reopen": True}, "unknown parameter 'reopen'"),
        (
            {"month": "2026-10", "preview": True, "reopen_reason": "why"},
            "preview and reopen_reason exclude each other",
        ),
        (
            {"month": "2026-13"},
            "month must be a calendar month written YYYY-MM, e.g. 2026-10, not '2026-13'",
        ),
        ({"month": "2026-10", "reopen_reason": "   "}, "reopen_reason is blank"),
        ({"month": "2026-10", "accept_suspense_reason": 1}, "accept_suspense_reason must be text"),
    ],
)
def test_bad_requests_are_refused_in_words(conf, words):
    problems = run_request.request_problems(conf)
    assert any(words in p for p in problems), problems
    with pytest.raises(run_request.RunRefused, match="refused"):
        run_request.RunRequest.from_params(conf)


def test_a_reopen_is_expressed_by_its_reason():
    req = run_request.RunRequest.from_params(
        {
            "month": "2026-10",
            "reopen_reason": " late refunds ",
            "accept_suspense_reason": "",
            "preview": False,
        }
    )
    assert (req.reopen, req.reason, req.accept_suspense) == (True, "late refunds", False)


def test_a_misspelt_key_fails_the_run_in_its_first_task_with_words(
    dagbag, airflow_db, tmp_path, tiny_landing
):
    """Airflow's trigger accepts unknown conf keys (each param is validated on its own);
    without the API server's trigger guard, `begin` refuses them before anything runs,
    and the failure is announced with the words."""
    wh = tmp_path / "wh"
    conf = {
        **DEFAULT_CONF,
        "landing": str(tiny_landing),
        "warehouse": str(wh),
        "month": "2026-09",
        "Month": "2026-10",
    }
    run = dagbag.dags["monthly_settlement"].test(run_conf=conf)
    assert str(run.state).endswith("failed")
    tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert tis["begin"].endswith("failed") and not tis["ingest"].endswith("success")
    notes = [p.read_text() for p in (wh / "alerts").glob("*.md")]
    assert any("unknown parameter 'Month' (did you mean 'month'?)" in n for n in notes), notes
    assert not (wh / "supernova.duckdb").exists(), "a refused request reads or writes nothing"


# ---------------------------------------------------------------- who triggered the run


def _dag_run(run_type: str, user: str | None):
    from airflow.sdk.api.datamodels._generated import DagRun

    now = datetime.now(UTC)
    return DagRun(
        dag_id="monthly_settlement",
        run_id="r",
        logical_date=now,
        data_interval_start=now,
        data_interval_end=now,
        run_after=now,
        start_date=now,
        end_date=None,
        run_type=run_type,
        state="running",
        triggering_user_name=user,
        consumed_asset_events=[],
        partition_key=None,
    )


def test_triggering_user():
    assert (
        dag_support.triggering_user({"dag_run": _dag_run("manual", "finance.li")}) == "finance.li"
    )
    assert dag_support.triggering_user({"dag_run": _dag_run("scheduled", None)}) == "scheduler"
    assert dag_support.is_scheduled({"dag_run": _dag_run("scheduled", None)})
    # dag.test(), i.e. `supernova settle`: the OS user
    assert (
        dag_support.triggering_user({"dag_run": _dag_run("manual", "dag_test")})
        == getpass.getuser()
    )


# ---------------------------------------------------------------- ingest_exports: the Asset, failures


@pytest.fixture(scope="module")
def ingest_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "ingest_exports.py")).dags["ingest_exports"]


def _raw_asset_events() -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.count())
            .select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == dag_support.RAW_ASSET_URI)
        )


def test_the_raw_asset_is_updated_only_when_files_were_loaded(ingest_dag, tmp_path, monkeypatch):
    from ingestion_cases.helpers import csv_text, row, write

    monkeypatch.setenv("SUPERNOVA_INGEST_QUIET_SECONDS", "0")
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write(landing, "orders", "o.csv", csv_text([row("orders")]))
    before = _raw_asset_events()
    assert str(
        ingest_dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)}).state
    ).endswith("success")
    assert _raw_asset_events() == before + 1
    run = ingest_dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)})  # nothing new
    assert str(run.state).endswith("success")
    assert _raw_asset_events() == before + 1, "a run that loaded nothing updated the Asset"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["announce_new_data"].endswith("skipped")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failure_is_noted_and_posted_to_the_webhook(ingest_dag, tmp_path, monkeypatch):
    from ingestion_cases.helpers import write

    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(
            dag_support.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_address[1]}/alert"
        )
        monkeypatch.setenv("SUPERNOVA_INGEST_QUIET_SECONDS", "0")
        landing, wh = tmp_path / "landing", tmp_path / "wh"
        write(landing, "orders", "bad.csv", "order_id\nO3\n")  # rejected: columns missing
        run = ingest_dag.test(run_conf={"landing": str(landing), "warehouse": str(wh)})
        assert str(run.state).endswith("failed")
    finally:
        server.shutdown()
    posted = [m for m in _Hook.received if m["dag_id"] == "ingest_exports"]
    assert posted and posted[0]["task_id"] == "ingest_new_files" and "bad.csv" in posted[0]["error"]
    assert posted[0]["text"].startswith("FAILED: ingest_exports")
    notes = list((wh / "alerts").glob("*ingest_new_files*.md"))
    assert notes and "bad.csv" in notes[0].read_text()


def test_waiting_for_the_lease_says_for_whom(tmp_path):
    from supernova import lock

    lock.acquire(
        tmp_path,
        "2026-10-attempt",
        purpose="settlement 2026-10",
        process_bound=False,
        dag_id="monthly_settlement",
        dag_run_id="manual__2026",
    )
    try:
        said = []
        assert dag_support.warehouse_free(tmp_path, log=said.append) is False
        assert (
            "settlement 2026-10" in said[0]
            and "monthly_settlement/manual__2026" in said[0]
            and "since" in said[0]
        )
    finally:
        lock.release(tmp_path, "2026-10-attempt")
    assert dag_support.warehouse_free(tmp_path, log=said.append) is True


def test_first_month_is_configuration():
    assert settlement_config()["first_month"] == "2026-09"


def test_a_bad_first_month_is_a_clear_error(tmp_path, monkeypatch):
    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    cfg_path = project / "dbt_project.yml"
    cfg_path.write_text(
        cfg_path.read_text().replace('first_month: "2026-09"', "first_month: 2026-9")
    )
    monkeypatch.setattr(settings, "DBT_PROJECT_DIR", project)
    with pytest.raises(ValueError, match="first_month .* must be a calendar month written YYYY-MM"):
        settlement_config()


# ---------------------------------------------------------------- refused at trigger time, by the API server

_API_CLIENT = r"""
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

client = TestClient(create_app(apps="core"))
out = {}
for name, conf in json.loads(sys.argv[1]).items():
    r = client.post("/api/v2/dags/monthly_settlement/dagRuns", json={"logical_date": None, "conf": conf})
    out[name] = [r.status_code, r.text]
print("RESULT " + json.dumps(out))
"""


def test_bad_triggers_are_refused_by_the_api_server_in_words(airflow_db):
    """The real Airflow API app with the project's plugins folder: a trigger with a
    misspelt key, preview with a reopen, or a bad month gets HTTP 400 in words before a
    run exists; a good one passes the guard (whatever Airflow then answers)."""
    import subprocess
    import sys

    cases = {
        "misspelt": {"Month": "2026-10"},
        "preview_and_reopen": {
            "month": "2026-10",
            "preview": True,
            "reopen_reason": "late refunds",
        },
        "bad_month": {"month": "2026-13"},
        "good": {"month": "2026-10", "reopen_reason": "late refunds"},
    }
    env = {
        **os.environ,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _API_CLIENT, json.dumps(cases)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT ") :])
    assert (
        got["misspelt"][0] == 400
        and "unknown parameter 'Month' (did you mean 'month'?)" in got["misspelt"][1]
    )
    assert (
        got["preview_and_reopen"][0] == 400 and "exclude each other" in got["preview_and_reopen"][1]
    )
    assert got["bad_month"][0] == 400
    assert "month must be a calendar month written YYYY-MM, e.g. 2026-10" in got["bad_month"][1]
    assert "does not match" not in got["bad_month"][1], (
        "the error must not quote a regular expression"
    )
    assert got["good"][0] != 400 or "refused" not in got["good"][1], got["good"]
