"""dbt in this process: one invocation on a warehouse, dbt-duckdb's handle given back
afterwards, and what failed read from dbt's own result statuses.

Used by every caller of dbt (the settlement's build step, staging, the marts, benchmarks,
tests), so a failure is recognised and worded the same way wherever dbt runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from supernova import settings
from supernova.faults import dbt_callbacks
from supernova.warehouse import connect, wait_until_free

# dbt's status values for a node that did not succeed (dbt.artifacts.schemas.results:
# RunStatus, TestStatus, FreshnessStatus, all within NodeStatus). Written out so this module
# imports without dbt; tests/test_dbt_runner.py checks them against dbt's enums.
ERROR = "error"  # a model, seed or snapshot failed, or a test's SQL did not run
FAIL = "fail"  # a data test found failing rows
RUNTIME_ERROR = "runtime error"  # NodeStatus.RuntimeErr (source freshness); with a space
SKIPPED = "skipped"  # not run: a node it depends on failed
FAILED_STATUSES = (ERROR, FAIL, RUNTIME_ERROR)
EXCEPTION = "exception"  # dbt itself raised (bad arguments, project that does not parse)


@dataclass(frozen=True)
class DbtFailure:
    """One node that did not succeed, or dbt's own exception (node "dbt")."""

    node: str  # unique id: model.supernova.x, test.supernova.y, ...
    name: str
    status: str  # one of FAILED_STATUSES, SKIPPED or EXCEPTION
    message: str
    failures: int | None = None  # failing rows a data test counted

    @property
    def skipped(self) -> bool:
        return self.status == SKIPPED

    def line(self, limit: int = 500) -> str:
        return f"{self.name}: {self.status}: {self.message[:limit]}"


def dbt_invoke(warehouse: Path, args: list[str], vars_: dict | None = None):
    """One dbt invocation in this process against the warehouse file; returns dbt's
    dbtRunnerResult. The warehouse file is free again when this returns."""
    from dbt.cli.main import dbtRunner

    warehouse = Path(warehouse)
    wait_until_free(warehouse)  # dbt opens the file itself: wait (bounded) for a reader holding it
    os.environ["SUPERNOVA_DUCKDB_PATH"] = str(settings.duckdb_path(warehouse))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    full = args + [
        "--project-dir",
        str(settings.DBT_PROJECT_DIR),
        "--profiles-dir",
        str(settings.DBT_PROJECT_DIR),
        "--target-path",
        str(warehouse / "dbt" / "target"),
        "--log-path",
        str(warehouse / "dbt" / "logs"),
    ]
    if vars_ is not None:
        full += ["--vars", json.dumps(vars_)]
    try:
        return dbtRunner(callbacks=dbt_callbacks()).invoke(full)
    finally:
        release_duckdb()


def release_duckdb() -> None:
    """dbt-duckdb keeps the database open in this process after the invocation; close it
    so the next step (or another process) can open the file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None and hasattr(env, "close"):
            env.close()


def failures(res) -> list[DbtFailure]:
    """What did not succeed in a dbt invocation's result: failed and errored nodes first
    (in dbt's order), then the nodes skipped because of them, then dbt's own exception."""
    failed, skipped = [], []
    for r in getattr(res.result, "results", None) or []:
        status = str(getattr(r, "status", "")).lower()
        if status not in FAILED_STATUSES and status != SKIPPED:
            continue
        node = r.node
        message = (r.message or "").strip()
        if status == SKIPPED and not message:
            message = "not run: a node it depends on failed"
        item = DbtFailure(node.unique_id, node.name, status, message, r.failures)
        (skipped if item.skipped else failed).append(item)
    out = failed + skipped
    if res.exception is not None:
        out.append(DbtFailure("dbt", "dbt", EXCEPTION, str(res.exception)))
    return out


def failing_test_rows(res, warehouse: Path, limit: int = 5) -> dict[str, dict]:
    """For each failed data test: up to `limit` of its failing rows ({"examples": [...]})
    or why they could not be read ({"examples_error": ...}), by the test's unique id."""
    queries = [
        (r.node.unique_id, r.node.compiled_code)
        for r in getattr(res.result, "results", None) or []
        if str(getattr(r, "status", "")).lower() in FAILED_STATUSES
        and r.node.resource_type == "test"
        and getattr(r.node, "compiled_code", None)
    ]
    out: dict[str, dict] = {}
    if not queries:
        return out
    with connect(warehouse, read_only=True) as con:
        for node, sql in queries:
            try:
                cur = con.execute(f"select * from ({sql}) as failing limit {int(limit)}")
                cols = [d[0] for d in cur.description]
                out[node] = {"examples": [dict(zip(cols, map(str, row))) for row in cur.fetchall()]}
            except Exception as exc:  # the example query is a courtesy; the failure stands
                out[node] = {"examples_error": str(exc)}
    return out
