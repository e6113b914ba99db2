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
        # the table folder holds only Parquet; the commit marker lives beside the tables
        assert sorted(x.name for x in part.iterdir()) == ["part-0.parquet"]
        assert (
            wh / "parquet" / "settlement" / "_commits" / "payout_lines" / MONTH
        ).read_text() == "run-1\n"
        table = pq.read_table(part / "part-0.parquet")
        assert "settlement_month" not in table.column_names and table.num_rows == 400000
        keys = list(
            zip(*(table.column(c).to_pylist() for c in ("kind", "order_id", "line_no", "level")))
        )
        assert keys == sorted(keys)
    assert digests[0] == digests[1]


def test_a_malformed_month_is_refused(tmp_path):
    con = _warehouse(tmp_path, False)
    try:
        with pytest.raises(publish.PublishError, match="not a month"):
            publish._write_partition(con, tmp_path, "payout_lines", "2026-10' or '1'='1", "run-1")
    finally:
        con.close()


# A publish whose commit cannot be written (a full disk: simulated with a file-size limit
# on the publishing process, so writing the WAL fails with EFBIG) used to be reported as
# "cannot rollback - no transaction is active", hiding the cause.
_FULL_DISK_PUBLISH = r"""
import resource, sys
from pathlib import Path
import duckdb
from supernova import publish
wh, M = Path(sys.argv[1]), "2026-10"
con = duckdb.connect(str(wh / "supernova.duckdb"))
con.execute("create schema settlement_build")
con.execute(f"create table settlement_build.payouts as select '{M}' as settlement_month, 'P' || i as promoter_id, "
            "cast(i as decimal(18, 2)) as net_paid, 'r1' as run_id from range(1000) t(i)")
con.execute(f"create table settlement_build.payout_lines as select '{M}' as settlement_month, 'O' || i as order_id, "
            "1 as line_no, 'accrual' as kind, 1 as level, 'P' || (i % 1000) as beneficiary_id, "
            "md5(cast(i as varchar)) as pad, cast(i as decimal(18, 2)) as amount, 'r1' as run_id from range(50000) t(i)")
con.execute(f"create table settlement_build.suspense as select '{M}' as settlement_month, 'O1' as order_id, 1 as line_no")
con.execute(f"create table settlement_build.findings as select '{M}' as settlement_month, 'k' as kind, 'x' as row_key")
con.execute(f"create table settlement_build.line_terms as select 'O' || i as order_id, 1 as line_no, "
            f"'{M}' as first_settlement_month from range(10) t(i)")
cols = ", ".join(f"cast(0 as {publish.RUN_COLUMNS[c]}) as {c}" for c in publish.TOTAL_COLUMNS)
con.execute(f"create table settlement_build.settlement_run_totals as select {cols}")
con.close()
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # no file may grow past 64 KiB
publish.publish_month(wh, M, "r1", {"attempt_id": "a1", "settlement_month": M}, reopen=False)
"""


def test_a_publish_that_cannot_write_its_commit_names_the_real_cause_and_publishes_nothing(
    tmp_path,
):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_PUBLISH, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    assert "cannot rollback" not in err
    assert "File too large" in err and "nothing was published" in err, err
    con = duckdb.connect(str(tmp_path / "supernova.duckdb"), read_only=True)
    try:
        published = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'settlement'"
        ).fetchone()[0]
    finally:
        con.close()
    assert published == 0
    assert not (tmp_path / "parquet").exists()
