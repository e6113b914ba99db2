"""The versions views (stg_exports__*_versions: every delivered row) and the builds that
keep them (issue 15).

Their key check costs one delivery: the keys of the files not staged yet, counted over
every delivered row (dbt_project/macros/staging_key_checks.sql). It reads only the new
files, yet a new file bringing a key an old file already has still fails it. And a build
that does not leave staging out builds all of it, views included, so the next
settlement build finds staging verified current and leaves it out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from test_staging import QUIET, _copy_days, _rewrite

from ingestion import ingest
from ingestion.schema import refresh_view
from supernova import staging
from supernova.dbt_runner import dbt_invoke

ORDERS_CHECK = "test.supernova.unique_combination_of_columns_stg_exports__order_versions_"
VERSIONS = ("order", "click", "link", "group", "sku", "commission_rule")


def staged_week(root: Path, seed: int) -> tuple[Path, Path, Path]:
    """A week of deliveries, ingested and staged as the ingest path does (staging verified
    current); a day more generated but not delivered yet: (generated, landing, warehouse)."""
    from supernova.generator import generate

    generated = root / "generated"
    generate(out=generated, start="2026-09-01", days=8, scale="tiny", seed=seed, mess=False)
    landing, wh = root / "landing", root / "warehouse"
    _copy_days(generated, landing, "2026-09-01", "2026-09-07")
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    staging.stage(wh, log=QUIET)
    assert staging.verified_current(wh) is not None
    return generated, landing, wh


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    return staged_week(tmp_path_factory.mktemp("versions"), seed=11)


def _copy(wh: Path, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy2(wh / "supernova.duckdb", dest / "supernova.duckdb")
    shutil.copytree(wh / "raw", dest / "raw")  # these tests ingest: not the shared raw
    return dest


def _build_staging(wh: Path):
    return dbt_invoke(wh, ["build", *staging.STAGING_SELECT])


def _result(res, prefix: str):
    (found,) = [r for r in res.result.results if r.node.unique_id.startswith(prefix)]
    return found


def _rows_scanned(con, sql: str) -> int:
    plan = con.execute(f"explain (analyze, format json) {sql}").fetchall()[-1][1]
    return json.loads(plan)["query"]["total_rows_scanned"]


def test_the_daily_check_reads_only_the_new_files(staged, tmp_path):
    generated, _, base = staged
    wh = _copy(base, tmp_path / "wh")
    landing = tmp_path / "landing"
    _copy_days(generated, landing, "2026-09-08", "2026-09-08")
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)

    res = _build_staging(wh)
    assert res.success, res.exception
    check = _result(res, ORDERS_CHECK)
    assert str(check.status) == "pass"
    sql = check.node.compiled_code
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        (new_file,) = con.execute(
            "select file_path from raw.manifest where export = 'orders' and status = 'loaded'"
            " and delivery_date = date '2026-09-08'"
        ).fetchone()
        new_rows, all_rows = con.execute(
            "select count(*) filter (where _delivery_date = date '2026-09-08'), count(*)"
            " from raw.orders"
        ).fetchone()
        # the old rows are read only where they share the new rows' _file_name
        assert f"where (delivered._file_name in ('{new_file}'))" in sql
        # the new file twice (its keys, and every row with such a key), nothing else
        assert _rows_scanned(con, sql) == 2 * new_rows
        # what the check over every delivered row read each day before (issue 15)
        full = (
            "select _file_name, _line_no, count(*) as n from staging.stg_exports__order_versions"
            " group by _file_name, _line_no having count(*) > 1"
        )
        assert _rows_scanned(con, full) == all_rows
        assert all_rows > 7 * new_rows
    finally:
        con.close()

    # nothing new: the check reads nothing at all
    res = _build_staging(wh)
    assert res.success, res.exception
    assert "where 1 = 0" in _result(res, ORDERS_CHECK).node.compiled_code


def test_a_new_file_with_a_key_of_an_old_file_fails_the_check(staged, tmp_path):
    """Upstream rewrote a file in place: its new load supersedes the old one. Were the old
    rows left in raw (here: the supersession undone by hand), every key of the new file
    would exist twice, which a uniqueness check over the new rows alone cannot see."""
    _, base_landing, base = staged
    wh = _copy(base, tmp_path / "wh")
    landing = tmp_path / "landing"
    (old,) = sorted((base_landing / "orders" / "2026-09-03").glob("*.csv"))
    rewritten = landing / "orders" / "2026-09-03" / old.name
    lines = _rewrite(
        old, rewritten, lambda r: {**r, "paid_amount": f"{float(r['paid_amount']) + 1:.2f}"}
    )
    result = ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    assert [f.path for f in result.superseding] == [f"orders/2026-09-03/{old.name}"]
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        con.execute("update raw.manifest set status = 'loaded' where status = 'superseded'")
        refresh_view(con, wh, "orders")
        (new_sha,) = con.execute(
            "select sha256 from raw.manifest where export = 'orders' and file_path = ?"
            " order by loaded_at desc limit 1",
            [f"orders/2026-09-03/{old.name}"],
        ).fetchone()
        within_new = con.execute(
            "select count(*), count(distinct (_file_name, _line_no)) from raw.orders"
            " where _file_sha256 = ?",
            [new_sha],
        ).fetchone()
    finally:
        con.close()
    assert within_new == (lines, lines)  # unique among the new rows

    res = _build_staging(wh)
    assert not res.success
    check = _result(res, ORDERS_CHECK)
    assert str(check.status) == "fail" and check.failures == lines
    assert "_file_sha256 in ('" + new_sha + "')" in check.node.compiled_code
    # the staging model waits for the check: the file stays new for the next build
    assert str(_result(res, "model.supernova.stg_exports__orders").status) == "skipped"
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        recorded = con.execute(
            "select count(*) from staging.staged_files"
            " where model = 'stg_exports__orders' and sha256 = ?",
            [new_sha],
        ).fetchone()[0]
    finally:
        con.close()
    assert recorded == 0
    res = _build_staging(wh)
    assert str(_result(res, ORDERS_CHECK).status) == "fail"


def test_the_close_after_a_close_leaves_staging_out(tiny_landing, tmp_path, monkeypatch):
    """`make demo`: September's settlement build merges the deliveries into staging (the
    ingest path did not stage them); October's build must then leave staging out."""
    from supernova import settle as s
    from supernova.run_state import RunState
    from supernova.warehouse import connect, table_exists

    landing, wh = tmp_path / "landing", tmp_path / "wh"
    shutil.copytree(tiny_landing, landing)
    builds = []

    def recorded_invoke(*args, **kwargs):
        res = s_dbt_invoke(*args, **kwargs)
        builds.append([r.node.original_file_path for r in res.result.results])
        return res

    s_dbt_invoke = s.dbt_invoke
    monkeypatch.setattr(s, "dbt_invoke", recorded_invoke)
    ctx = s.begin(
        {
            "month": "2026-09",
            "landing": str(landing),
            "warehouse": str(wh),
            "preview": False,
            "reopen_reason": "",
            "accept_suspense_reason": "",
            "attempt_id": "2026-09-versions",
        }
    )
    try:
        s.ingest_step(ctx, log=QUIET)
        plan = s.plan_step(ctx, log=QUIET)
        assert plan["action"] == "settle"
        assert staging.verified_current(wh) is None  # loaded, not staged
        s.build_step(ctx, plan, log=QUIET)
        assert staging.verified_current(wh) is not None
        assert staging.invocation_args(wh, log=QUIET) == staging.SKIP_STAGING
        with connect(wh) as con:
            for v in VERSIONS:
                assert table_exists(con, "staging", f"stg_exports__{v}_versions"), v
        s.build_step(ctx, plan, log=QUIET)  # as October's would: nothing new was delivered
        nodes = RunState(wh, ctx["attempt_id"]).load()["build"]["nodes"]
    finally:
        s.finish_step(ctx, log=QUIET)
    first, second = builds

    def staging_nodes(paths):
        return [p for p in paths if p.startswith(("models/staging/", "models/daily/"))]

    assert len(staging_nodes(first)) > 0
    assert staging_nodes(second) == []
    assert nodes == len(second) < len(first)
