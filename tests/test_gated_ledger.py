"""The month's ledger is sorted once (supernova/gated_ledger.py): the gate writes the
partition publish would write and Great Expectations reads its chunks from it; publish
swaps that very file in. What is published must not change by a byte, and the gate's
verdicts must be those of the whole table."""

from __future__ import annotations

import hashlib
import os

import duckdb
import pandas as pd
import pytest

from supernova import gate, gated_ledger, publish
from supernova.gate_chunks import CHUNK_BY, table_chunks

MONTH = "2026-10"
RUN = "2026-10-r0-abc"
KEY = str(["settlement_month", "order_id", "line_no", "beneficiary_id", "level", "kind"])


def _build(con, rows: int = 20000, run_id: str = RUN) -> None:
    """settlement_build as the close leaves it: a ledger in no particular order, with
    tier bonuses (no order), two levels and clawbacks, and the other candidate tables."""
    con.execute("create schema if not exists settlement_build")
    con.execute(f"""
        create or replace table settlement_build.payout_lines as
        select '{MONTH}' as settlement_month,
               case when i % 97 = 0 then null else 'O' || lpad(cast(i // 3 as varchar), 7, '0') end as order_id,
               case when i % 97 = 0 then null else cast(i % 3 + 1 as integer) end as line_no,
               'P' || cast(i % 211 as varchar) as beneficiary_id, cast(i % 2 + 1 as integer) as level,
               case when i % 97 = 0 then 'tier_bonus' when i % 5 = 0 then 'clawback' else 'accrual' end as kind,
               cast((i % 1000) / 3.0 as decimal(18, 2)) as base_amount, cast(0.05 as decimal(9, 6)) as rate,
               cast((i % 1000) / 60.0 as decimal(18, 2)) as line_commission,
               cast((i % 700) / 7.0 as decimal(18, 2)) as amount,
               'G' || cast(i % 13 as varchar) as group_id, '{run_id}' as run_id
        from range({rows}) as r(i) order by hash(i)""")
    con.execute(
        f"create or replace table settlement_build.payouts as select '{MONTH}' as settlement_month, "
        f"'P' || i as promoter_id, cast(i as decimal(18, 2)) as net_paid, '{run_id}' as run_id "
        "from range(211) t(i)"
    )
    con.execute(
        f"create or replace table settlement_build.suspense as select '{MONTH}' as settlement_month, "
        "'O1' as order_id, 1 as line_no"
    )
    con.execute(
        f"create or replace table settlement_build.findings as select '{MONTH}' as settlement_month, "
        "'k' as kind, 'x' as row_key"
    )
    con.execute(
        "create or replace table settlement_build.line_terms as select 'O' || i as order_id, "
        f"1 as line_no, '{MONTH}' as first_settlement_month from range(10) t(i)"
    )
    cols = ", ".join(f"cast(0 as {publish.RUN_COLUMNS[c]}) as {c}" for c in publish.TOTAL_COLUMNS)
    con.execute(f"create or replace table settlement_build.settlement_run_totals as select {cols}")


def _warehouse(path, **kw):
    path.mkdir()
    con = duckdb.connect(str(path / "supernova.duckdb"))
    _build(con, **kw)
    return con


def _published_file(wh):
    return (
        wh
        / "parquet"
        / "settlement"
        / "payout_lines"
        / f"settlement_month={MONTH}"
        / "part-0.parquet"
    )


def _publish(wh, run_id=RUN):
    publish.publish_month(wh, MONTH, run_id, {"attempt_id": "a1", "settlement_month": MONTH}, False)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gate_reads_ledger(con, wh):
    return list(gated_ledger.ledger_chunks(con, wh, MONTH))


def test_publish_swaps_in_the_gated_partition_and_publishes_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", "3000")
    plain, gated = tmp_path / "plain", tmp_path / "gated"
    _warehouse(plain).close()
    _publish(plain)  # publish as it always did: from the published table
    con = _warehouse(gated)
    chunks = _gate_reads_ledger(con, gated)
    con.close()
    assert len(chunks) >= 6 and sum(len(c) for c in chunks) == 20000
    staged = gated_ledger.gated_folder(gated, MONTH, RUN) / "part-0.parquet"
    staged_inode = staged.stat().st_ino
    os.link(staged, tmp_path / "held")  # the inode stays taken: equal inodes are the same file
    _publish(gated)
    # the very file the gate read was swapped in (not written again) ...
    assert _published_file(gated).stat().st_ino == staged_inode
    assert not gated_ledger.gated_root(gated).exists()
    # ... and it is byte for byte what publishing from the table writes
    assert _digest(_published_file(gated)) == _digest(_published_file(plain))
    for other in ("payouts", "suspense", "findings", "line_terms"):
        (a,) = publish.partition_dir(plain, other, MONTH).iterdir()
        (b,) = publish.partition_dir(gated, other, MONTH).iterdir()
        assert _digest(a) == _digest(b), other
    with (
        duckdb.connect(str(plain / "supernova.duckdb"), read_only=True) as p,
        duckdb.connect(str(gated / "supernova.duckdb"), read_only=True) as g,
    ):
        for table in publish.PUBLISHED_TABLES:
            assert (
                p.execute(f"select * from settlement.{table} order by all").fetchall()
                == g.execute(f"select * from settlement.{table} order by all").fetchall()
            ), table


def test_a_gated_partition_that_no_longer_matches_is_not_published(tmp_path):
    plain, gated = tmp_path / "plain", tmp_path / "gated"
    _warehouse(plain, rows=5000).close()
    _publish(plain)
    con = _warehouse(gated, rows=5001)
    _gate_reads_ledger(con, gated)
    # the candidate changed after the gate read it (it cannot in a run: the lease)
    con.execute("delete from settlement_build.payout_lines where order_id = 'O0000100'")
    _build_rows = con.execute("select count(*) from settlement_build.payout_lines").fetchone()[0]
    con.close()
    assert _build_rows < 5001
    staged = gated_ledger.gated_folder(gated, MONTH, RUN) / "part-0.parquet"
    staged_digest = _digest(staged)
    _publish(gated)
    assert _digest(_published_file(gated)) != staged_digest
    with duckdb.connect() as c:
        assert (
            c.execute(f"select count(*) from '{_published_file(gated)}'").fetchone()[0]
            == _build_rows
        )
    assert not gated_ledger.gated_root(gated).exists()


def test_a_gated_partition_with_a_value_changed_since_is_not_published(tmp_path):
    """Same row count, same columns, one amount different: the gated file is not what
    publish would write, so publish writes the partition from the table."""
    plain, gated = tmp_path / "plain", tmp_path / "gated"
    con = _warehouse(gated, rows=5000)
    _gate_reads_ledger(con, gated)
    con.execute(
        "update settlement_build.payout_lines set amount = amount + 0.01 "
        "where order_id = (select min(order_id) from settlement_build.payout_lines)"
    )
    con.close()
    con = _warehouse(plain, rows=5000)
    con.execute(
        "update settlement_build.payout_lines set amount = amount + 0.01 "
        "where order_id = (select min(order_id) from settlement_build.payout_lines)"
    )
    con.close()
    _publish(plain)
    staged = gated_ledger.gated_folder(gated, MONTH, RUN) / "part-0.parquet"
    staged_digest = _digest(staged)
    _publish(gated)
    assert _digest(_published_file(gated)) != staged_digest
    assert _digest(_published_file(gated)) == _digest(_published_file(plain))
    assert not gated_ledger.gated_root(gated).exists()


def test_a_gated_partition_of_another_run_is_not_published(tmp_path):
    wh = tmp_path / "wh"
    con = _warehouse(wh, rows=3000, run_id="2026-10-preview-abc")
    _gate_reads_ledger(con, wh)
    _build(con, rows=3000)  # rebuilt as the run RUN
    con.close()
    _publish(wh)
    assert not gated_ledger.gated_root(wh).exists()
    with duckdb.connect() as c:
        assert c.execute(f"select distinct run_id from '{_published_file(wh)}'").fetchall() == [
            (RUN,)
        ]


def _gate_con():
    con = duckdb.connect()
    _build(con, rows=3000)
    # a line posted twice (its rows may land anywhere in the table), another month's row,
    # a kind that does not exist, and a second copy of a tier bonus (no order, no line)
    con.execute(
        "insert into settlement_build.payout_lines select * from settlement_build.payout_lines "
        "where order_id = 'O0000500' and line_no = 2"
    )
    con.execute(
        "insert into settlement_build.payout_lines select * replace ('2026-09' as settlement_month) "
        "from settlement_build.payout_lines where order_id = 'O0000600' limit 1"
    )
    con.execute(
        "update settlement_build.payout_lines set kind = 'bonus' where order_id = 'O0000700' and line_no = 1"
    )
    con.execute(
        "insert into settlement_build.payout_lines select * from settlement_build.payout_lines "
        "where kind = 'tier_bonus' and beneficiary_id = 'P0'"
    )
    return con


@pytest.mark.parametrize("rows", ["250", "100000"])
def test_gated_chunks_give_the_whole_tables_verdicts(tmp_path, monkeypatch, rows):
    con = _gate_con()
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", "100000")
    whole = table_chunks(con, "payout_lines", CHUNK_BY["payout_lines"])
    expected = {
        (r["expectation"], str(r["column"])): r
        for r in gate.validate_frames({"payout_lines": whole}, MONTH)
    }
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", rows)
    chunks = list(gated_ledger.ledger_chunks(con, tmp_path, MONTH))
    table = con.execute("select * from settlement_build.payout_lines").df()
    got = {
        (r["expectation"], str(r["column"])): r
        for r in gate.validate_frames({"payout_lines": chunks}, MONTH)
    }
    assert got.keys() == expected.keys()
    for k in expected:
        assert (got[k]["success"], got[k]["unexpected_count"]) == (
            expected[k]["success"],
            expected[k]["unexpected_count"],
        ), k
    assert (got[("expect_compound_columns_to_be_unique", KEY)]["unexpected_count"]) == 4
    month = got[("expect_column_values_to_be_in_set", "settlement_month")]
    assert month["unexpected_count"] == 1 and month["examples"] == ["2026-09"]
    assert got[("expect_column_values_to_be_in_set", "kind")]["unexpected_count"] == 1
    # every row once, column for column and type for type
    assert sum(len(c) for c in chunks) == len(table) == 3003
    assert len(chunks) >= (12 if rows == "250" else 2)  # the other month's row comes last
    for c in chunks:
        # (an integer column is nullable in a frame that holds a NULL: DuckDB's .df())
        assert list(c.columns) == list(table.columns)
        assert [str(t).lower() for t in c.dtypes] == [str(t).lower() for t in table.dtypes]
    cols = list(table.columns)
    both = pd.concat(chunks, ignore_index=True).sort_values(cols, na_position="first")
    assert both.reset_index(drop=True).equals(
        table.sort_values(cols, na_position="first").reset_index(drop=True)
    )
    con.close()


def test_a_ledger_not_of_one_run_is_read_in_hash_chunks_and_not_staged(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", "500")
    con = duckdb.connect()
    _build(con, rows=2000)
    con.execute("update settlement_build.payout_lines set run_id = 'other' where line_no = 1")
    chunks = list(gated_ledger.ledger_chunks(con, tmp_path, MONTH))
    assert sum(len(c) for c in chunks) == 2000 and len(chunks) == 4
    assert not gated_ledger.gated_root(tmp_path).exists() or not any(
        gated_ledger.gated_root(tmp_path).rglob("*.parquet")
    )
    con.close()


@pytest.mark.parametrize("rows", ["1", "2", "7"])
def test_no_ledger_key_is_split_between_chunks(tmp_path, monkeypatch, rows):
    monkeypatch.setenv("SUPERNOVA_GATE_CHUNK_ROWS", rows)
    con = _gate_con()
    chunks = list(gated_ledger.ledger_chunks(con, tmp_path, MONTH))
    seen: dict = {}
    for i, c in enumerate(chunks):
        assert len(c) > 0
        for key in c[["settlement_month", *gated_ledger.KEY_COLUMNS]].itertuples(index=False):
            key = tuple(None if pd.isna(v) else v for v in key)
            assert seen.setdefault(key, i) == i, key
    assert sum(len(c) for c in chunks) == 3003
    if rows == "1":
        # one-row chunks, but the twice-posted line and the twice-paid tier bonus each
        # stay whole: a key's rows are never cut apart
        assert sorted(len(c) for c in chunks) == [1] * 2999 + [2, 2]
    con.close()
