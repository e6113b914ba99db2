"""A BI tool reads the published Parquet through views over `<table>/*/*.parquet`
(supernova/serving.py), at any moment, a publish included. DuckDB's glob matches hidden
folders, so a partition being written, or the replaced one set aside, must never sit
inside a table folder: a reader would see uncommitted rows, or fail with "Hive partition
mismatch" (and after a killed publish, until the next run cleaned up)."""

from __future__ import annotations

import shutil

import duckdb
from test_gated_ledger import MONTH, RUN, _build

from supernova import publish


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


def test_bi_readers_never_see_a_partition_in_the_middle_of_a_publish(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    wh.mkdir()
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        _build(con, rows=3000)
    row = {"attempt_id": "a1", "settlement_month": MONTH}
    publish.publish_month(wh, MONTH, RUN, row, False)
    with duckdb.connect(str(wh / "supernova.duckdb")) as con:
        _build(con, rows=3100, run_id=RUN + "x")

    seen_during: list[dict] = []
    real_commit, real_rmtree = publish.commit_partition, shutil.rmtree

    def commit_watched(*args, **kwargs):
        seen_during.append(_bi_read_every_table(wh))  # the new partition staged
        return real_commit(*args, **kwargs)

    def rmtree_watched(path, *args, **kwargs):
        seen_during.append(_bi_read_every_table(wh))  # the old partition set aside
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(publish, "commit_partition", commit_watched)
    monkeypatch.setattr(shutil, "rmtree", rmtree_watched)
    publish.publish_month(wh, MONTH, RUN + "x", {**row, "attempt_id": "a2"}, True)
    monkeypatch.undo()

    assert len(seen_during) >= 2 * len(publish.PUBLISHED_TABLES)
    committed = {
        table: [f"{col}={MONTH}/part-0.parquet"]
        for table, (col, _) in publish.PUBLISHED_TABLES.items()
    }
    for seen in seen_during:
        assert seen == committed
    assert _bi_read_every_table(wh) == committed
