"""The gate validates large tables in hash chunks (read by supernova/gate_chunks.py,
validated by supernova/gate.py): the verdicts and counts are those of the whole table,
whatever the chunk size, and a duplicate is caught even when its rows would have landed
in different arbitrary chunks."""

from __future__ import annotations

import json

import duckdb
import pytest

from supernova import gate, settings
from supernova.gate_chunks import CHUNK_BY, _chunk_query, _prefetched, chunk_rows, table_chunks

MONTH = "2026-10"


def _payout_lines(con, rows):
    con.execute("create schema settlement_build")
    con.execute("""
        create table settlement_build.payout_lines (
            settlement_month varchar, order_id varchar, line_no integer, beneficiary_id varchar,
            level integer, kind varchar, base_amount decimal(18,2), rate decimal(9,6),
            line_commission decimal(18,2), amount decimal(18,2), group_id varchar, run_id varchar)""")
    con.executemany(
        "insert into settlement_build.payout_lines values (?,?,?,?,?,?,?,?,?,?,?,?)", rows
    )


def _row(i, **over):
    r = {
        "settlement_month": MONTH,
        "order_id": f"O{i:05d}",
        "line_no": 1,
        "beneficiary_id": f"P{i % 7}",
        "level": 1,
        "kind": "accrual",
        "base_amount": "10.00",
        "rate": "0.1",
        "line_commission": "1.00",
        "amount": "0.63",
        "group_id": "G1",
        "run_id": "r",
    }
    r.update(over)
    return tuple(r.values())


@pytest.fixture()
def con():
    c = duckdb.connect()
    rows = [_row(i) for i in range(200)]
    rows.append(_row(17))  # a duplicate of line O00017
    rows.append(_row(18, kind="bonus"))  # not an allowed kind (and a new key)
    rows.append(
        _row(19, order_id=None, kind="tier_bonus", line_no=None)
    )  # null order_id (a tier bonus)
    _payout_lines(c, rows)
    yield c
    c.close()


def _verdicts(con, chunk_rows, monkeypatch):
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", str(chunk_rows))
    frames = {"payout_lines": table_chunks(con, "payout_lines", CHUNK_BY["payout_lines"])}
    return {(r["expectation"], str(r["column"])): r for r in gate.validate_frames(frames, MONTH)}


def test_chunked_results_equal_whole_table_results(con, monkeypatch):
    whole = _verdicts(con, 10_000, monkeypatch)
    chunked = _verdicts(con, 25, monkeypatch)
    assert next(iter(chunked.values()))["chunks"] == 9 and next(iter(whole.values()))["chunks"] == 1
    assert whole.keys() == chunked.keys()
    for k in whole:
        assert (whole[k]["success"], whole[k]["unexpected_count"]) == (
            chunked[k]["success"],
            chunked[k]["unexpected_count"],
        ), k
    unique = chunked[
        (
            "expect_compound_columns_to_be_unique",
            str(["settlement_month", "order_id", "line_no", "beneficiary_id", "level", "kind"]),
        )
    ]
    assert not unique["success"] and unique["unexpected_count"] == 2
    kind = chunked[("expect_column_values_to_be_in_set", "kind")]
    assert not kind["success"] and kind["unexpected_count"] == 1 and kind["examples"] == ["bonus"]
    assert chunked[("expect_column_values_to_not_be_null", "beneficiary_id")]["success"]


def test_chunk_size_must_be_a_positive_number(monkeypatch):
    for bad in ("0", "-5", "many"):
        monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", bad)
        with pytest.raises(ValueError, match="SUPERNOVA_GATE_CHUNK_ROWS"):
            chunk_rows()


@pytest.mark.parametrize("suite", sorted(CHUNK_BY))
def test_chunked_suites_only_have_expectations_that_add_up_over_chunks(suite):
    """A suite may be chunked only if every uniqueness expectation includes the chunk column
    (so duplicates share a chunk) and none looks at the table as a whole."""
    column = CHUNK_BY[suite]
    spec = json.loads((settings.EXPECTATIONS_DIR / f"{suite}.json").read_text())
    row_wise = {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_table_columns_to_match_ordered_list",
    }
    for e in spec["expectations"]:
        kind = e["type"]
        if kind == "expect_column_values_to_be_unique":
            assert e["kwargs"]["column"] == column, e
        elif kind == "expect_compound_columns_to_be_unique":
            assert column in e["kwargs"]["column_list"], e
        else:
            assert kind in row_wise, f"{suite}: {kind} does not add up over chunks"


def test_prefetched_chunks_keep_order_bound_memory_and_raise_errors():
    """Chunks are fetched one ahead in a thread: same order, at most two alive, a fetch
    error reaches the validating side, and stopping early does not hang."""
    import threading

    alive, peak, lock = set(), [0], threading.Lock()

    class Chunk:
        def __init__(self, i):
            self.i = i
            with lock:
                alive.add(i)
                peak[0] = max(peak[0], len(alive))

        def __del__(self):
            with lock:
                alive.discard(self.i)

    def fetch(i):
        if i == "boom":
            raise RuntimeError("fetch failed")
        return Chunk(i)

    import time

    seen = []
    for chunk in _prefetched(fetch, range(12)):
        seen.append(chunk.i)
        time.sleep(0.02)  # validating: meanwhile the next chunk is fetched
        del chunk
    assert seen == list(range(12))
    assert peak[0] == 2  # the chunk being validated and the next one

    with pytest.raises(RuntimeError, match="fetch failed"):
        for _ in _prefetched(fetch, [0, 1, "boom", 3]):
            pass

    it = _prefetched(fetch, range(100))
    assert next(it).i == 0
    it.close()  # the consumer stops early (e.g. GX raised): the producer ends
    assert not [t for t in threading.enumerate() if t.name == "gate-prefetch"]


def test_chunks_are_read_in_one_pass_and_hold_every_row_once(con, monkeypatch, tmp_path):
    """The chunks come from one partitioned pass over the table (temporary Parquet under
    `spill_under`, removed afterwards). Each equals, row for row and type for type, what
    filtering the table by hash(order_id) gives (how chunks were read before, one scan of
    the table per chunk), and together they hold every row of the table once."""
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", "25")
    parts = 9  # 203 rows, 25 per chunk
    spill = tmp_path / "spill"
    spill.mkdir()
    chunks = list(table_chunks(con, "payout_lines", "order_id", spill_under=spill))
    assert len(chunks) == parts
    assert list(spill.iterdir()) == []  # the temporary chunk files are gone
    order = ["order_id", "line_no", "kind", "amount"]
    for i, chunk in enumerate(chunks):
        filtered = con.execute(
            f"select * from settlement_build.payout_lines where hash(order_id) % {parts} = {i}"
        ).df()
        assert len(chunk) > 0, i
        assert (chunk.dtypes == filtered.dtypes).all(), i
        left = chunk.sort_values(order, na_position="first").reset_index(drop=True)
        right = filtered.sort_values(order, na_position="first").reset_index(drop=True)
        assert left.equals(right), i
    assert sum(len(c) for c in chunks) == 203


def test_an_empty_chunk_is_an_empty_frame_of_the_tables_columns(tmp_path):
    c = duckdb.connect()
    _payout_lines(c, [_row(1)])
    folder = tmp_path / "gate_chunk=5"  # no row hashed here: no folder
    frame = c.execute(_chunk_query("payout_lines", folder)).df()
    assert len(frame) == 0 and list(frame.columns)[:3] == [
        "settlement_month",
        "order_id",
        "line_no",
    ]
    c.close()
