"""The money cases of issue 19, end to end through the real monthly_settlement DAG
(`dag.test()`), September 2026 on the tiny generated landing:

  (a) an `order_events` file read while upstream was still writing it, the cut inside the
      last field (the `event_id` of a refund on a line September settles), then completed
      at the same path, then re-sent under a new name;
  (b) `orders/2026-09-05/part-0000.csv` read at 60 % of its bytes, then completed.

With the quiet period the partial files are not read at all (they are "waiting"). With
the quiet period at 0 they ARE loaded (and staged); completing them supersedes those
loads, the re-sent copy is a duplicate of the superseding load, and the month must settle
exactly as the run on the complete files alone: every published row (payouts, lines,
suspense, findings, line terms) equal except run ids and timestamps.
"""

from __future__ import annotations

import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import _run

from ingestion import ingest
from ingestion.landing import QUIET_ENV

MONTH = "2026-09"
ORDERS_FILE = "orders/2026-09-05/part-0000.csv"
PUBLISHED = {
    "payouts": "settlement_month",
    "payout_lines": "settlement_month",
    "suspense": "settlement_month",
    "findings": "settlement_month",
    "line_terms": "first_settlement_month",
}


def _rows(wh: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _published(wh: Path) -> dict:
    """Every published row of the month, without run ids and timestamps."""
    out = {}
    for table, month_col in PUBLISHED.items():
        cols = [
            c
            for (c,) in _rows(
                wh,
                "select column_name from information_schema.columns "
                "where table_schema = 'settlement' and table_name = ? "
                "order by ordinal_position",
                [table],
            )
            if not (c.endswith("run_id") or c.endswith("_at") or c == "attempt_id")
        ]
        assert cols, table
        out[table] = _rows(
            wh,
            f"select {', '.join(cols)} from settlement.{table} where {month_col} = ? order by all",
            [MONTH],
        )
    out["totals"] = _rows(
        wh,
        "select status, lines_settled, base_amount, line_commission, net_paid, "
        "tax_withheld, carried_out from settlement.settlement_runs "
        "where settlement_month = ? and status = 'published'",
        [MONTH],
    )
    return out


def _settle(dagbag, airflow_db, landing: Path, wh: Path) -> str:
    return _run(dagbag, airflow_db, month=MONTH, landing=str(landing), warehouse=str(wh))


def _age_all(root: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def _refund_to_cut(wh: Path) -> tuple[str, int, str]:
    """(file, line, event_id) of a refund with an event_id, delivered before September's
    cutoff, on a line September settles."""
    rows = _rows(
        wh,
        "select e._file_name, e._line_no, e.event_id "
        "from staging.stg_exports__order_events e "
        "where e.event = 'refunded' and e.event_id is not null "
        "and e._delivery_date <= date '2026-10-07' and e._file_name like '%.csv' "
        "and exists (select 1 from settlement.payout_lines p where p.settlement_month = ? "
        "            and p.order_id = e.order_id and p.line_no = e.line_no) "
        "order by e._delivery_date, e._file_name, e._line_no limit 1",
        [MONTH],
    )
    assert rows, "the tiny data must hold a refund on a settled September line"
    return rows[0]


def _cut_inside_last_field(data: bytes, line_no: int, last_field: str) -> bytes:
    """The bytes up to the middle of the last field of physical line `line_no`."""
    lines = data.split(b"\n")
    start = sum(len(x) + 1 for x in lines[: line_no - 1])
    line = lines[line_no - 1].rstrip(b"\r")
    assert line.endswith(last_field.encode()), line
    return data[: start + len(line) - len(last_field) + len(last_field) // 2]


@pytest.fixture(scope="module")
def money(tiny_landing, tmp_path_factory, dagbag, airflow_db):
    before = os.environ.get(QUIET_ENV)
    os.environ[QUIET_ENV] = "0"  # the DAG's ingest: these files were written moments ago
    try:
        return _scenario(tiny_landing, tmp_path_factory, dagbag, airflow_db)
    finally:
        if before is None:
            del os.environ[QUIET_ENV]
        else:
            os.environ[QUIET_ENV] = before


def _scenario(tiny_landing, tmp_path_factory, dagbag, airflow_db) -> dict:
    from supernova import staging

    root = tmp_path_factory.mktemp("money")
    out: dict = {}
    # the run on the complete files alone
    clean = root / "clean"
    out["clean_state"] = _settle(dagbag, airflow_db, tiny_landing, clean)
    out["clean"] = _published(clean)
    events_file, line_no, event_id = _refund_to_cut(clean)
    out["event_id"] = event_id

    landing = root / "landing"
    shutil.copytree(tiny_landing, landing)
    _age_all(landing, 3600)
    events_path, orders_path = landing / events_file, landing / ORDERS_FILE
    complete = {events_path: events_path.read_bytes(), orders_path: orders_path.read_bytes()}
    partial = {
        events_path: _cut_inside_last_field(complete[events_path], line_no, event_id),
        orders_path: complete[orders_path][: int(len(complete[orders_path]) * 0.6)],
    }
    for p, data in partial.items():
        p.write_bytes(data)  # upstream is still writing them: modified just now

    wh = root / "superseded"
    # with the quiet period the half-written files are left for the next run
    quiet = ingest(landing, wh, quiet_seconds=60, progress=lambda _m: None)
    out["quiet_waiting"] = sorted(f.path for f in quiet.by_status("waiting"))
    out["quiet_loaded_partial"] = _rows(
        wh,
        "select count(*) from raw.manifest where file_path in (?, ?)",
        [events_file, ORDERS_FILE],
    )[0][0]
    # without it they are read half-written, and staged
    hasty = ingest(landing, wh, quiet_seconds=0, progress=lambda _m: None)
    out["hasty"] = {f.path: f.status for f in hasty.files if f.path in (events_file, ORDERS_FILE)}
    out["truncated_id_loaded"] = _rows(
        wh,
        "select count(*) from raw.order_events where event_id = ?",
        [event_id[: len(event_id) // 2]],
    )[0][0]
    out["partial_orders_rows"] = _rows(
        wh, "select count(*) from raw.orders where _file_name = ?", [ORDERS_FILE]
    )[0][0]
    staging.stage(wh, log=lambda _m: None)

    # completed at the same paths (the next daily ingest supersedes the partial loads),
    # then the events file re-sent under a new name as well
    for p, data in complete.items():
        p.write_bytes(data)
    completed = ingest(landing, wh, quiet_seconds=0, progress=lambda _m: None)
    out["superseding"] = sorted(s["path"] for s in completed.as_dict().get("superseded", []))
    resent = events_path.with_name(events_path.stem + "-resent.csv")
    resent.write_bytes(complete[events_path])
    out["state"] = _settle(dagbag, airflow_db, landing, wh)
    out["published"] = _published(wh)
    out["manifest"] = _rows(
        wh,
        "select file_path, status, reason from raw.manifest "
        "where file_path in (?, ?, ?) order by loaded_at, file_path",
        [events_file, ORDERS_FILE, resent.relative_to(landing).as_posix()],
    )
    out["files"] = (events_file, ORDERS_FILE, resent.relative_to(landing).as_posix())
    out["wh"] = wh
    return out


def test_with_the_quiet_period_half_written_files_are_not_read(money):
    events_file, orders_file, _ = money["files"]
    assert money["quiet_waiting"] == sorted([events_file, orders_file])
    assert money["quiet_loaded_partial"] == 0


def test_without_it_the_partial_files_were_really_loaded(money):
    events_file, orders_file, _ = money["files"]
    assert money["hasty"] == {events_file: "loaded", orders_file: "loaded"}
    assert money["truncated_id_loaded"] == 1  # the refund with its event_id cut short
    assert money["partial_orders_rows"] > 0


def test_completed_files_supersede_and_the_resent_copy_is_a_duplicate(money):
    events_file, orders_file, resent = money["files"]
    assert money["superseding"] == sorted([events_file, orders_file])
    m = money["manifest"]
    assert [(p, s) for p, s, _ in m if p == events_file] == [
        (events_file, "superseded"),
        (events_file, "loaded"),
    ]
    assert [(p, s) for p, s, _ in m if p == orders_file] == [
        (orders_file, "superseded"),
        (orders_file, "loaded"),
    ]
    (dup,) = [(s, r) for p, s, r in m if p == resent]
    assert dup[0] == "duplicate" and events_file in dup[1]


def test_the_month_settles_exactly_as_on_the_complete_files_alone(money):
    assert money["clean_state"].endswith("success")
    assert money["state"].endswith("success")
    clean, got = money["clean"], money["published"]
    assert clean["totals"] and isinstance(clean["totals"][0][2], Decimal)
    assert (
        got["totals"] == clean["totals"]
    )  # lines, base, commission, net paid, tax, carried: to the fen
    for table in ("payouts", "payout_lines", "line_terms"):
        assert clean[table], table  # (suspense and findings may be empty on the tiny data)
    for table in PUBLISHED:
        assert got[table] == clean[table], f"settlement.{table} differs from the clean run"
