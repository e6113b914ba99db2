"""A BI tool reads the published Parquet through views over `<table>/*/*.parquet`
(supernova/serving.py), or globs a whole folder (`parquet/settlement/**/*.parquet`,
`parquet/**/*.parquet`), at any moment, a publish included. DuckDB's glob matches hidden
and `_`-prefixed folders, so a partition being written, or the replaced one set aside,
must never sit under parquet/: a reader would see uncommitted rows, old and new rows side
by side, or fail with "Hive partition mismatch" (and after a killed publish, until the
next run cleaned up). The same holds for the marts' copies (supernova/marts.py)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from test_gated_ledger import MONTH, RUN, _build

from supernova import marts, publish
from supernova.tables import MART_TABLES


def _bi_read_every_table(warehouse) -> dict[str, list[str]]:
    """What the BI views' globs see now, per table; every read must also succeed."""
    seen = {}
    with duckdb.connect() as con:
        for table in publish.PUBLISHED_TABLES:
            folder = warehouse / "parquet" / "settlement" / table
            pattern = str(folder / "*" / "*.parquet")
            files = [r[0] for r in con.execute(f"select * from glob('{pattern}')").fetchall()]
            if files:
                con.execute(
                    f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)"
                ).fetchone()
            seen[table] = [f[len(str(folder)) + 1 :] for f in files]
    return seen


def _read_during_a_reopen_publish(wh, monkeypatch, read) -> list:
    """Publish MONTH again (a reopen, more rows) and return what `read(wh)` saw before it,
    each time a new partition was staged, and after every rename and replace of a file or
    folder (supernova/swap.py: the moments a swap could leave a partition missing)."""
    row = _published_twice(wh)
    seen_during: list = [read(wh)]
    real_commit = publish.commit_partition

    def commit_watched(*args, **kwargs):
        seen_during.append(read(wh))  # the new partition staged
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(publish, "commit_partition", commit_watched)
    _watch_renames(monkeypatch, lambda: seen_during.append(read(wh)))
    publish.publish_month(wh, MONTH, RUN + "x", row, True)
    monkeypatch.undo()
    return seen_during


def _watch_renames(monkeypatch, after, kill_after: str | None = None) -> None:
    """Call `after()` after every os.rename and os.replace; with `kill_after`, die
    (_Killed) right after the first replace of a file whose path contains it."""
    real_rename, real_replace = os.rename, os.replace

    def rename_watched(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        after()

    def replace_watched(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        after()
        if kill_after and kill_after in str(dst) and str(dst).endswith(".parquet"):
            raise _Killed

    monkeypatch.setattr(os, "rename", rename_watched)
    monkeypatch.setattr(os, "replace", replace_watched)


def test_bi_readers_never_see_a_partition_in_the_middle_of_a_publish(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    seen_during = _read_during_a_reopen_publish(wh, monkeypatch, _bi_read_every_table)

    assert len(seen_during) >= 2 * len(publish.PUBLISHED_TABLES)
    committed = {
        table: [f"{col}={MONTH}/part-0.parquet"]
        for table, (col, _) in publish.PUBLISHED_TABLES.items()
    }
    for seen in seen_during:
        assert seen == committed
    assert _bi_read_every_table(wh) == committed


# ------------------------------------------------ readers of the whole folder (`**` globs)

RECURSIVE = ("parquet/settlement/**/*.parquet", "parquet/**/*.parquet")


class _Killed(BaseException):
    """The process dying at this point (nothing after it runs, no cleanup)."""


def _recursive_read(warehouse) -> dict[str, list[str]]:
    """Per recursive glob, the files a reader of the whole folder reads (DuckDB's `**` and
    `*` match `_`- and `.`-prefixed folders); every file must also be readable."""
    seen = {}
    with duckdb.connect() as con:
        for glob in RECURSIVE:
            pattern = str(warehouse / glob)
            files = sorted(r[0] for r in con.execute(f"select * from glob('{pattern}')").fetchall())
            if files:
                con.execute(
                    f"select filename, count(*) from read_parquet('{pattern}', filename = true, "
                    "union_by_name = true, hive_partitioning = false) group by all"
                ).fetchall()
            seen[glob] = [f[len(str(warehouse)) + 1 :] for f in files]
    return seen


def _published(*extra: str) -> dict[str, list[str]]:
    """What a recursive reader may see: the partitions in the table folders, the runs
    file, and `extra` (the marts' copies)."""
    files = sorted(
        [
            f"parquet/settlement/{table}/{col}={MONTH}/part-0.parquet"
            for table, (col, _) in publish.PUBLISHED_TABLES.items()
        ]
        + ["parquet/settlement/settlement_runs/settlement_runs.parquet"]
    )
    return {
        RECURSIVE[0]: files,
        RECURSIVE[1]: sorted(files + list(extra)),
    }


def _published_twice(wh):
    """A warehouse with MONTH published, and the build of a reopen (more rows) waiting."""
    wh.mkdir()
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        _build(con, rows=3000)
    row = {"attempt_id": "a1", "settlement_month": MONTH}
    publish.publish_month(wh, MONTH, RUN, row, False)
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        _build(con, rows=3100, run_id=RUN + "x")
    return {**row, "attempt_id": "a2"}


def _rows_read(wh) -> dict[str, int]:
    with duckdb.connect() as con:
        return {
            table: con.execute(
                f"select count(*) from read_parquet('{wh}/parquet/settlement/{table}/*/*.parquet')"
            ).fetchone()[0]
            for table in publish.PUBLISHED_TABLES
        }


def test_recursive_readers_never_see_a_staged_or_set_aside_partition(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    seen_during = _read_during_a_reopen_publish(wh, monkeypatch, _recursive_read)

    assert len(seen_during) >= 2 * len(publish.PUBLISHED_TABLES)
    for seen in seen_during:
        assert seen == _published()
    assert _recursive_read(wh) == _published()


@pytest.mark.parametrize("killed", ["staged", "swapped"])
def test_a_killed_publish_leaves_nothing_a_recursive_reader_sees(tmp_path, monkeypatch, killed):
    """Killed with payouts' new partition staged (not swapped in), or with its file just
    swapped in (its staging folder not yet removed, its commit marker not yet written): a
    reader of the whole folder sees only the table folders' partitions, and the next run
    removes the leftovers and publishes the month."""
    wh = tmp_path / "wh"
    row = _published_twice(wh)
    before = _rows_read(wh)

    def commit_killed(*args, **kwargs):
        raise _Killed

    if killed == "staged":
        monkeypatch.setattr(publish, "commit_partition", commit_killed)
    else:
        _watch_renames(monkeypatch, lambda: None, kill_after="payouts")
    with pytest.raises(_Killed):
        publish.publish_month(wh, MONTH, RUN + "x", row, True)
    monkeypatch.undo()

    left = [p for p in wh.rglob("*") if p.name.startswith((".tmp-", ".old-"))]
    assert left, "the simulated kill left no leftover to hide"
    assert all("parquet" not in p.relative_to(wh).parts for p in left), left
    assert _recursive_read(wh) == _published()
    if killed == "staged":  # nothing swapped yet: the previous state, row for row
        assert _rows_read(wh) == before

    publish.sync_parquet(wh)  # the next run
    assert not [p for p in wh.rglob("*") if p.name.startswith((".tmp-", ".old-"))]
    assert _recursive_read(wh) == _published()
    assert _rows_read(wh)["payout_lines"] == 3100


def test_a_staging_folder_on_another_disk_is_refused_before_anything_is_published(
    tmp_path, monkeypatch
):
    wh = tmp_path / "wh"
    wh.mkdir()
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        _build(con, rows=300)
    real_device = publish.device
    monkeypatch.setattr(
        publish, "device", lambda p: real_device(p) + ("tmp" in Path(p).relative_to(wh).parts)
    )
    with pytest.raises(publish.PublishError, match="different filesystems.*nothing published"):
        publish.publish_month(wh, MONTH, RUN, {"attempt_id": "a1"}, False)
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as con:
        assert not con.execute(
            "select * from information_schema.tables where table_schema = 'settlement'"
        ).fetchall()
    assert not (wh / "parquet").exists()


def test_leftovers_where_earlier_versions_staged_are_removed(tmp_path):
    wh = tmp_path / "wh"
    _published_twice(wh)
    old = wh / "parquet" / "settlement" / "_staging" / "payouts"
    for name in (".tmp-settlement_month=2026-10-1", ".old-settlement_month=2026-10-1"):
        (old / name).mkdir(parents=True)
        (old / name / "part-0.parquet").write_bytes(b"")
    publish.sync_parquet(wh)
    assert not (wh / "parquet" / "settlement" / "_staging").exists()
    assert _recursive_read(wh) == _published()


def _marts_warehouse(wh):
    """Stand-ins for the marts: their sort columns only, the first a date over two months
    (2026-09-27 .. 10-03), like the real marts' date column."""
    wh.mkdir()
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        con.execute("create schema marts")
        for table, order in MART_TABLES.items():
            date_col, *others = (c.strip() for c in order.split(","))
            cols = ", ".join(
                [f"cast(date '2026-09-27' + cast(i % 7 as integer) as date) as {date_col}"]
                + [f"cast(i % 7 as integer) as {c}" for c in others]
            )
            con.execute(f"create table marts.{table} as select {cols} from range(50) t(i)")


def _change_every_mart(wh, month: str | None = None):
    """A refresh that changes every row (of `month` only, 'YYYY-MM', when given)."""
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        for table, order in MART_TABLES.items():
            date_col, *others = (c.strip() for c in order.split(","))
            where = f"where strftime({date_col}, '%Y-%m') = '{month}'" if month else ""
            con.execute(f"update marts.{table} set {others[-1]} = {others[-1]} + 1 {where}")


# the stand-ins' days (_marts_warehouse): a mart copied by day has one file for each
STAND_IN_DAYS = [f"2026-09-{d}" for d in (27, 28, 29, 30)] + [f"2026-10-0{d}" for d in (1, 2, 3)]


def _periods(table: str, month: str | None = None) -> list[str]:
    """The periods of a stand-in mart's copy (of `month` only when given): its months, or
    its days for a mart copied by day."""
    if table in marts.DAILY_COPIES:
        return [d for d in STAND_IN_DAYS if month is None or d.startswith(month)]
    return [m for m in ("2026-09", "2026-10") if month is None or m == month]


def _copies(table: str) -> list[str]:
    return [f"part-{p}.parquet" for p in _periods(table)]


def test_recursive_readers_never_see_a_marts_copy_being_written(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    _marts_warehouse(wh)
    quiet = [].append
    marts.parquet_step(wh, log=quiet)
    assert marts.DAILY_COPIES == {"group_status", "promoter_category_affinity"}
    copies = [f"parquet/marts/{table}/{part}" for table in MART_TABLES for part in _copies(table)]
    with duckdb.connect() as con:
        pattern = f"{wh}/parquet/**/*.parquet"
        files = sorted(r[0] for r in con.execute(f"select * from glob('{pattern}')").fetchall())
    assert [f[len(str(wh)) + 1 :] for f in files] == sorted(copies)

    seen_during: list[list[str]] = []
    real_write = marts._write_part

    def read_all() -> list[str]:
        with duckdb.connect() as con:
            rows = con.execute(
                f"select filename from read_parquet('{pattern}', filename = true, "
                "union_by_name = true, hive_partitioning = false) group by all"
            ).fetchall()
        return sorted(r[0][len(str(wh)) + 1 :] for r in rows)

    def write_watched(*args, **kwargs):
        real_write(*args, **kwargs)
        seen_during.append(read_all())  # the new copy written, not yet swapped in

    monkeypatch.setattr(marts, "_write_part", write_watched)
    _watch_renames(monkeypatch, lambda: seen_during.append(read_all()))  # each swap's steps
    _change_every_mart(wh)
    marts.parquet_step(wh, log=quiet)
    monkeypatch.undo()
    # every file written and replaced: two months, or seven days
    assert len(seen_during) >= 2 * sum(len(_periods(t)) for t in MART_TABLES)
    for seen in seen_during:
        assert seen == sorted(copies)

    # killed right after a month's file was replaced: the staging folder (holding the other
    # month's new file) is hidden from the reader and removed by the next step
    _change_every_mart(wh)
    _watch_renames(monkeypatch, lambda: None, kill_after="sku_ranking")
    with pytest.raises(_Killed):
        marts.parquet_step(wh, log=quiet)
    monkeypatch.undo()
    assert [p for p in wh.rglob(".tmp-*")]
    assert read_all() == sorted(copies)
    marts.parquet_step(wh, log=quiet)
    assert not [p for p in wh.rglob("*") if p.name.startswith((".tmp-", ".old-"))]


def _copy_files(wh, table) -> dict[str, tuple[int, int]]:
    """{file name: (inode, mtime_ns)} of a mart's copy."""
    folder = wh / "parquet" / "marts" / table
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def _copy_equals_table(wh, table) -> bool:
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as con:
        copy = f"read_parquet('{wh}/parquet/marts/{table}/*.parquet')"
        return (
            con.execute(
                f"select (select count(*) from (select * from marts.{table} except all select * from {copy})) "
                f"+ (select count(*) from (select * from {copy} except all select * from marts.{table}))"
            ).fetchone()[0]
            == 0
        )


def test_a_marts_refresh_rewrites_only_the_months_whose_rows_changed(tmp_path):
    wh = tmp_path / "wh"
    _marts_warehouse(wh)
    quiet = [].append
    first = marts.parquet_step(wh, log=quiet)
    assert first["periods_written"] == {t: _periods(t) for t in MART_TABLES}
    before = {t: _copy_files(wh, t) for t in MART_TABLES}
    assert {t: sorted(files) for t, files in before.items()} == {t: _copies(t) for t in MART_TABLES}

    # nothing changed: nothing written, the very same files
    assert marts.parquet_step(wh, log=quiet)["periods_written"] == dict.fromkeys(MART_TABLES, [])
    assert {t: _copy_files(wh, t) for t in MART_TABLES} == before

    # October changed: only its files are written, September's stay the same file
    _change_every_mart(wh, "2026-10")
    assert marts.parquet_step(wh, log=quiet)["periods_written"] == {
        t: _periods(t, "2026-10") for t in MART_TABLES
    }
    for t in MART_TABLES:
        after = _copy_files(wh, t)
        for period in _periods(t, "2026-09"):
            name = f"part-{period}.parquet"
            assert after[name] == before[t][name], (t, name)
        for period in _periods(t, "2026-10"):
            name = f"part-{period}.parquet"
            assert after[name] != before[t][name], (t, name)
        assert _copy_equals_table(wh, t), t

    # a change a row count does not show (the same rows, one value moved between them)
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        con.execute(
            "update marts.sku_ranking set sku_rank = case when sku_rank = 1 then 2 "
            "when sku_rank = 2 then 1 else sku_rank end where ranking_date = date '2026-09-28'"
        )
    assert marts.parquet_step(wh, log=quiet)["periods_written"]["sku_ranking"] == ["2026-09"]
    assert _copy_equals_table(wh, "sku_ranking")

    # a month without rows any more loses its file; a mart without rows keeps one empty
    # file with its columns
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        con.execute("delete from marts.group_status where as_of_date >= date '2026-10-01'")
        con.execute("delete from marts.sku_ranking")
    marts.parquet_step(wh, log=quiet)
    september_days = [f"part-{d}.parquet" for d in _periods("group_status", "2026-09")]
    assert sorted(_copy_files(wh, "group_status")) == september_days
    assert _copy_equals_table(wh, "group_status")
    assert sorted(_copy_files(wh, "sku_ranking")) == ["part-0.parquet"]
    empty = pq.read_table(wh / "parquet" / "marts" / "sku_ranking" / "part-0.parquet")
    assert empty.num_rows == 0 and empty.column_names == ["ranking_date", "sku_rank"]


@pytest.mark.parametrize("earlier", ["one file", "month files"])
def test_a_marts_copy_in_an_earlier_layout_is_replaced_whole(tmp_path, monkeypatch, earlier):
    """The copy earlier versions wrote (one part-0.parquet with every month; month files of
    a mart now copied by day, like group_status) becomes the current files without a
    reader ever seeing the old files beside the new ones (rows counted twice). It is
    swapped as a folder, once: for an instant the folder is absent and a reader's query
    fails (supernova/swap.py), as on the very first copy."""
    wh = tmp_path / "wh"
    _marts_warehouse(wh)
    quiet = [].append
    folder = wh / "parquet" / "marts" / "group_status"
    folder.mkdir(parents=True)
    files = {"part-0.parquet": "1 = 1"}
    if earlier == "month files":
        files = {
            f"part-{m}.parquet": f"strftime(as_of_date, '%Y-%m') = '{m}'"
            for m in ("2026-09", "2026-10")
        }
    with duckdb.connect(str(wh / "supernova.duckdb"), read_only=True) as con:
        for name, where in files.items():
            rows = con.sql(f"select * from marts.group_status where {where}").to_arrow_table()
            pq.write_table(rows, folder / name)

    def rows_read() -> int | None:
        if not folder.exists():
            return None
        with duckdb.connect() as con:
            return con.execute(
                f"select count(*) from read_parquet('{folder}/*.parquet')"
            ).fetchone()[0]

    seen: list[int | None] = []
    _watch_renames(monkeypatch, lambda: seen.append(rows_read()))
    marts.parquet_step(wh, log=quiet)
    monkeypatch.undo()
    assert 50 in seen and set(seen) <= {50, None}
    assert sorted(_copy_files(wh, "group_status")) == _copies("group_status")
    assert _copy_equals_table(wh, "group_status")
