"""Staging's data tests and the daily precompute's read the rows written since they last
all passed, with every row of their keys, not every row ever staged (issue 15;
dbt_project/macros/staging_tests_window.sql).

Every staged row carries `_staged_at`, the stamp of the run that wrote it; a build whose
tests all passed records its stamp as `verified_through` (supernova/staging.py), and the
next run's tests read the rows after it plus the rows sharing a key with one of those.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_staging import QUIET, _copy_days
from test_staging_versions import _copy, staged_week

from ingestion import ingest
from supernova import staging
from supernova.dbt_runner import dbt_invoke

# (table, key columns, the data test that must catch a second row of an old key)
DUPLICATED = {
    "staging.stg_exports__links": (["link_id"], "unique_stg_exports__links_link_id"),
    "intermediate.int_daily__order_attribution": (
        ["order_id"],
        "unique_int_daily__order_attribution_order_id",
    ),
    "intermediate.int_daily__line_events": (
        ["order_id", "line_no"],
        "unique_combination_of_columns_int_daily__line_events_order_id__line_no",
    ),
}
NULL_KEY_TEST = "not_null_stg_exports__buyers_buyer_id"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    return staged_week(tmp_path_factory.mktemp("tests_window"), seed=5)


def _verified_through(wh: Path):
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        return con.execute("select verified_through from staging.staging_code").fetchone()[0]
    finally:
        con.close()


def _failed_tests(exc: staging.StagingFailed) -> set[str]:
    names = set(DUPLICATED_TESTS) | {NULL_KEY_TEST}
    return {name for name in names if name in str(exc)}


DUPLICATED_TESTS = [test for _, test in DUPLICATED.values()]


def _untouched_key(con, table: str, keys: list[str]) -> tuple:
    """A key of `table` that the day being delivered (2026-09-08) does not recompute: the
    second row planted for it stays until removed by hand."""
    day = "_delivery_date = date '2026-09-08'"
    untouched = {
        "staging.stg_exports__links": f"link_id not in (select link_id from raw.links where {day})",
        # orders of the day, and orders of buyers who click that day, are recomputed
        "intermediate.int_daily__order_attribution": (
            f"order_id not in (select order_id from raw.orders where {day})"
            f" and buyer_id not in (select buyer_id from raw.clicks where {day})"
        ),
        "intermediate.int_daily__line_events": (
            f"order_id not in (select order_id from raw.order_events where {day})"
        ),
    }[table]
    return con.execute(
        f"select {', '.join(keys)} from {table} where {untouched} order by all limit 1"
    ).fetchone()


def _plant_faults(wh: Path) -> dict:
    """What a faulty merge could leave: a second row of an old key in three tables, and a
    buyer without id, all written after the last verified run (stamped now)."""
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    planted = {}
    try:
        for table, (keys, _) in DUPLICATED.items():
            key = _untouched_key(con, table, keys)
            match = " and ".join(f"{k} = ?" for k in keys)
            con.execute(
                f"insert into {table} select * replace (current_localtimestamp() + interval 1 hour as _staged_at)"
                f" from {table} where {match}",
                list(key),
            )
            planted[table] = (match, key)
        con.execute(
            "insert into staging.stg_exports__buyers select * replace (null as buyer_id,"
            " current_localtimestamp() + interval 1 hour as _staged_at)"
            " from staging.stg_exports__buyers order by all limit 1"
        )
    finally:
        con.close()
    return planted


def _remove_faults(wh: Path, planted: dict) -> None:
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        for table, (match, key) in planted.items():
            newest = con.execute(
                f"select max(_staged_at) from {table} where {match}", list(key)
            ).fetchone()[0]
            con.execute(f"delete from {table} where {match} and _staged_at = ?", [*key, newest])
        con.execute("delete from staging.stg_exports__buyers where buyer_id is null")
    finally:
        con.close()


def test_rows_written_after_the_last_passing_run_are_tested_with_their_keys(staged, tmp_path):
    """A second row of an old, verified key, written by a later run, fails the key test
    though the old row lies before the window (the window takes every row of the key); a
    null key written then fails not_null (no key to group by). A failed run leaves the
    record, so the next run fails the same way until the rows are fixed."""
    generated, _, base = staged
    wh = _copy(base, tmp_path / "wh")
    verified = _verified_through(wh)
    assert verified is not None
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        for table in [*DUPLICATED, "staging.stg_exports__clicks"]:
            assert con.execute(f"select max(_staged_at) from {table}").fetchone()[0] <= verified
    finally:
        con.close()

    landing = tmp_path / "landing"
    _copy_days(generated, landing, "2026-09-08", "2026-09-08")
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    planted = _plant_faults(wh)
    for _attempt in range(2):
        with pytest.raises(staging.StagingFailed) as failed:
            staging.stage(wh, log=QUIET)
        assert _failed_tests(failed.value) == set(DUPLICATED_TESTS) | {NULL_KEY_TEST}
        assert _verified_through(wh) == verified

    _remove_faults(wh, planted)
    staging.stage(wh, log=QUIET)
    now_verified = _verified_through(wh)
    assert now_verified > verified
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        # the day's rows carry the stamp of the (failed) run that merged them, after the
        # old record; the old rows keep theirs; the new record covers them all
        new, old, latest = con.execute(
            "select count(*) filter (where _staged_at > ?), count(*) filter (where _staged_at <= ?),"
            " max(_staged_at) from staging.stg_exports__clicks",
            [verified, verified],
        ).fetchone()
        day = con.execute(
            "select count(distinct click_id) from raw.clicks where _delivery_date = date '2026-09-08'"
        ).fetchone()[0]
        assert new == day > 0 and old > 5 * new and latest <= now_verified
    finally:
        con.close()
    compiled = next(
        (wh / "dbt" / "target" / "compiled").rglob("unique_stg_exports__clicks_click_id.sql")
    )
    assert (
        f"_staged_at > cast('{verified:%Y-%m-%d %H:%M:%S.%f}' as timestamp)" in compiled.read_text()
    )


def _duplicate_a_link_by_hand(wh: Path) -> None:
    """A second row of an old link, written outside dbt under the old row's stamp."""
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    try:
        con.execute(
            "insert into staging.stg_exports__links select * from staging.stg_exports__links"
            " order by all limit 1"
        )
    finally:
        con.close()


def test_every_row_is_tested_when_asked_or_without_a_record(staged, tmp_path):
    """The trade-off, as documented: a row changed by hand under a verified stamp, in a key
    no run writes again, is not read by the daily tests. `staging_verify_all`, or a build
    with no record of a verified run (the first, or one by hand), reads every row."""
    _, _, base = staged
    wh = _copy(base, tmp_path / "wh")
    verified = _verified_through(wh)
    _duplicate_a_link_by_hand(wh)
    daily = {
        "staging_stamp": "2100-01-01 00:00:00.000000",
        "staging_verified_through": f"{verified:%Y-%m-%d %H:%M:%S.%f}",
    }
    select = ["build", *staging.STAGING_SELECT]
    assert dbt_invoke(wh, select, daily).success
    for dbt_vars in ({**daily, "staging_verify_all": True}, None):
        res = dbt_invoke(wh, select, dbt_vars)
        failed = {
            r.node.name for r in res.result.results if str(r.status).lower() in ("fail", "error")
        }
        assert failed == {"unique_stg_exports__links_link_id"}, dbt_vars


def test_verify_all_builds_a_verified_staging_and_tests_every_row(staged, tmp_path):
    """`supernova marts --verify-all` (the DAG param `verify_all`) reaches staging: a
    staging verified current, which a marts build leaves out, is built and every row of it
    tested; the row changed by hand in the trade-off above fails the marts build."""
    from supernova import marts

    _, _, base = staged
    wh = _copy(base, tmp_path / "wh")
    assert staging.plan_build(wh).skipped  # verified current: a plain build leaves it out
    plan = staging.plan_build(wh, verify_all=True)
    assert not plan.skipped and not plan.full_refresh
    assert plan.vars["staging_verify_all"] is True
    assert plan.vars["staging_verified_through"] == f"{_verified_through(wh):%Y-%m-%d %H:%M:%S.%f}"
    full = staging.plan_build(wh, full_refresh=True)
    assert full.full_refresh and "staging_verified_through" not in full.vars
    _duplicate_a_link_by_hand(wh)
    with pytest.raises(marts.MartsFailed, match="unique_stg_exports__links_link_id"):
        marts.build_step(wh, verify_all=True, log=lambda *_: None)


def test_the_stamp_of_a_run_is_later_than_every_recorded_one(tmp_path):
    """Stamps only grow, even if the clock was set back since the last verified run; a
    full refresh reads every row; an invocation that leaves staging out writes none."""
    con = duckdb.connect(str(tmp_path / "supernova.duckdb"))
    try:
        con.execute("create schema staging")
        con.execute(
            "create table staging.staging_code (fingerprint varchar, verified_files varchar,"
            " recorded_at timestamp, verified_through timestamp)"
        )
        con.execute(
            "insert into staging.staging_code values ('f', 'd', current_timestamp,"
            " timestamp '2100-01-01 00:00:00')"
        )
    finally:
        con.close()
    assert staging.invocation_vars(tmp_path, []) == {
        "staging_stamp": "2100-01-01 00:00:00.000001",
        "staging_verified_through": "2100-01-01 00:00:00.000000",
    }
    assert staging.invocation_vars(tmp_path, ["--full-refresh"]) == {
        "staging_stamp": "2100-01-01 00:00:00.000001"
    }
    assert staging.invocation_vars(tmp_path, list(staging.SKIP_STAGING)) == {}
