"""The one dbt failure parser (supernova/dbt_runner.py) on what dbt really reports.

A tiny dbt project is built with the real dbtRunner: a model whose SQL fails (error), a
model downstream of it (skipped), a data test that finds rows (fail, with its count) and a
data test whose SQL fails (error). "runtime error" is what dbt reports for a source whose
freshness query fails (FreshnessStatus.RuntimeErr, value with a space): that result is a
real result of the run with its status replaced, since building a freshness failure takes
a second invocation. The parser of the old settle module matched "runtimeerr", a value dbt
never emits, and ignored skipped nodes: both are checked here.
"""

from __future__ import annotations

import dataclasses
import textwrap
from types import SimpleNamespace

import pytest

from supernova import dbt_runner, settings

PROJECT = {
    "dbt_project.yml": """
        name: tiny
        version: "1.0.0"
        config-version: 2
        profile: supernova
        model-paths: ["models"]
        test-paths: ["tests"]
    """,
    "models/good.sql": "select 1 as id union all select null as id",
    "models/broken.sql": "select no_such_column from (select 1 as id) as t",
    "models/downstream.sql": "select * from {{ ref('broken') }}",
    "models/schema.yml": """
        version: 2
        models:
          - name: good
            columns:
              - name: id
                data_tests: [not_null]
    """,
    "tests/broken_test.sql": "select * from {{ ref('good') }} where no_such_column = 1",
}


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_dbt")
    project = root / "project"
    for name, text in PROJECT.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).strip() + "\n")
    # the real profile (the duckdb target reads SUPERNOVA_DUCKDB_PATH, set by dbt_invoke)
    profile = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text()
    (project / "profiles.yml").write_text(profile)
    warehouse = root / "warehouse"
    warehouse.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "DBT_PROJECT_DIR", project)
        mp.delenv("SUPERNOVA_DBT_TARGET", raising=False)
        res = dbt_runner.dbt_invoke(warehouse, ["build"])
    return res, warehouse


def test_dbt_status_values_are_dbts_own():
    from dbt.artifacts.schemas.results import (
        FreshnessStatus,
        NodeStatus,
        RunStatus,
        TestStatus,
    )

    assert dbt_runner.ERROR == RunStatus.Error == TestStatus.Error == NodeStatus.Error
    assert dbt_runner.FAIL == TestStatus.Fail == NodeStatus.Fail
    assert dbt_runner.RUNTIME_ERROR == FreshnessStatus.RuntimeErr == NodeStatus.RuntimeErr
    assert dbt_runner.SKIPPED == RunStatus.Skipped == TestStatus.Skipped == NodeStatus.Skipped


def test_each_failed_status_of_a_real_build_is_recognised(tiny_result):
    res, _ = tiny_result
    assert not res.success
    by_name = {f.name: f for f in dbt_runner.failures(res)}
    assert sorted(by_name) == ["broken", "broken_test", "downstream", "not_null_good_id"]
    assert by_name["broken"].status == "error"
    assert by_name["broken"].node == "model.tiny.broken"
    assert "no_such_column" in by_name["broken"].message
    assert by_name["not_null_good_id"].status == "fail"
    assert by_name["not_null_good_id"].failures == 1
    assert by_name["broken_test"].status == "error"
    assert by_name["downstream"].status == "skipped"
    assert by_name["downstream"].message == "not run: a node it depends on failed"
    # failures first, then what they kept from running
    assert [f.skipped for f in dbt_runner.failures(res)] == [False, False, False, True]
    # nodes that succeeded are not reported
    assert "good" not in by_name


def test_runtime_error_is_recognised_as_dbt_writes_it(tiny_result):
    from dbt.artifacts.schemas.results import FreshnessStatus

    res, _ = tiny_result
    model = next(r for r in res.result.results if r.node.name == "good")
    runtime = dataclasses.replace(
        model, status=FreshnessStatus.RuntimeErr, message="freshness query failed"
    )
    fake = SimpleNamespace(result=SimpleNamespace(results=[runtime]), exception=None)
    found = dbt_runner.failures(fake)
    assert [(f.name, f.status, f.message) for f in found] == [
        ("good", "runtime error", "freshness query failed")
    ]
    # the parser this one replaced (settle._failures) matched a status dbt never emits
    assert str(runtime.status).lower() not in ("error", "fail", "runtimeerr")


def test_dbts_own_exception_is_reported():
    fake = SimpleNamespace(result=None, exception=RuntimeError("Could not find profile"))
    assert dbt_runner.failures(fake) == [
        dbt_runner.DbtFailure("dbt", "dbt", "exception", "Could not find profile")
    ]


def test_failing_rows_of_a_failed_test_are_read_back(tiny_result):
    res, warehouse = tiny_result
    rows = dbt_runner.failing_test_rows(res, warehouse)
    by_test = {node.split(".")[2]: value for node, value in rows.items()}  # ids end in a hash
    assert by_test["not_null_good_id"] == {"examples": [{"id": "None"}]}
    assert "no_such_column" in by_test["broken_test"]["examples_error"].lower()
