"""Incremental staging (dbt_project/macros/staging.sql) gives exactly what deduplicating
the whole history gives.

Deliveries arrive in three batches: the second re-delivers some order lines of an earlier
day; the third brings a late correction file filed under that old delivery date (re-delivered orders with new amounts, re-delivered events without
event_id, a click moved to another link, a group snapshot re-stated) and with the
generator's messy inputs. A fourth batch changes two loaded files in place (issue 19:
upstream rewrote them; each supersedes its earlier load): order lines and events dropped,
amounts changed, event_ids cut short, so some staged keys no longer exist in raw at all.
After each batch the staging models are built incrementally; at the end every staging
table must equal, row for row, a full rebuild of the same raw data, and what each model
recorded as staged must be every loaded file of its export.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import RUN_STAMP

from ingestion import ingest
from supernova.dbt_runner import dbt_invoke

STAGING = [
    "stg_exports__" + e
    for e in (
        "buyers",
        "clicks",
        "commission_rules",
        "groups",
        "links",
        "order_events",
        "orders",
        "promoters",
        "skus",
    )
]
EXPORT_OF = {m: m.removeprefix("stg_exports__") for m in STAGING}
SELECT = ["--select", "path:models/staging", "--exclude-resource-type", "unit_test"]


def QUIET(*a, **k):
    return None


def _copy_days(src: Path, dest: Path, first: str, last: str) -> None:
    for export_dir in src.iterdir():
        for day_dir in export_dir.iterdir():
            if first <= day_dir.name <= last:
                shutil.copytree(day_dir, dest / export_dir.name / day_dir.name, dirs_exist_ok=True)


def _rewrite(src: Path, dest: Path, change) -> int:
    """Copy a CSV export file, changing rows with change(row) -> row | None (None drops)."""
    with src.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys())
    out = [r2 for r in rows if (r2 := change(dict(r))) is not None]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(out)
    return len(out)


def _redelivery(generated: Path, landing: Path, day: str, into: str) -> None:
    """Some of `day`'s order lines delivered again on a later day `into`."""

    def orders(r):
        if int(r["order_id"][-1]) % 6:
            return None
        r["paid_amount"] = f"{float(r['paid_amount']) + 2:.2f}"
        return r

    src = sorted((generated / "orders" / day).glob("*.csv"))[0]
    assert _rewrite(src, landing / "orders" / into / "zz-redelivery.csv", orders) > 0


def _late_corrections(generated: Path, landing: Path, day: str) -> None:
    """Files delivered late under an old delivery date: they sort after that day's own
    files (later file name) but before every later day's files."""

    def orders(r):
        if int(r["order_id"][-1]) % 3:
            return None
        r["paid_amount"] = f"{float(r['paid_amount']) + 1:.2f}"
        return r

    def events(r):  # the same events again, this time without event_id (whole-row identity)
        r["event_id"] = ""
        return r

    def clicks(r):
        if int(r["click_id"][-1]) % 2:
            return None
        return r

    def groups(r):
        r["member_count"] = str(int(r["member_count"] or 0) + 5)
        return r

    for export, change in (
        ("orders", orders),
        ("order_events", events),
        ("clicks", clicks),
        ("groups", groups),
    ):
        src = sorted((generated / export / day).glob("*.csv"))[0]
        assert _rewrite(src, landing / export / day / "zz-late-correction.csv", change) > 0


def _change_in_place(landing: Path, day: str) -> list[str]:
    """Upstream rewrites `day`'s orders and order_events files in place (same paths):
    a quarter of the lines dropped, a quarter with new amounts / event_ids cut short."""

    def orders(r):
        if None in r:
            return None
        k = int(r["order_id"][-1]) % 4
        if k == 0:
            return None
        if k == 1:
            r["paid_amount"] = f"{float(r['paid_amount']) + 3:.2f}"
        return r

    def events(r):
        if None in r:
            return None
        k = int(r["order_id"][-1]) % 4
        if k == 0:
            return None
        if k == 1 and r["event_id"]:
            r["event_id"] = r["event_id"][:-1]
        return r

    changed = []
    for export, change in (("orders", orders), ("order_events", events)):
        path = sorted((landing / export / day).glob("*.csv"))[0]
        assert _rewrite(path, path, change) > 0
        changed.append(path.relative_to(landing).as_posix())
    return changed


def _build(wh: Path, *extra: str) -> None:
    res = dbt_invoke(wh, ["build", *SELECT, *extra])
    assert res.success, res.exception or [
        (r.node.unique_id, str(r.status), r.message)
        for r in res.result.results
        if str(r.status).lower() not in ("success", "pass")
    ]


def _table(con, model: str) -> list[tuple]:
    """Every row of a staging model, but RUN_STAMP: which run wrote a row differs between a
    rebuild and the incremental runs by design (tests/test_staging_tests_window.py)."""
    return con.execute(
        f"select * exclude ({RUN_STAMP}) from staging.{model} order by all"
    ).fetchall()


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    from supernova.generator import generate

    root = tmp_path_factory.mktemp("staging")
    generated = root / "generated"
    generate(out=generated, start="2026-09-01", days=20, scale="tiny", seed=11, mess=True)
    landing, inc = root / "landing", root / "incremental"
    batches = [
        ("2026-09-01", "2026-09-07"),
        ("2026-09-08", "2026-09-14"),
        ("2026-09-15", "2026-09-20"),
    ]
    for i, (first, last) in enumerate(batches):
        _copy_days(generated, landing, first, last)
        if i == 1:
            _redelivery(generated, landing, "2026-09-03", into="2026-09-10")
        if i == 2:  # ingested after the re-delivery above, but delivered (filed) before it
            _late_corrections(generated, landing, "2026-09-03")
        ingest(landing, inc, progress=QUIET, quiet_seconds=0)
        _build(inc)
    changed = _change_in_place(landing, "2026-09-05")
    result = ingest(landing, inc, progress=QUIET, quiet_seconds=0)
    assert sorted(f.path for f in result.superseding) == sorted(changed), result.summary()
    _build(inc)
    full = root / "full"
    full.mkdir()
    shutil.copy2(inc / "supernova.duckdb", full / "supernova.duckdb")
    (full / "raw").symlink_to(inc / "raw")
    _build(full, "--full-refresh")
    return inc, full


def test_a_full_build_stores_clicks_and_orders_in_time_order(staged):
    """The daily precompute reads only recent clicks and orders by literal time bounds;
    DuckDB skips row groups by min/max only when rows are stored in time order, as the
    daily merges append them. A full build must store them that way too (it otherwise
    writes hash order: every row group spans the whole history)."""
    _, full = staged
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        for model, column in (
            ("stg_exports__clicks", "clicked_at"),
            ("stg_exports__orders", "ordered_at"),
        ):
            out_of_order, rows = con.execute(
                f"select count(*) filter (where {column} < previous), count(*) from ("
                f"select {column}, lag({column}) over (order by rowid) as previous "
                f"from staging.{model})"
            ).fetchone()
            assert rows > 1000 and out_of_order == 0, (model, out_of_order, rows)
    finally:
        con.close()


def test_incremental_staging_equals_a_full_rebuild(staged):
    inc, full = staged
    a = duckdb.connect(str(inc / "supernova.duckdb"), read_only=True)
    b = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        for model in STAGING:
            rows_inc, rows_full = _table(a, model), _table(b, model)
            assert rows_full, model
            assert rows_inc == rows_full, (
                f"{model}: incremental staging differs from a full rebuild"
            )
        # the late correction really won somewhere (otherwise this test proves little)
        won = a.execute(
            "select count(*) from staging.stg_exports__orders "
            "where _file_name like '%/zz-late-correction.csv'"
        ).fetchone()[0]
        assert won > 0
        lost = a.execute(
            "select count(*) from raw.orders o join staging.stg_exports__orders s "
            "using (order_id, line_no) where o._file_name like '%/zz-late-correction.csv' "
            "and s._file_name not like '%/zz-late-correction.csv'"
        ).fetchone()[0]
        assert lost > 0  # 2026-09-10 re-delivered some of those lines: the later delivery wins
        redelivered = a.execute(
            "select count(*) from staging.stg_exports__orders "
            "where _file_name like '%/zz-redelivery.csv'"
        ).fetchone()[0]
        assert redelivered == lost
        # the files changed in place really withdrew keys (staged before, gone from raw)
        superseded = a.execute(
            "select count(*) from raw.manifest where status = 'superseded'"
        ).fetchone()[0]
        assert superseded == 2
        withdrawn = a.execute("select count(*) from staging.withdrawn_files").fetchone()[0]
        assert withdrawn == 2  # handled once, by the model of each export
        # ... among them keys that no longer exist in raw at all (the stale-row delete ran)
        ((old_sha, date),) = a.execute(
            "select sha256, cast(delivery_date as varchar) from raw.manifest "
            "where status = 'superseded' and export = 'order_events'"
        ).fetchall()
        old_file = inc / "raw" / "order_events" / f"delivery_date={date}" / f"{old_sha}.parquet"
        vanished = a.execute(
            f"select count(*) from read_parquet('{old_file}') w where w.event_id is not null "
            "and w.event_id not in (select event_id from raw.order_events "
            "where event_id is not null)"
        ).fetchone()[0]
        assert vanished > 0
    finally:
        a.close()
        b.close()


def test_every_loaded_file_is_recorded_as_staged(staged):
    inc, _ = staged
    con = duckdb.connect(str(inc / "supernova.duckdb"), read_only=True)
    try:
        for model, export in EXPORT_OF.items():
            loaded = {
                r[0]
                for r in con.execute(
                    "select sha256 from raw.manifest where export = ? and status = 'loaded'",
                    [export],
                ).fetchall()
            }
            staged_ = {
                r[0]
                for r in con.execute(
                    "select sha256 from staging.staged_files where model = ?", [model]
                ).fetchall()
            }
            assert loaded and staged_ == loaded, model
            dup = con.execute(
                "select count(*) - count(distinct sha256) from staging.staged_files "
                "where model = ?",
                [model],
            ).fetchone()[0]
            assert dup == 0, model
    finally:
        con.close()


def test_a_build_with_nothing_new_reads_no_keys_and_changes_nothing(staged, tmp_path):
    inc, _ = staged
    wh = tmp_path / "again"
    wh.mkdir()
    shutil.copy2(inc / "supernova.duckdb", wh / "supernova.duckdb")
    (wh / "raw").symlink_to(inc / "raw")
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    before = {m: _table(con, m) for m in STAGING}
    con.close()
    _build(wh)
    compiled = (
        wh
        / "dbt"
        / "target"
        / "compiled"
        / "supernova"
        / "models"
        / "staging"
        / "stg_exports__clicks.sql"
    ).read_text()
    assert "where 1 = 0" in compiled  # no new file: the model selects nothing to replace
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        for m in STAGING:
            assert _table(con, m) == before[m], m
    finally:
        con.close()


def test_changed_staging_code_forces_a_full_refresh(staged, tmp_path, monkeypatch):
    from supernova import staging

    inc, full = staged
    wh = tmp_path / "code"
    wh.mkdir()
    shutil.copy2(inc / "supernova.duckdb", wh / "supernova.duckdb")
    (wh / "raw").symlink_to(inc / "raw")
    # built above by plain dbt invocations: no code record, so the next build is full
    assert staging.full_refresh_reason(wh) == "staging was built before its code was recorded"
    staging.record_built(wh, staging.code_fingerprint())
    assert staging.full_refresh_reason(wh) is None and staging.build_args(wh, log=QUIET) == []

    # the code as it was when the build started is what gets recorded: a model or macro
    # edited while dbt ran is not "built" (the next build is a full refresh)
    staging.record_built(wh, "the staging code when the build started")
    assert (
        staging.full_refresh_reason(wh) == "the staging code changed since staging was last built"
    )
    staging.record_built(wh, staging.code_fingerprint())
    assert staging.full_refresh_reason(wh) is None

    monkeypatch.setattr(staging, "code_fingerprint", lambda: "a different staging code")
    assert (
        staging.full_refresh_reason(wh) == "the staging code changed since staging was last built"
    )
    res = staging.stage(wh, log=QUIET)
    assert res["full_refresh"] is True
    assert staging.full_refresh_reason(wh) is None  # recorded: the next build is incremental
    a = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    b = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        for m in STAGING:
            assert _table(a, m) == _table(b, m), m
    finally:
        a.close()
        b.close()


def test_staging_code_fingerprint_covers_the_models_and_their_macros():
    from supernova import settings, staging

    names = {str(p.relative_to(settings.DBT_PROJECT_DIR)) for p in staging.code_files()}
    assert {"macros/staging.sql", "macros/settlement_config.sql"} <= names
    assert {f"models/staging/{m}.sql" for m in STAGING} <= names
    # the daily precompute is built with staging: its model and §1's macros count too
    assert {
        "models/daily/int_daily__order_attribution.sql",
        "macros/attribution.sql",
        "models/daily/int_daily__line_events.sql",
        "macros/line_events.sql",
    } <= names


def test_staging_is_left_out_of_a_build_only_when_verified_current(staged, tmp_path):
    """A settlement or marts build leaves staging out (its models and data tests) only
    when every loaded file is staged AND staging's tests passed on exactly those files:
    a merge that was never tested (a failed build, a plain `dbt run`) is tested again."""
    from supernova import staging

    inc, _ = staged
    generated = inc.parent / "generated"
    wh = tmp_path / "verified"
    wh.mkdir()
    shutil.copy2(inc / "supernova.duckdb", wh / "supernova.duckdb")
    shutil.copytree(inc / "raw", wh / "raw")  # this test ingests: not the shared raw
    # built by plain dbt invocations above: nothing verified yet
    assert staging.verified_current(wh) is None and staging.skip_args(wh, log=QUIET) == []
    first = staging.stage(wh, log=QUIET)
    assert not first.get("skipped")
    assert staging.verified_current(wh) is not None
    assert staging.skip_args(wh, log=QUIET) == staging.SKIP_STAGING
    assert staging.stage(wh, log=QUIET)["skipped"] is True  # nothing new: nothing to do
    since = staging.verified_current(wh)
    staging.record_built(
        wh, staging.code_fingerprint()
    )  # as after a build that left staging out: tests ran no later
    assert staging.verified_current(wh) == since

    # a new delivery: loaded but not staged
    landing = tmp_path / "landing"
    src = sorted((generated / "clicks" / "2026-09-05").glob("*.csv"))[0]
    assert (
        _rewrite(
            src,
            landing / "clicks" / "2026-09-21" / "late-clicks.csv",
            lambda r: None if None in r else r,
        )
        > 0
    )  # (the mess's ragged rows dropped)
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    assert staging.verified_current(wh) is None
    # merged without its tests (and without the record a successful build writes); the
    # staging stage includes the daily precompute (models/daily), which consumes files too
    res = dbt_invoke(wh, ["run", "--select", "path:models/staging", "path:models/daily"])
    assert res.success, res.exception
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        assert staging._unstaged_files(con) == 0
    finally:
        con.close()
    assert staging.verified_current(wh) is None  # staged, but never tested on these files
    assert staging.stage(wh, log=QUIET).get("skipped") is None
    assert staging.verified_current(wh) is not None

    # what the exclusion leaves out: every staging model and test, nothing else
    res = dbt_invoke(
        wh,
        [
            "ls",
            "--select",
            "+path:models/settlement",
            "--resource-type",
            "model",
            "--resource-type",
            "test",
            "--output",
            "path",
        ],
    )
    everything = set(res.result)
    res = dbt_invoke(
        wh,
        [
            "ls",
            "--select",
            "+path:models/settlement",
            *staging.SKIP_STAGING,
            "--resource-type",
            "model",
            "--resource-type",
            "test",
            "--output",
            "path",
        ],
    )
    kept = set(res.result)
    left_out = everything - kept
    from supernova import settings

    def staging_only(path: str) -> bool:  # a staging model or .yml, or a test of staging alone
        if path.startswith("models/staging/"):
            return True
        if path.startswith("models/daily/"):  # the daily precompute goes with staging
            return True
        refs = re.findall(r"ref\(\s*'([^']+)'", (settings.DBT_PROJECT_DIR / path).read_text())
        return (
            path.startswith("tests/")
            and bool(refs)
            and all(r.startswith("stg_exports__") for r in refs)
        )

    assert left_out and all(staging_only(p) for p in left_out), sorted(
        p for p in left_out if not staging_only(p)
    )
    # (buyers and groups feed only the marts)
    assert {f"models/staging/{m}.sql" for m in STAGING} - left_out == {
        "models/staging/stg_exports__buyers.sql",
        "models/staging/stg_exports__groups.sql",
    }
    assert not any(p.startswith("models/staging/") for p in kept)
    assert "models/daily/int_daily__order_attribution.sql" in left_out
    assert "models/daily/int_daily__line_events.sql" in left_out
    assert any(p.startswith("models/settlement/") for p in kept)
