"""A re-sent copy of an orders file is staged when it is finally loaded, although its bytes
were staged before under another path (staging.staged_files names the load, not the bytes).

Sequence (reviewer H14, reproduced on 51676f1): `orders/2026-09-02/part-0000.csv` (bytes
A) holds order O; a correction `orders/2026-09-03/zz-fix.csv` gives O another buyer;
upstream re-sends bytes A as `orders/2026-09-04/resent.csv` (ingest: `duplicate`); then
the 09-02 file is rewritten in place without O's line: ingest supersedes its load and
the re-send's, reads the re-send again and loads it (bytes A, delivered 09-04: its O
wins over the 09-03 fix). With a record by sha256, staging found A staged and never read
the re-send: staging and the daily precompute differed from a full refresh by O's row and
staging still said it was verified current.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import _rows_only_on_each_side
from test_staging import QUIET, STAGING, _copy_days, _rewrite

from ingestion import ingest
from supernova import staging
from supernova.dbt_runner import dbt_invoke

DAILY = list(staging.DAILY_MODELS)
# September's accruals (total, lines) and O's: with the re-send unread, the incremental close
# published 278.30 on 139 lines and nothing for O (H14, on 51676f1)
CLOSE_ACCRUED, CLOSE_LINES, ORDER_ACCRUED = Decimal("284.45"), 141, Decimal("6.15")
OTHER_BUYER = "BZNOCLICKS"  # a buyer without clicks: O is no longer attributed


def _q(wh: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _ingest_and_stage(landing: Path, wh: Path):
    result = ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    staging.stage(wh, log=QUIET)
    return result


@pytest.fixture(scope="module")
def resent(tmp_path_factory):
    from supernova.generator import generate

    root = tmp_path_factory.mktemp("resent")
    generated = root / "generated"
    generate(out=generated, start="2026-09-01", days=5, scale="tiny", seed=11, mess=False)
    landing, wh = root / "landing", root / "wh"
    _copy_days(generated, landing, "2026-09-01", "2026-09-05")
    _ingest_and_stage(landing, wh)
    original = landing / "orders" / "2026-09-02" / "part-0000.csv"
    # an attributed order of the 09-02 file with exactly one line
    order_id, buyer = _q(
        wh,
        "select a.order_id, a.buyer_id from intermediate.int_daily__order_attribution as a"
        " inner join staging.stg_exports__orders as o using (order_id)"
        " where a.is_attributed and o._file_name = 'orders/2026-09-02/part-0000.csv'"
        " group by all having count(*) = 1 order by 1 limit 1",
    )[0]
    fix = landing / "orders" / "2026-09-03" / "zz-fix.csv"
    corrected = _rewrite(
        original,
        fix,
        lambda r: dict(r, buyer_id=OTHER_BUYER) if r["order_id"] == order_id else None,
    )
    assert corrected == 1
    _ingest_and_stage(landing, wh)
    copy = landing / "orders" / "2026-09-04" / "resent.csv"
    shutil.copy2(original, copy)
    again = _ingest_and_stage(landing, wh)
    assert [f.status for f in again.files if f.path == "orders/2026-09-04/resent.csv"] == [
        "duplicate"
    ]
    _rewrite(original, original, lambda r: None if r["order_id"] == order_id else r)
    _ingest_and_stage(landing, wh)
    full = root / "full"
    full.mkdir()
    shutil.copy2(wh / "supernova.duckdb", full / "supernova.duckdb")
    (full / "raw").symlink_to(wh / "raw")
    res = dbt_invoke(full, ["run", "--select", *staging.STAGING_PATHS, "--full-refresh"])
    assert res.success, res.exception
    return wh, full, order_id, buyer


def test_the_resent_copy_is_loaded_with_the_bytes_staged_before(resent):
    wh, _, _, _ = resent
    rows = _q(
        wh,
        "select file_path, status from raw.manifest where export = 'orders'"
        " and file_path in ('orders/2026-09-02/part-0000.csv', 'orders/2026-09-04/resent.csv')"
        " order by file_path, loaded_at",
    )
    assert rows == [
        ("orders/2026-09-02/part-0000.csv", "superseded"),
        ("orders/2026-09-02/part-0000.csv", "loaded"),
        ("orders/2026-09-04/resent.csv", "superseded"),
        ("orders/2026-09-04/resent.csv", "loaded"),
    ]
    shas = _q(
        wh,
        "select count(distinct sha256) from raw.manifest where export = 'orders' and"
        " (file_path = 'orders/2026-09-04/resent.csv'"
        "  or (file_path = 'orders/2026-09-02/part-0000.csv' and status = 'superseded'))",
    )
    assert shas == [(1,)]


def test_the_resent_rows_win_over_the_correction(resent):
    wh, _, order_id, buyer = resent
    assert _q(
        wh,
        "select buyer_id, _file_name from staging.stg_exports__orders where order_id = ?",
        [order_id],
    ) == [(buyer, "orders/2026-09-04/resent.csv")]
    assert _q(
        wh,
        "select buyer_id, is_attributed from intermediate.int_daily__order_attribution"
        " where order_id = ?",
        [order_id],
    ) == [(buyer, True)]


@pytest.mark.parametrize(
    "table", [f"staging.{m}" for m in STAGING] + [f"intermediate.{m}" for m in DAILY]
)
def test_incremental_equals_a_full_refresh(resent, table):
    wh, full, _, _ = resent
    con = duckdb.connect(str(full / "supernova.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        only_inc, only_full = _rows_only_on_each_side(con, f"inc.{table}", table)
        rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()
    assert (only_inc, only_full) == (0, 0)
    assert rows > 0


def test_every_load_is_recorded_and_staging_is_verified_current(resent):
    wh, _, _, _ = resent
    assert _q(
        wh,
        "select f.model, f.ingest_run_id = m.ingest_run_id from staging.staged_files as f"
        " inner join raw.manifest as m using (file_path, sha256)"
        " where f.file_path = 'orders/2026-09-04/resent.csv' and m.status = 'loaded'"
        " order by model",
    ) == [
        ("int_daily__order_attribution", True),
        ("stg_exports__orders", True),
    ]
    assert staging.verified_current(wh) is not None


def test_a_record_by_sha256_alone_is_dropped_and_never_verified(resent, tmp_path):
    """A warehouse staged by older code (staged_files (model, sha256)): not verified
    current, and its next build re-reads every file and records each load."""
    wh, _, _, _ = resent
    shutil.copy2(wh / "supernova.duckdb", tmp_path / "supernova.duckdb")
    (tmp_path / "raw").symlink_to(wh / "raw")
    con = duckdb.connect(str(tmp_path / "supernova.duckdb"))
    try:
        con.execute(
            "create or replace table staging.staged_files as"
            " select distinct model, sha256 from staging.staged_files"
        )
    finally:
        con.close()
    assert staging.verified_current(tmp_path) is None
    loads = _q(wh, "select count(*) from staging.staged_files")
    staging.stage(tmp_path, log=QUIET)
    assert _q(tmp_path, "select count(*) from staging.staged_files") == loads
    assert staging.verified_current(tmp_path) is not None


def test_the_close_pays_what_a_fresh_warehouse_pays(resent, tmp_path):
    """September closed on this warehouse (staging verified current, left out of the close)
    and on a fresh warehouse ingesting the same landing: the same ledger, to the fen."""
    from supernova.cli import main

    wh, _, order_id, _ = resent
    landing = wh.parent / "landing"
    completion = landing / "order_events" / "2026-09-06" / "zz-completion.csv"
    completion.parent.mkdir(parents=True, exist_ok=True)
    completion.write_text(
        "order_id,line_no,event,event_at,amount,event_id\n"
        f"{order_id},1,completed,2026-09-06T10:00:00+08:00,,EZDONE0001\n"
    )
    _ingest_and_stage(landing, wh)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    ledgers = []
    for w in (wh, fresh):
        assert (
            main(["settle", "--month", "2026-09", "--landing", str(landing), "--warehouse", str(w)])
            == 0
        )
        ledgers.append(
            _q(
                w,
                "select sum(amount), count(*), sum(amount) filter (where order_id = ?)"
                " from settlement.payout_lines where kind = 'accrual'",
                [order_id],
            )
        )
    assert ledgers[0] == ledgers[1] == [(CLOSE_ACCRUED, CLOSE_LINES, ORDER_ACCRUED)]
