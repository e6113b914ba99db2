"""Shared fixtures.

Airflow reads its configuration from the environment at import time, so the temporary
AIRFLOW_HOME is set here, before any test module imports airflow.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import duckdb
import pytest

from supernova import settle as s

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="supernova-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
os.environ["DO_NOT_TRACK"] = "1"
# Fixtures generate their exports and ingest them at once: complete files, so the quiet
# period that protects real deliveries (exports.md; default 60 s) is off for the suite.
# The tests of the quiet period itself pass their own (tests/test_landing_files.py).
os.environ.setdefault("SUPERNOVA_INGEST_QUIET_SECONDS", "0")


# `make test` runs the suite on two pytest-xdist workers. Each worker is its own process
# with its own AIRFLOW_HOME and session fixtures, so a file runs whole on one worker (its
# module fixtures are built once), and the files that share this conftest's settlement
# scenario run on one worker (it is built once, as in a serial run). xdist's own
# `--dist loadgroup` would say this with marks, but it silently ignores them under pytest
# 9.2 (pytest-dev/pytest-xdist#1386), so the grouping is this scheduler's.
_FILES_SHARING_THE_SETTLEMENT_SCENARIO = {
    "test_settlement_run.py",
    "test_reports.py",
    "test_gate_what_to_do.py",
}
# The longest groups start first, so that neither worker is left with one of them at the
# end while the other idles (seconds: pytest --durations on 2 cores, 2026-12-06).
_LONGEST_GROUPS_FIRST = [
    "test_reliability_faults.py",
    "settlement_scenario",
    "test_deployment.py",
    "test_marts_late_files.py",
    "test_serving.py",
    "test_daily_precompute.py",
    "test_landing_money.py",
    "test_settlement_withdrawn.py",
    "test_bench_smoke.py",
]


def _test_group(nodeid: str) -> str:
    file_name = Path(nodeid.split("::", 1)[0]).name
    if file_name in _FILES_SHARING_THE_SETTLEMENT_SCENARIO:
        return "settlement_scenario"
    return file_name


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") not in ("load", "loadscope", "loadfile"):
        return None  # an explicit other --dist (each, worksteal, ...) keeps xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        """xdist's per-file scheduling, with the settlement scenario's files as one unit."""

        def _split_scope(self, nodeid: str) -> str:
            return _test_group(nodeid)

    return FileGroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    def start_rank(item: pytest.Item) -> int:
        group = _test_group(item.nodeid)
        if group in _LONGEST_GROUPS_FIRST:
            return _LONGEST_GROUPS_FIRST.index(group)
        return len(_LONGEST_GROUPS_FIRST)

    # stable: the tests of one file keep their order; xdist hands the groups out in
    # this order (--no-loadscope-reorder)
    items.sort(key=start_rank)


@pytest.fixture(scope="session")
def airflow_db():
    """A real Airflow metadata DB (SQLite) for the whole session."""
    from airflow.utils import db

    db.initdb()
    return Path(_AIRFLOW_HOME)


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory):
    """Generated tiny exports, 2026-09-01 .. 2026-11-07: two settleable months
    (September and October; October's cutoff is 2026-11-08)."""
    from supernova.generator import generate

    out = tmp_path_factory.mktemp("landing")
    generate(out=out, start="2026-09-01", days=68, scale="tiny", seed=7)
    return out


# ---------------------------------------------------------------- settlement scenario

DEFAULT_CONF = {
    "preview": False,
    "reopen_reason": "",
    "accept_suspense_reason": "",
    "attempt_id": "",
}


def _run(dagbag, airflow_db, **conf):
    # every parameter explicitly: dag.test() keeps the params of earlier runs of the
    # same DAG object in this process
    dag = dagbag.dags["monthly_settlement"]
    dagrun = dag.test(run_conf={**DEFAULT_CONF, **conf})
    return str(dagrun.state)


def _parquet_digest(warehouse: Path) -> dict[str, str]:
    base = warehouse / "parquet" / "settlement"
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*.parquet"))
        if "settlement_runs" not in p.parts
    }


def _rows(warehouse: Path, sql: str, params=None):
    con = duckdb.connect(str(warehouse / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# which run wrote a staged row (dbt_project/macros/staging_tests_window.sql): differs
# between an incremental run and a full refresh by design, so rows are compared without it
RUN_STAMP = "_staged_at"


def _rows_only_on_each_side(con, left: str, right: str) -> tuple[int, int]:
    """(rows of `left` not in `right`, rows of `right` not in `left`), duplicates counted:
    (0, 0) when the two relations hold the same rows (incremental vs full refresh), but
    for RUN_STAMP."""

    def rows(relation: str) -> str:
        columns = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]
        return (
            f"select * exclude ({RUN_STAMP}) from {relation}"
            if RUN_STAMP in columns
            else f"select * from {relation}"
        )

    return tuple(
        con.execute(f"select count(*) from ({rows(a)} except all {rows(b)})").fetchone()[0]
        for a, b in ((left, right), (right, left))
    )


def _latest_state(warehouse: Path, month: str) -> dict:
    runs = sorted(
        (warehouse / "runs").glob(f"{month}-*/state.json"), key=lambda p: p.stat().st_mtime
    )
    return s.RunState(warehouse, runs[-1].parent.name).load()


@pytest.fixture(scope="session")
def settlement_scenario(tiny_landing, tmp_path_factory, dagbag, airflow_db):
    """The settlement scenario of tests/test_settlement_run.py (see its docstring), shared
    with the report tests: one warehouse, runs a–g, with each attempt's state."""
    wh = tmp_path_factory.mktemp("warehouse")
    out: dict = {"warehouse": wh}
    common = {"landing": str(tiny_landing), "warehouse": str(wh)}

    # a. a planted fault between build and gate: one payout's net_paid is off by a fen
    real_build = s.build_step

    def build_then_corrupt(ctx, plan, log=print):
        result = real_build(ctx, plan, log)
        con = duckdb.connect(str(wh / "supernova.duckdb"))
        con.execute(
            "update settlement_build.payouts set net_paid = net_paid + 0.01 "
            "where promoter_id = (select min(promoter_id) from settlement_build.payouts where status = 'paid')"
        )
        con.close()
        return result

    s.build_step = build_then_corrupt
    try:
        out["a_state"] = _run(dagbag, airflow_db, month="2026-09", **common)
    finally:
        s.build_step = real_build
    out["a_run"] = _latest_state(wh, "2026-09")
    out["a_published"] = _rows(
        wh,
        "select count(*) from information_schema.tables where table_schema = 'settlement' and table_name = 'payouts'",
    )[0][0]
    out["a_parquet"] = (wh / "parquet" / "settlement" / "payouts").exists()

    # b. September through the CLI
    from supernova.cli import main

    out["b_rc"] = main(
        ["settle", "--month", "2026-09", "--landing", str(tiny_landing), "--warehouse", str(wh)]
    )
    out["b_run"] = _latest_state(wh, "2026-09")

    # c. October preview
    out["c_state"] = _run(dagbag, airflow_db, month="2026-10", preview=True, **common)
    out["c_run"] = _latest_state(wh, "2026-10")
    out["c_months"] = _rows(
        wh, "select distinct settlement_month from settlement.payouts order by 1"
    )

    # d. October
    out["d_state"] = _run(dagbag, airflow_db, month="2026-10", **common)
    out["d_run"] = _latest_state(wh, "2026-10")
    out["d_digest"] = _parquet_digest(wh)

    # e. October again
    out["e_state"] = _run(dagbag, airflow_db, month="2026-10", **common)
    out["e_run"] = _latest_state(wh, "2026-10")
    out["e_digest"] = _parquet_digest(wh)

    # f. November before its cutoff
    out["f_state"] = _run(dagbag, airflow_db, month="2026-11", **common)
    out["f_run"] = _latest_state(wh, "2026-11")

    # snapshot of October as first published, for the reopen comparison
    out["oct_lines_before_reopen"] = _rows(
        wh,
        "select count(*), sum(amount) from settlement.payout_lines where settlement_month = '2026-10'",
    )[0]

    # g. October reopened
    out["g_state"] = _run(
        dagbag,
        airflow_db,
        month="2026-10",
        reopen_reason="test: finance asked to recompute",
        **common,
    )
    return out
