"""The daily precomputation kept incrementally by the staging stage equals a full recompute
after every batch: the attribution (models/daily/int_daily__order_attribution, §1) and the
order lines' event state (models/daily/int_daily__line_events, §2/§4).

Deliveries arrive in batches, each merged by `staging.stage()` as the ingest DAG does:
  1. the first week;
  2. the second week, plus a late click for an old order (delivered days after the order,
     it is now the order's last click) and a corrected click (re-delivered with another
     buyer and time: the order it won loses it, another buyer's order gains it); late
     events of an old line (a completion dated in August, partial refunds either side of
     2026-09-08), an event moved to another line of its order, and two completions
     re-delivered with their event_id on another order (one later than the original: it
     moves, and with every other event of its order, which is left with none; one filed
     under an earlier date: it stays);
  3. the third week with the generator's mess, plus corrections filed under an old
     delivery date: head lines re-delivered with another buyer, clicks moved in time,
     events moved two hours later;
  4. an orders file changed in place (superseded): head lines dropped (the order's head
     moves to its next line) and whole orders dropped (they leave the table); an
     order_events file changed in place: the events of some orders dropped (they leave
     the event state) and batch 3's old-date events correction cut to half (those events
     fall back to their first version);
  5. a clicks file changed in place: the old-date correction of batch 3 loses rows, so
     those clicks fall back to their earlier version;
  6. clicks at the window's edge: one a second inside an organic order's window, one
     exactly at the start of another's (it must not count);
  7. an old order corrected weeks later (its line 2 re-delivered, moved later): the run's
     literal time bounds must widen to the order's recorded head, and the order keeps
     batch 6's click, which lies a second after the clicks' bound.
After each batch each incremental table must equal, row for row, a --full-refresh of the
same model on a copy of the same warehouse (EXCEPT ALL both ways; the staged events are
re-staged from every raw version there too, and compared), and each batch's change
must really show in the table (otherwise the comparison proves little). Finally the month
close's event state as of a cutoff (int_settlement__line_events_at_cutoff, applied to the
daily summary) must equal the aggregate of every staged event before that cutoff, which the
close computed before, for cutoffs that split lines' events.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import _rows_only_on_each_side
from test_staging import QUIET, _copy_days, _rewrite

from ingestion import ingest
from supernova import staging
from supernova.dbt_runner import dbt_invoke

MODEL = "int_daily__order_attribution"
TABLE = f"intermediate.{MODEL}"
LINE_MODEL = "int_daily__line_events"
LINE_TABLE = f"intermediate.{LINE_MODEL}"
EVENTS_MODEL = "stg_exports__order_events"
EVENTS_TABLE = f"staging.{EVENTS_MODEL}"


def _write(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def _ts(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _query(wh: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _attribution(wh: Path, order_id: str) -> tuple:
    return _query(
        wh, f"select line_no, buyer_id, click_id from {TABLE} where order_id = ?", [order_id]
    )[0]


def _compiled(wh: Path, model: str = MODEL) -> str:
    path = wh / "dbt" / "target" / "compiled" / "supernova" / "models" / "daily" / f"{model}.sql"
    return path.read_text()


def _stage(wh: Path) -> None:
    res = staging.stage(wh, log=QUIET)
    assert not res.get("skipped") and res["full_refresh"] is False, res


def _differences_with_a_full_recompute(wh: Path, full: Path) -> dict[str, tuple[int, int, int]]:
    """Per daily model: (rows only in the incremental table, rows only in the full
    recompute, rows)."""
    if full.exists():
        shutil.rmtree(full)
    full.mkdir()
    shutil.copy2(wh / "supernova.duckdb", full / "supernova.duckdb")
    (full / "raw").symlink_to(wh / "raw")
    # the staged events too, from every raw version: the line events' full recompute reads
    # them, so an event the incremental staging kept wrongly shows in both tables
    res = dbt_invoke(full, ["run", "--select", EVENTS_MODEL, MODEL, LINE_MODEL, "--full-refresh"])
    assert res.success, res.exception
    con = duckdb.connect(str(full / "supernova.duckdb"))
    out = {}
    try:
        con.execute(f"attach '{wh / 'supernova.duckdb'}' as inc (read_only)")
        for table in (TABLE, LINE_TABLE, EVENTS_TABLE):
            only_inc, only_full = _rows_only_on_each_side(con, f"inc.{table}", table)
            rows = con.execute(f"select count(*) from {table}").fetchone()[0]
            out[table] = (only_inc, only_full, rows)
        staged = con.execute(
            "select count(distinct order_id) from staging.stg_exports__orders"
        ).fetchone()[0]
        staged_lines = con.execute(
            "select count(*) from (select distinct order_id, line_no"
            " from staging.stg_exports__order_events where event_at is not null)"
        ).fetchone()[0]
    finally:
        con.close()
    assert out[TABLE][2] == staged  # every staged order is there, organic ones too
    assert out[LINE_TABLE][2] == staged_lines  # every line with a staged event
    return out


def _late_click(wh: Path, landing: Path) -> tuple[str, str]:
    """A click delivered on 2026-09-12 at the very time of an attributed order of
    2026-09-03: it becomes that order's last click (ties go to the greatest click_id)."""
    order_id, buyer, ordered_at, link = _query(
        wh,
        f"select a.order_id, a.buyer_id, a.ordered_at, a.link_id from {TABLE} as a"
        " where a.is_attributed and cast(a.ordered_at as date) = date '2026-09-03'"
        " order by a.order_id limit 1",
    )[0]
    click = "CZLATE0001"
    _write(
        landing / "clicks" / "2026-09-12" / "zz-late-click.csv",
        ["click_id", "link_id", "buyer_id", "clicked_at"],
        [{"click_id": click, "link_id": link, "buyer_id": buyer, "clicked_at": _ts(ordered_at)}],
    )
    return order_id, click


def _corrected_click(wh: Path, landing: Path) -> tuple[str, str, str]:
    """A winning click re-delivered on 2026-09-13 with another buyer and time: at the time
    of another buyer's organic order, so it moves from one order to the other."""
    lost, click, link = _query(
        wh,
        f"select order_id, click_id, link_id from {TABLE} where is_attributed"
        " and cast(ordered_at as date) = date '2026-09-04' order by order_id limit 1",
    )[0]
    gained, buyer, ordered_at = _query(
        wh,
        f"select order_id, buyer_id, ordered_at from {TABLE} where not is_attributed"
        " and cast(ordered_at as date) = date '2026-09-06' order by order_id limit 1",
    )[0]
    _write(
        landing / "clicks" / "2026-09-13" / "zz-corrected-click.csv",
        ["click_id", "link_id", "buyer_id", "clicked_at"],
        [{"click_id": click, "link_id": link, "buyer_id": buyer, "clicked_at": _ts(ordered_at)}],
    )
    return lost, gained, click


def _old_date_corrections(generated: Path, landing: Path) -> None:
    """Filed under 2026-09-02 (they win over that day's files, lose to any later delivery):
    the head lines of some orders with another buyer, some clicks and events (same
    event_id) two hours later."""
    buyers = []

    def orders(r):
        if None in r or r["line_no"] != "1" or int(r["order_id"][-1]) % 3:
            return None
        buyers.append(r["buyer_id"])
        r["buyer_id"] = buyers[len(buyers) // 2]  # another buyer of the same day
        return r

    def clicks(r):
        if None in r or int(r["click_id"][-1]) % 2:
            return None
        at = datetime.fromisoformat(r["clicked_at"])
        r["clicked_at"] = _ts(at + timedelta(hours=2))
        return r

    def order_events(r):
        if None in r or None in r.values() or not r["event_id"] or int(r["event_id"][-1]) % 2:
            return None
        at = datetime.fromisoformat(r["event_at"])
        r["event_at"] = _ts(at + timedelta(hours=2))
        return r

    for export, change in (
        ("orders", orders),
        ("clicks", clicks),
        ("order_events", order_events),
    ):
        src = sorted((generated / export / "2026-09-02").glob("*.csv"))[0]
        assert (
            _rewrite(src, landing / export / "2026-09-02" / "zz-old-date-correction.csv", change)
            > 0
        )


def _orders_changed_in_place(landing: Path) -> None:
    """2026-09-06's orders file rewritten: head lines of multi-line orders dropped (the head
    moves to line 2), every line of some single-line orders dropped. And batch 3's old-date
    orders correction rewritten with half its rows: those head lines fall back to
    2026-09-02's own version (their first buyer), though no other line of the order is in
    a new file."""
    path = sorted((landing / "orders" / "2026-09-06").glob("part-*.csv"))[0]
    with path.open(newline="", encoding="utf-8") as f:
        lines_of: dict[str, int] = {}
        for r in csv.DictReader(f):
            lines_of[r["order_id"]] = lines_of.get(r["order_id"], 0) + 1

    def change(r):
        if None in r:
            return None
        if r["line_no"] == "1" and lines_of[r["order_id"]] > 1:
            return None
        if lines_of[r["order_id"]] == 1 and int(r["order_id"][-1]) % 4 == 0:
            return None
        return r

    assert _rewrite(path, path, change) > 0
    path = landing / "orders" / "2026-09-02" / "zz-old-date-correction.csv"
    assert _rewrite(path, path, lambda r: None if int(r["order_id"][-2]) % 2 else r) > 0


def _order_events_changed_in_place(landing: Path) -> None:
    """2026-09-06's order_events file rewritten without the events of some orders (lines
    with no other event leave the event state), and batch 3's old-date events correction
    cut to half its rows: those events fall back to 2026-09-02's own version."""
    path = sorted((landing / "order_events" / "2026-09-06").glob("part-*.csv"))[0]
    assert _rewrite(path, path, lambda r: None if int(r["order_id"][-1]) % 4 == 0 else r) > 0
    path = landing / "order_events" / "2026-09-02" / "zz-old-date-correction.csv"
    assert _rewrite(path, path, lambda r: None if int(r["event_id"][-2]) % 2 else r) > 0


def _clicks_changed_in_place(landing: Path) -> str:
    """Batch 3's old-date clicks correction rewritten with half its rows: those clicks fall
    back to 2026-09-02's own version (two hours earlier)."""
    path = landing / "clicks" / "2026-09-02" / "zz-old-date-correction.csv"
    assert _rewrite(path, path, lambda r: None if int(r["click_id"][-2]) % 2 else r) > 0
    return path.relative_to(landing).as_posix()


def _window_edge_clicks(wh: Path, landing: Path) -> dict:
    """Delivered on 2026-09-23 for two organic multi-line orders of early September: a
    click 15 days minus one second before the first (it wins it), a click exactly 15 days
    before the second (outside its window: it stays organic)."""
    (inside, inside_buyer, inside_at), (outside, outside_buyer, outside_at) = _query(
        wh,
        f"select a.order_id, a.buyer_id, a.ordered_at from {TABLE} as a"
        " where not a.is_attributed and a.ordered_at < timestamp '2026-09-06'"
        " and (select count(*) from staging.stg_exports__orders as o"
        "      where o.order_id = a.order_id) >= 2"
        " order by a.order_id limit 2",
    )
    link = _query(wh, f"select min(link_id) from {TABLE}")[0][0]
    window = timedelta(days=15)
    _write(
        landing / "clicks" / "2026-09-23" / "zz-window-edge.csv",
        ["click_id", "link_id", "buyer_id", "clicked_at"],
        [
            {
                "click_id": "CZEDGEIN01",
                "link_id": link,
                "buyer_id": inside_buyer,
                "clicked_at": _ts(inside_at - window + timedelta(seconds=1)),
            },
            {
                "click_id": "CZEDGEOUT1",
                "link_id": link,
                "buyer_id": outside_buyer,
                "clicked_at": _ts(outside_at - window),
            },
        ],
    )
    return {"inside": (inside, inside_at), "outside": outside}


def _old_order_corrected(generated: Path, landing: Path, order_id: str) -> None:
    """The order's line 2 re-delivered on 2026-09-25, three days later than it was
    ordered; its line 1 (the head, weeks old) is in no new file."""
    rows = []
    for src in sorted((generated / "orders").glob("*/*.csv")):
        with src.open(newline="", encoding="utf-8") as f:
            rows += [
                r for r in csv.DictReader(f) if r["order_id"] == order_id and r["line_no"] == "2"
            ]
    row = rows[-1]
    row["ordered_at"] = _ts(datetime.fromisoformat(row["ordered_at"]) + timedelta(days=3))
    _write(landing / "orders" / "2026-09-25" / "zz-old-order-correction.csv", list(row), [row])


EVENT_HEADER = ["order_id", "line_no", "event", "event_at", "amount", "event_id"]
LINE_STATE_SQL = (
    "select completed_at, cancelled_at, fully_refunded_at, last_partial_refund_at,"
    f" refunded_amount, first_event_at, last_event_at from {LINE_TABLE}"
    " where order_id = ? and line_no = ?"
)


def _line_events(wh: Path, order_id: str, line_no: int) -> tuple | None:
    rows = _query(wh, LINE_STATE_SQL, [order_id, line_no])
    return rows[0] if rows else None


def _all_line_events(wh: Path) -> dict:
    return {
        (o, n): rest
        for o, n, *rest in _query(
            wh,
            f"select order_id, line_no, completed_at, refunded_amount, last_event_at from {LINE_TABLE}",
        )
    }


def _generated_events(generated: Path) -> list[dict]:
    rows = []
    for src in sorted((generated / "order_events").glob("*/*.csv")):
        with src.open(newline="", encoding="utf-8") as f:
            rows += [r for r in csv.DictReader(f) if None not in r and None not in r.values()]
    return rows


def _late_and_moved_events(wh: Path, generated: Path, landing: Path) -> dict:
    """Delivered on 2026-09-12 for a line ordered on 2026-09-03 that no generated event
    refunds or cancels: a completion dated 2026-08-31 and partial refunds of 0.01 at
    2026-09-07 23:59:59, 1.00 at 2026-09-08 00:00 (August's cutoff: not before it) and
    1.23 at 2026-09-12. Delivered on 2026-09-13: a `paid` event of a two-line order (its
    event_id delivered once) re-delivered on the order's other line, an hour earlier."""
    events = _generated_events(generated)
    touched = {
        (r["order_id"], r["line_no"]) for r in events if r["event"] in ("refunded", "cancelled")
    }
    order_id, line_no, paid = next(
        (o, n, paid)
        for o, n, paid in _query(
            wh,
            "select order_id, line_no, paid_amount from staging.stg_exports__orders"
            " where cast(ordered_at as date) = date '2026-09-03' order by order_id, line_no",
        )
        if (o, str(n)) not in touched and int(o[-1]) % 4
    )
    late = [
        ("completed", "2026-08-31T10:00:00+08:00", ""),
        ("refunded", "2026-09-07T23:59:59+08:00", "0.01"),
        ("refunded", "2026-09-08T00:00:00+08:00", "1.00"),
        ("refunded", "2026-09-12T09:00:00+08:00", "1.23"),
    ]
    _write(
        landing / "order_events" / "2026-09-12" / "zz-late-events.csv",
        EVENT_HEADER,
        [
            {
                "order_id": order_id,
                "line_no": line_no,
                "event": event,
                "event_at": at,
                "amount": amount,
                "event_id": f"EZLATE{i:04d}",
            }
            for i, (event, at, amount) in enumerate(late)
        ],
    )
    # an event delivered once, of an order with two lines and more events on its line
    delivered = {}
    for r in events:
        delivered[r["event_id"]] = delivered.get(r["event_id"], 0) + 1
    candidates = _query(
        wh,
        "select e.order_id, e.line_no, e.event_id, e.event, e.event_at, e.amount,"
        " (select min(o.line_no) from staging.stg_exports__orders as o"
        "  where o.order_id = e.order_id and o.line_no <> e.line_no) as other_line"
        " from staging.stg_exports__order_events as e"
        " where e.event_id is not null and e.event = 'paid'"
        " and cast(right(e.order_id, 1) as integer) % 4 <> 0"
        " and (select count(*) from staging.stg_exports__order_events as s"
        "      where s.order_id = e.order_id and s.line_no = e.line_no) >= 2"
        " order by e.order_id, e.line_no",
    )
    source_order, source_line, event_id, event, event_at, _amount, target_line = next(
        c for c in candidates if c[6] is not None and delivered.get(c[2]) == 1
    )
    _write(
        landing / "order_events" / "2026-09-13" / "zz-moved-event.csv",
        EVENT_HEADER,
        [
            {
                "order_id": source_order,
                "line_no": target_line,
                "event": event,
                "event_at": _ts(event_at - timedelta(hours=1)),
                "amount": "",
                "event_id": event_id,
            }
        ],
    )
    completed = {(r["order_id"], r["line_no"]) for r in events if r["event"] == "completed"}
    generated_ids: dict[str, set] = {}
    for r in events:
        generated_ids.setdefault(r["order_id"], set()).add(r["event_id"])
    moved_orders = _events_moved_to_another_order(
        wh, delivered, completed, generated_ids, landing, avoid={order_id, source_order}
    )
    return {
        "late": (order_id, line_no, paid),
        "moved": (source_order, source_line, target_line),
        **moved_orders,
    }


def _events_moved_to_another_order(
    wh: Path, delivered: dict, completed: set, generated_ids: dict, landing: Path, avoid: set
) -> dict:
    """Completions (event_id delivered once, their line's only completion) re-delivered on
    a line of another order that no generated event completes (`completed`: the lines that
    do), as upstream reusing event_ids would. On 2026-09-13, later than the originals, every
    event of a one-line order whose events were all delivered in the first week (and none
    later: `generated_ids`, per order): they all move, and the order they left has no event
    any more (it leaves the event state). Filed under 2026-09-02, earlier than the
    original's delivery (2026-09-03 to -07), one completion: the original stays."""
    completions = [
        c
        for c in _query(
            wh,
            "select e.order_id, e.line_no, e.event_id, e.event_at, e._delivery_date"
            " from staging.stg_exports__order_events as e"
            " where e.event = 'completed' and e.event_id is not null"
            " and e._delivery_date between date '2026-09-03' and date '2026-09-07'"
            " and cast(right(e.order_id, 1) as integer) % 4 <> 0"
            " and (select count(*) from staging.stg_exports__order_events as s"
            "      where s.order_id = e.order_id and s.line_no = e.line_no"
            "      and s.event = 'completed') = 1"
            " order by e.order_id, e.line_no",
        )
        if delivered.get(c[2]) == 1 and c[0] not in avoid
    ]

    def events_of(order_id: str) -> list[tuple]:
        return _query(
            wh,
            "select line_no, event, event_at, amount, event_id, _delivery_date"
            " from staging.stg_exports__order_events where order_id = ? order by event_at",
            [order_id],
        )

    def all_movable(c) -> bool:
        staged = events_of(c[0])
        return {e[4] for e in staged} == generated_ids.get(c[0]) and all(
            e[0] == c[1]
            and e[4] is not None
            and delivered.get(e[4]) == 1
            and date(2026, 9, 3) <= e[5] <= date(2026, 9, 7)
            for e in staged
        )

    forward = next(c for c in completions if all_movable(c))
    backward = next(c for c in completions if c[0] != forward[0])
    targets = _query(
        wh,
        "select o.order_id, o.line_no from staging.stg_exports__orders as o"
        " where cast(right(o.order_id, 1) as integer) % 4 <> 0"
        " and not exists (select 1 from staging.stg_exports__order_events as s"
        "     where s.order_id = o.order_id and s.line_no = o.line_no and s.event = 'completed')"
        " order by o.order_id, o.line_no",
    )
    used = avoid | {forward[0], backward[0]}
    targets = [t for t in targets if t[0] not in used and (t[0], str(t[1])) not in completed]
    forward_to, backward_to = targets[0], next(t for t in targets if t[0] != targets[0][0])
    moved = {
        "2026-09-13": (
            forward_to,
            [(e[1], e[2], e[3], e[4]) for e in events_of(forward[0])],
        ),
        "2026-09-02": (backward_to, [("completed", backward[3], None, backward[2])]),
    }
    for folder, ((to_order, to_line), rows) in moved.items():
        _write(
            landing / "order_events" / folder / "zz-event-on-another-order.csv",
            EVENT_HEADER,
            [
                {
                    "order_id": to_order,
                    "line_no": to_line,
                    "event": event,
                    "event_at": _ts(at),
                    "amount": "" if amount is None else str(amount),
                    "event_id": event_id,
                }
                for event, at, amount, event_id in rows
            ],
        )
    return {
        "moved_forward": ((forward[0], forward[1]), forward_to, forward[3]),
        "moved_backward": ((backward[0], backward[1]), backward_to, backward[3]),
    }


def _completion_moved_again(wh: Path, landing: Path, avoid: set) -> dict:
    """A completion of the first week re-delivered on another order in the third week
    (later: it moves), after earlier incremental runs asked which orders their files'
    event_ids were on. Its order has no event in any file of the second or third week, so
    only the event_id's earlier order tells the run to recompute it; an answer kept from an
    earlier run (macros/line_events.sql caches it) would miss it."""
    later_files = " ".join(
        p.read_text(encoding="utf-8")
        for p in sorted((landing / "order_events").glob("*/*.csv"))
        if p.parent.name >= "2026-09-08" or p.name.startswith("zz-")
    )
    candidates = _query(
        wh,
        "select e.order_id, e.line_no, e.event_id, e.event_at"
        " from staging.stg_exports__order_events as e"
        " where e.event = 'completed' and e.event_id is not null"
        " and e._delivery_date between date '2026-09-03' and date '2026-09-07'"
        " and not exists (select 1 from raw.order_events as r where r.order_id = e.order_id"
        "     and r._delivery_date > date '2026-09-07')"
        " and (select count(*) from raw.order_events as r where r.event_id = e.event_id) = 1"
        " and (select count(*) from staging.stg_exports__order_events as s"
        "      where s.order_id = e.order_id and s.line_no = e.line_no"
        "      and s.event = 'completed') = 1"
        " order by e.order_id, e.line_no",
    )
    source = next(c for c in candidates if c[0] not in avoid and c[0] not in later_files)
    target = next(
        t
        for t in _query(
            wh,
            "select o.order_id, o.line_no from staging.stg_exports__orders as o"
            " where not exists (select 1 from staging.stg_exports__order_events as s"
            "     where s.order_id = o.order_id and s.event = 'completed')"
            " order by o.order_id desc, o.line_no",
        )
        if t[0] not in avoid and t[0] != source[0]
    )
    order_id, line_no, event_id, at = source
    _write(
        landing / "order_events" / "2026-09-18" / "zz-completion-moved-again.csv",
        EVENT_HEADER,
        [
            {
                "order_id": target[0],
                "line_no": target[1],
                "event": "completed",
                "event_at": _ts(at),
                "amount": "",
                "event_id": event_id,
            }
        ],
    )
    return {"from": (order_id, line_no), "to": tuple(target), "at": at}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Runs the seven batches; after each, the differences with a full recompute and what
    the batch changed. Returns (warehouse, per-batch results)."""
    from supernova.generator import generate

    root = tmp_path_factory.mktemp("daily")
    generated = root / "generated"
    generate(out=generated, start="2026-09-01", days=20, scale="tiny", seed=11, mess=True)
    landing, wh = root / "landing", root / "incremental"
    out = {}

    def run(name: str) -> None:
        ingest(landing, wh, progress=QUIET, quiet_seconds=0)
        _stage(wh)
        out[name] = {
            "diff": _differences_with_a_full_recompute(wh, root / f"full-{name}"),
            "compiled": _compiled(wh),
            "line_compiled": _compiled(wh, LINE_MODEL),
        }

    _copy_days(generated, landing, "2026-09-01", "2026-09-07")
    ingest(landing, wh, progress=QUIET, quiet_seconds=0)
    staging.stage(wh, log=QUIET)  # the first build: everything

    _copy_days(generated, landing, "2026-09-08", "2026-09-14")
    late_order, late_click = _late_click(wh, landing)
    lost, gained, moved = _corrected_click(wh, landing)
    before = {o: _attribution(wh, o) for o in (late_order, lost, gained)}
    events = _late_and_moved_events(wh, generated, landing)
    line = events["late"][:2]
    source, target = (
        (events["moved"][0], events["moved"][1]),
        (events["moved"][0], events["moved"][2]),
    )
    watched = [line, source, target]
    for elsewhere in ("moved_forward", "moved_backward"):
        watched += [tuple(events[elsewhere][0]), tuple(events[elsewhere][1])]
    lines_before = {k: _line_events(wh, *k) for k in watched}
    run("late and corrected clicks")
    out["late and corrected clicks"].update(
        before=before,
        after={o: _attribution(wh, o) for o in (late_order, lost, gained)},
        late=(late_order, late_click),
        moved=(lost, gained, moved),
        events=events,
        lines_before=lines_before,
        lines_after={k: _line_events(wh, *k) for k in watched},
    )

    _copy_days(generated, landing, "2026-09-15", "2026-09-20")
    heads_before = dict(_query(wh, f"select order_id, buyer_id from {TABLE}"))
    _old_date_corrections(generated, landing)
    avoid = {order for key in ("moved_forward", "moved_backward") for order, _ in events[key][:2]}
    moved_again = _completion_moved_again(wh, landing, avoid | {events["moved"][0]})
    moved_lines = (moved_again["from"], moved_again["to"])
    moved_before = {k: _line_events(wh, *k) for k in moved_lines}
    lines_before = _all_line_events(wh)
    run("old-date corrections")
    out["old-date corrections"]["moved_again"] = dict(
        moved_again,
        before=moved_before,
        after={k: _line_events(wh, *k) for k in moved_lines},
    )
    heads_after = dict(_query(wh, f"select order_id, buyer_id from {TABLE}"))
    lines_after = _all_line_events(wh)
    # (a line whose last event moved two hours later: the same line, another state)
    out["old-date corrections"]["lines_changed"] = sum(
        1 for k, v in lines_before.items() if lines_after.get(k) not in (None, v)
    )
    out["old-date corrections"]["buyers_changed"] = sum(
        1 for o, b in heads_before.items() if heads_after.get(o) != b
    )

    heads_sql = f"select order_id, struct_pack(line_no, buyer_id) from {TABLE}"
    heads_before = dict(_query(wh, heads_sql))
    _orders_changed_in_place(landing)
    _order_events_changed_in_place(landing)
    lines_before = _all_line_events(wh)
    run("orders superseded")
    heads_after = dict(_query(wh, heads_sql))
    lines_after = _all_line_events(wh)
    out["orders superseded"].update(
        lines_vanished=len(lines_before.keys() - lines_after.keys()),
        lines_changed=sum(
            1 for k, v in lines_before.items() if lines_after.get(k) not in (None, v)
        ),
    )
    out["orders superseded"].update(
        vanished=len(heads_before.keys() - heads_after.keys()),
        moved_heads=sum(
            1 for o, h in heads_after.items() if heads_before.get(o, h)["line_no"] != h["line_no"]
        ),
        buyers_reverted=sum(
            1
            for o, h in heads_after.items()
            if heads_before.get(o, h)["line_no"] == h["line_no"]
            and heads_before.get(o, h)["buyer_id"] != h["buyer_id"]
        ),
    )

    clicks_before = dict(_query(wh, f"select order_id, click_id from {TABLE}"))
    _clicks_changed_in_place(landing)
    run("clicks superseded")
    clicks_after = dict(_query(wh, f"select order_id, click_id from {TABLE}"))
    out["clicks superseded"]["changed"] = sum(
        1 for o, c in clicks_before.items() if clicks_after.get(o) != c
    )

    edge = _window_edge_clicks(wh, landing)
    run("clicks at the window's edge")
    inside, inside_at = edge["inside"]
    out["clicks at the window's edge"]["after"] = {
        o: _attribution(wh, o) for o in (inside, edge["outside"])
    }

    _old_order_corrected(generated, landing, inside)
    run("an old order corrected weeks later")
    out["an old order corrected weeks later"].update(
        order=(inside, inside_at), after=_attribution(wh, inside)
    )
    out["clicks at the window's edge"]["edge"] = edge
    return wh, out


@pytest.mark.parametrize(
    "batch",
    [
        "late and corrected clicks",
        "old-date corrections",
        "orders superseded",
        "clicks superseded",
    ],
)
def test_incremental_attribution_equals_a_full_recompute(batches, batch):
    _, out = batches
    only_inc, only_full, rows = out[batch]["diff"][TABLE]
    assert rows > 0
    assert (only_inc, only_full) == (0, 0), f"{batch}: incremental differs from a full recompute"


def test_the_incremental_runs_recompute_only_what_new_files_can_change(batches):
    """Every batch but the superseded clicks file ran incrementally (a narrowed select);
    the superseded clicks file recomputes every order (docs/settlement.md)."""
    _, out = batches
    for batch in ("late and corrected clicks", "old-date corrections", "orders superseded"):
        assert "changed_orders as (" in out[batch]["compiled"], batch
    assert "changed_orders as (" not in out["clicks superseded"]["compiled"]


def test_each_batch_really_changed_the_attribution(batches):
    _, out = batches
    b = out["late and corrected clicks"]
    order, click = b["late"]
    assert b["before"][order][2] != click and b["after"][order][2] == click
    lost, gained, moved = b["moved"]
    assert b["before"][lost][2] == moved and b["after"][lost][2] != moved
    assert b["before"][gained][2] is None and b["after"][gained][2] == moved
    assert out["old-date corrections"]["buyers_changed"] > 0
    assert out["orders superseded"]["vanished"] > 0
    assert out["orders superseded"]["moved_heads"] > 0
    assert out["orders superseded"]["buyers_reverted"] > 0
    assert out["clicks superseded"]["changed"] > 0


def test_the_precompute_is_part_of_what_verified_current_covers(batches, tmp_path):
    """A close leaves the precompute out only when it has consumed every loaded file:
    forget one file it consumed and staging is no longer verified current."""
    wh, _ = batches
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy2(wh / "supernova.duckdb", copy / "supernova.duckdb")
    (copy / "raw").symlink_to(wh / "raw")
    assert staging.verified_current(copy) is not None
    con = duckdb.connect(str(copy / "supernova.duckdb"))
    try:
        con.execute(
            "delete from staging.staged_files where model = ? and sha256 in"
            " (select max(sha256) from raw.manifest where export = 'clicks' and status = 'loaded')",
            [MODEL],
        )
        assert staging._unstaged_files(con) == 1  # the precompute's file, not staging's
    finally:
        con.close()
    assert staging.verified_current(copy) is None
    assert staging.skip_args(copy, log=QUIET) == []


@pytest.mark.parametrize(
    "batch", ["clicks at the window's edge", "an old order corrected weeks later"]
)
def test_the_literal_time_bounds_keep_the_incremental_exact(batches, batch):
    _, out = batches
    only_inc, only_full, rows = out[batch]["diff"][TABLE]
    assert rows > 0
    assert (only_inc, only_full) == (0, 0), f"{batch}: incremental differs from a full recompute"


def test_the_bounds_reach_the_window_edge_of_an_old_corrected_order(batches):
    """The click one second inside the window wins, the one exactly at its start does not;
    after the old order's line 2 is corrected the run's bounds are that order's head time
    (not the corrected line's, three days later) and that time minus 15 days, so the click
    one second inside them must still be read."""
    _, out = batches
    edge = out["clicks at the window's edge"]
    inside, inside_at = edge["edge"]["inside"]
    assert edge["after"][inside][2] == "CZEDGEIN01"
    assert edge["after"][edge["edge"]["outside"]][2] is None
    old = out["an old order corrected weeks later"]
    assert old["after"] == (1, edge["after"][inside][1], "CZEDGEIN01")
    compiled = old["compiled"]
    assert f"where ordered_at >= cast('{inside_at}' as timestamp)" in compiled
    assert f"and clicked_at > cast('{inside_at - timedelta(days=15)}' as timestamp)" in compiled


ALL_BATCHES = [
    "late and corrected clicks",
    "old-date corrections",
    "orders superseded",
    "clicks superseded",
    "clicks at the window's edge",
    "an old order corrected weeks later",
]


@pytest.mark.parametrize("table", [LINE_TABLE, EVENTS_TABLE])
@pytest.mark.parametrize("batch", ALL_BATCHES)
def test_incremental_line_events_equal_a_full_recompute(batches, batch, table):
    """The daily event state, and the staged events it reads (re-staged from every raw
    version in the full recompute)."""
    _, out = batches
    only_inc, only_full, rows = out[batch]["diff"][table]
    assert rows > 0
    assert (only_inc, only_full) == (0, 0), f"{batch}: {table} differs from a full recompute"


def test_an_event_id_re_delivered_on_another_order(batches):
    """Upstream reusing an event_id on another order: the version delivered last wins, as
    in a full rebuild (§0), and both orders' lines show it: delivered later, the completion
    moves to the other order's line; filed under an earlier date, it stays."""
    _, out = batches
    b = out["late and corrected clicks"]
    (first, other, at) = b["events"]["moved_forward"]
    first, other = tuple(first), tuple(other)
    # every event of the first order moved: its line leaves the event state
    assert b["lines_before"][first][0] == at and b["lines_after"][first] is None
    assert (b["lines_before"][other] or (None,))[0] != at and b["lines_after"][other][0] == at
    (first, other, at) = b["events"]["moved_backward"]
    first, other = tuple(first), tuple(other)
    assert b["lines_before"][first][0] == at and b["lines_after"][first][0] == at
    assert b["lines_after"][other] == b["lines_before"][other]


def test_an_event_id_moved_again_after_earlier_incremental_runs(batches):
    """A completion moved to another order by the third batch, when earlier runs have
    already asked which orders their files' event_ids were on: its first order loses it
    (that order is in none of the batch's files) and the other order's line gains it; with
    the test above comparing the whole state with a full recompute after that batch."""
    _, out = batches
    m = out["old-date corrections"]["moved_again"]
    source, target, at = m["from"], m["to"], m["at"]
    assert m["before"][source][0] == at and (m["after"][source] or (None,))[0] is None
    assert (m["before"][target] or (None,))[0] is None and m["after"][target][0] == at


def test_the_line_events_recompute_only_the_orders_of_new_event_files(batches):
    """Every batch recomputes the orders of its new order_events files only, but the one
    with a superseded order_events file, which recomputes every line; a batch without new
    events recomputes nothing."""
    _, out = batches
    narrowed = "where _delivery_date >= cast("
    for batch in ("late and corrected clicks", "old-date corrections"):
        assert narrowed in out[batch]["line_compiled"], batch
    assert narrowed not in out["orders superseded"]["line_compiled"]
    assert "and 1 = 0" in out["clicks superseded"]["line_compiled"]


def test_each_batch_really_changed_the_line_events(batches):
    wh, out = batches
    b = out["late and corrected clicks"]
    order_id, line_no, _ = b["events"]["late"]
    before, after = b["lines_before"][(order_id, line_no)], b["lines_after"][(order_id, line_no)]
    assert before[0] != datetime(2026, 8, 31, 10) and before[3] is None
    # completed_at, cancelled_at, fully_refunded_at, last_partial_refund_at, refunded_amount
    assert after[:5] == (
        datetime(2026, 8, 31, 10),
        None,
        None,
        datetime(2026, 9, 12, 9),
        Decimal("2.24"),
    )
    source_order, source_line, target_line = b["events"]["moved"]
    assert (
        b["lines_before"][(source_order, source_line)]
        != b["lines_after"][(source_order, source_line)]
    )
    assert (
        b["lines_before"][(source_order, target_line)]
        != b["lines_after"][(source_order, target_line)]
    )
    assert out["old-date corrections"]["lines_changed"] > 0
    assert out["orders superseded"]["lines_vanished"] > 0
    assert out["orders superseded"]["lines_changed"] > 0


# The close's aggregate before the daily summary (int_settlement__line_state and
# rpt_settlement_run_funnel computed it over every staged event): what the event state as
# of a cutoff must equal.
EVENTS_BEFORE_CUTOFF = """
    select
        order_id,
        line_no,
        min(case when event = 'completed' then event_at end) as completed_at,
        max(case when event = 'cancelled' then 1 else 0 end) as has_cancel,
        max(case when event = 'refunded' and amount is null then 1 else 0 end) as has_full_refund,
        coalesce(sum(case when event = 'refunded' then amount end), 0) as refunded_amount
    from staging.stg_exports__order_events
    where event_at < timestamp '{cutoff}'
    group by order_id, line_no
"""
ORPHANS_BEFORE_CUTOFF = """
    select e.order_id, e.line_no, e.event_id, e.event, e.event_at, e.amount
    from staging.stg_exports__order_events as e
    left join staging.stg_exports__orders as o
        on o.order_id = e.order_id and o.line_no = e.line_no
    where o.order_id is null and e.event_at < timestamp '{cutoff}'
"""


def _close_event_state(wh: Path, copy: Path, month: str) -> dict:
    """The close's event-state models for `month` (first month = `month`) built on a copy
    of the warehouse, compared with the aggregate of every staged event before the
    cutoff."""
    copy.mkdir()
    shutil.copy2(wh / "supernova.duckdb", copy / "supernova.duckdb")
    (copy / "raw").symlink_to(wh / "raw")
    models = [
        "int_settlement__published_line_terms",
        "int_settlement__line_events_at_cutoff",
        "int_settlement__line_state",
        "int_settlement__orphan_events",
    ]
    res = dbt_invoke(
        copy, ["run", "--select", *models], {"settlement_month": month, "first_month": month}
    )
    assert res.success, res.exception
    year, mon = (int(x) for x in month.split("-"))
    cutoff = datetime(year + mon // 12, mon % 12 + 1, 8)
    con = duckdb.connect(str(copy / "supernova.duckdb"), read_only=True)
    try:
        schema = dict(
            con.execute(
                "select table_name, table_schema from information_schema.tables"
                " where table_name like 'int_settlement__%'"
            ).fetchall()
        )

        def t(name):
            return f"{schema[name]}.{name}"

        def both_ways(new: str, old: str) -> tuple[int, int]:
            return tuple(
                con.execute(f"select count(*) from ({a} except all {b})").fetchone()[0]
                for a, b in ((new, old), (old, new))
            )

        state = f"select * from {t('int_settlement__line_events_at_cutoff')}"
        orphans = f"select * from {t('int_settlement__orphan_events')}"
        return {
            "cutoff": cutoff,
            "state_diff": both_ways(state, EVENTS_BEFORE_CUTOFF.format(cutoff=cutoff)),
            "orphan_diff": both_ways(orphans, ORPHANS_BEFORE_CUTOFF.format(cutoff=cutoff)),
            "rows": con.execute(f"select count(*) from ({state})").fetchone()[0],
            "orphans": con.execute(f"select count(*) from ({orphans})").fetchone()[0],
            # lines with events on both sides of the cutoff, and those whose refunds are
            # recounted from the staged events (a partial refund at or after the cutoff)
            "split": con.execute(
                f"select count(*) from {LINE_TABLE}"
                " where first_event_at < ? and last_event_at >= ?",
                [cutoff, cutoff],
            ).fetchone()[0],
            "recounted": con.execute(
                f"select count(*) from {LINE_TABLE}"
                " where first_event_at < ? and last_partial_refund_at >= ?",
                [cutoff, cutoff],
            ).fetchone()[0],
            "line_state": {
                (o, n): rest
                for o, n, *rest in con.execute(
                    "select order_id, line_no, completed_at, refunded_amount, base_amount,"
                    f" paid_amount from {t('int_settlement__line_state')}"
                ).fetchall()
            },
        }
    finally:
        con.close()


@pytest.mark.parametrize("month", ["2026-08", "2026-09"])
def test_the_event_state_at_the_cutoff_equals_the_aggregate_of_every_event_before_it(
    batches, tmp_path, month
):
    """August's cutoff (2026-09-08 00:00) splits many lines' events, some with partial
    refunds after it (recounted from the staged events); September's (2026-10-08) is after
    every event. Either way the close's event state and orphan events are the aggregate
    over every staged event before the cutoff, row for row."""
    wh, _ = batches
    got = _close_event_state(wh, tmp_path / "close", month)
    assert got["rows"] > 0
    assert got["state_diff"] == (0, 0)
    assert got["orphan_diff"] == (0, 0)
    assert got["orphans"] > 0  # batch 4 dropped the order rows of some lines with events
    if month == "2026-08":
        assert got["split"] > 0 and got["recounted"] > 0
    else:
        assert got["split"] == 0


def test_a_refund_after_the_cutoff_leaves_the_settled_base_unchanged(batches, tmp_path):
    """The line of batch 2's late events completed on 2026-08-31 and was refunded 0.01
    before August's cutoff, 1.00 exactly at it and 1.23 after it: August settles it with
    base paid - 0.01, as the aggregate of the events before the cutoff gives, although
    the daily summary holds all 2.24 of refunds."""
    wh, out = batches
    order_id, line_no, _ = out["late and corrected clicks"]["events"]["late"]
    got = _close_event_state(wh, tmp_path / "close", "2026-08")
    completed_at, refunded, base, paid = got["line_state"][(order_id, line_no)]
    assert completed_at == datetime(2026, 8, 31, 10)
    assert refunded == Decimal("0.01")
    assert base == paid - Decimal("0.01")
    assert _line_events(wh, order_id, line_no)[4] == Decimal("2.24")
