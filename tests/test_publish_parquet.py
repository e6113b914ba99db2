"""The published Parquet partition (supernova/publish.py) is written by DuckDB's streaming
writer: the same rows give the same bytes whatever the thread count or the physical
order of the table, rows come out sorted by key, and a bad month never reaches SQL."""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow.parquet as pq
import pytest

from supernova import publish

MONTH = "2026-10"


def _warehouse(tmp_path, shuffled: bool):
    con = duckdb.connect(str(tmp_path / "supernova.duckdb"))
    con.execute("create schema settlement")
    order = "random()" if shuffled else "i"
    con.execute(f"""
        create table settlement.payout_lines as
        select '{MONTH}' as settlement_month,
               case when i % 5 = 0 then 'clawback' else 'accrual' end as kind,
               'O' || lpad(cast(i // 3 as varchar), 9, '0') as order_id, cast(i % 3 + 1 as integer) as line_no,
               cast(i % 2 + 1 as integer) as level, 'P' || cast(i % 977 as varchar) as beneficiary_id,
               cast((i % 1000) / 7.0 as decimal(18, 2)) as amount
        from range(400000) as r(i) order by {order}""")
    return con


@pytest.mark.parametrize("threads", [1, 2])
def test_same_rows_same_bytes_whatever_the_threads_or_physical_order(tmp_path, threads):
    digests = []
    for shuffled in (False, True):
        wh = tmp_path / f"wh-{shuffled}"
        wh.mkdir()
        con = _warehouse(wh, shuffled)
        con.execute(f"set threads = {threads}")
        publish._write_partition(con, wh, "payout_lines", MONTH, "run-1")
        con.close()
        part = wh / "parquet" / "settlement" / "payout_lines" / f"settlement_month={MONTH}"
        digests.append(hashlib.sha256((part / "part-0.parquet").read_bytes()).hexdigest())
        assert (part / "_SUCCESS").read_text() == "run-1\n"
        table = pq.read_table(part / "part-0.parquet")
        assert "settlement_month" not in table.column_names and table.num_rows == 400000
        keys = list(zip(*(table.column(c).to_pylist() for c in ("kind", "order_id", "line_no", "level"))))
        assert keys == sorted(keys)
    assert digests[0] == digests[1]


def test_a_malformed_month_is_refused(tmp_path):
    con = _warehouse(tmp_path, False)
    try:
        with pytest.raises(publish.PublishError, match="not a month"):
            publish._write_partition(con, tmp_path, "payout_lines", "2026-10' or '1'='1", "run-1")
    finally:
        con.close()
