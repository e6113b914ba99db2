"""The cache of the orders an event_id was ever delivered on (macros/line_events.sql,
_event_id_orders_cached) is keyed by a fingerprint of the question (the new files) and of
the raw layer's file list. The second part matters when the same question is asked again
after a new raw file arrived: an event_id of the asked file re-delivered on another order
in that new file must show up in the answer, not the answer cached before it arrived.
(Each delivery so far also changed the question, so no other test covers this.)"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
from test_staging import QUIET, _copy_days

from ingestion import ingest
from supernova import staging
from supernova.dbt_runner import dbt_invoke

ASKED = [("order_events/2026-09-02/part-0000.csv", "2026-09-02")]


def _ask(wh: Path) -> tuple[str, set[str]]:
    """(fingerprint, orders) of the cached answer for ASKED, as a model compiling the
    question now gets it."""
    res = dbt_invoke(
        wh, ["compile", "--inline", f"{{{{ daily_line_events_event_id_orders({ASKED!r}) }}}}"]
    )
    assert res.success, res.exception
    sql = res.result.results[0].node.compiled_code
    (fingerprint,) = re.findall(r"fingerprint = '([0-9a-f]{32})'", sql)
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as con:
        orders = con.execute(
            "select order_id from staging.event_id_orders_cache "
            "where fingerprint = ? and order_id is not null",
            [fingerprint],
        ).fetchall()
    return fingerprint, {o for (o,) in orders}


def test_a_new_raw_file_changes_the_answer_to_the_same_question(tmp_path):
    from supernova.generator import generate

    gen, landing, wh = tmp_path / "generated", tmp_path / "landing", tmp_path / "wh"
    generate(out=gen, start="2026-09-01", days=3, scale="tiny", seed=11, mess=False)
    _copy_days(gen, landing, "2026-09-01", "2026-09-02")
    assert ingest(landing, wh, progress=QUIET, quiet_seconds=0).ok
    staging.stage(wh, log=QUIET)
    first_fingerprint, first_orders = _ask(wh)
    assert first_orders and _ask(wh) == (first_fingerprint, first_orders)  # asked again: read back

    # one event of the asked file re-delivered on another order, in a new file of 09-03
    asked_file = landing / ASKED[0][0]
    with asked_file.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    moved = dict(next(r for r in rows if r["event_id"]))
    moved["order_id"] = "OMOVEDTO0001"
    new_file = landing / "order_events" / "2026-09-03" / "part-0000.csv"
    new_file.parent.mkdir(parents=True)
    with new_file.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerow(moved)
    assert ingest(landing, wh, progress=QUIET, quiet_seconds=0).ok

    second_fingerprint, second_orders = _ask(wh)
    assert second_fingerprint != first_fingerprint
    assert second_orders == first_orders | {"OMOVEDTO0001"}
