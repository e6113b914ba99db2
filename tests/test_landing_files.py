"""The landing as production fills it (issue 19; exports.md "Files arrive while they are
being written", "Bad input"): temporary names, the quiet period, files changed in place
(supersede), files that vanish mid-run, entries that are not files, impossible offsets,
misrouted files. Hand-made files; quiet periods are given explicitly and file ages are
set with os.utime, never slept."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from ingestion_cases.helpers import csv_text, query, row, write

from ingestion import ingest
from ingestion.landing import QUIET_ENV, QUIET_SECONDS_DEFAULT, quiet_seconds


def _age(path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _quiet(**kw):
    return {"quiet_seconds": 0, **kw}


# ------------------------------------------------------------------ still being written


def test_temporary_names_are_never_read_and_are_reported_waiting(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    text = csv_text([row("orders")])
    names = [".part-0.csv", "_part-1.csv", "part-2.csv.tmp", "part-3.csv.part"]
    for name in names:
        _age(write(landing, "orders", name, text), 3600)
    write(landing, "orders", "done.csv", csv_text([row("orders", order_id="O2")]))
    _age(landing / "orders" / "2026-10-01" / "done.csv", 3600)
    result = ingest(landing, wh, quiet_seconds=0)
    status = {f.path: f.status for f in result.files}
    assert status == {
        **{f"orders/2026-10-01/{n}": "waiting" for n in names},
        "orders/2026-10-01/done.csv": "loaded",
    }
    assert result.ok  # waiting is not an error
    assert query(wh, "select file_name, status from raw.manifest") == [("done.csv", "loaded")]
    assert query(wh, "select order_id from raw.orders") == [("O2",)]
    d = result.as_dict()
    assert sorted(w["path"] for w in d["waiting"]) == [
        f"orders/2026-10-01/{n}" for n in sorted(names)
    ]
    assert (
        "4 waiting" in result.summary()
        and "WAITING orders/2026-10-01/.part-0.csv" in result.summary()
    )


def test_a_file_is_read_only_after_the_quiet_period(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    young = write(landing, "orders", "part-0.csv", csv_text([row("orders")]))
    _age(young, 10)
    first = ingest(landing, wh, quiet_seconds=60)
    assert [(f.path, f.status) for f in first.files] == [
        ("orders/2026-10-01/part-0.csv", "waiting")
    ]
    assert "unchanged for 60 s" in first.files[0].reason
    assert first.ok and first.as_dict()["waiting"][0]["path"] == "orders/2026-10-01/part-0.csv"
    assert query(wh, "select count(*) from raw.manifest") == [(0,)]  # not rejected, not recorded
    # the environment variable is the default; the keyword wins over it
    monkeypatch.setenv(QUIET_ENV, "5")
    assert quiet_seconds() == 5.0 and quiet_seconds(0) == 0.0
    second = ingest(landing, wh)
    assert [f.status for f in second.files] == ["loaded"]
    monkeypatch.delenv(QUIET_ENV)
    assert quiet_seconds() == QUIET_SECONDS_DEFAULT == 60.0
    monkeypatch.setenv(QUIET_ENV, "soon")
    with pytest.raises(ValueError, match=QUIET_ENV):
        ingest(landing, wh)


# ------------------------------------------------------------------ changed in place


def _loaded(wh):
    return query(
        wh, "select file_path, status, rows_loaded from raw.manifest order by loaded_at, status"
    )


def test_a_file_changed_in_place_supersedes_its_earlier_load(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    full = csv_text([row("orders", order_id=f"O{i}") for i in range(10)])
    cut = full[: int(len(full) * 0.6)]  # read at 60 %: the last line is cut inside a field
    p = write(landing, "orders", "part-0000.csv", cut)
    first = ingest(landing, wh, quiet_seconds=0)
    assert first.files[0].status == "loaded"
    partial_rows = query(wh, "select count(*) from raw.orders")[0][0]
    assert 0 < partial_rows < 10
    old_sha = first.files[0].sha256
    p.write_text(full)
    second = ingest(landing, wh, quiet_seconds=0)
    assert second.ok, second.summary()
    (out,) = second.files
    assert (out.status, out.supersedes) == ("loaded", old_sha)
    assert out.rows_withdrawn == first.files[0].rows_loaded
    assert "SUPERSEDED orders/2026-10-01/part-0000.csv" in second.summary()
    assert second.as_dict()["superseded"][0]["previous_sha256"] == old_sha
    # the earlier rows stop counting; never mixed with the new ones
    assert query(wh, "select order_id from raw.orders order by order_id") == sorted(
        (f"O{i}",) for i in range(10)
    )
    assert query(wh, "select distinct _file_sha256 from raw.orders") == [(out.sha256,)]
    rows = query(wh, "select sha256, status, reason from raw.manifest order by loaded_at")
    assert [(r[0], r[1]) for r in rows] == [(old_sha, "superseded"), (out.sha256, "loaded")]
    assert "changed in place" in rows[0][2]
    # its Parquet is kept (and survives the next run's orphan clean-up)
    ingest(landing, wh, quiet_seconds=0)
    kept = list((wh / "raw" / "orders").rglob(f"{old_sha}.parquet"))
    assert len(kept) == 1
    # the completed bytes re-sent under a new name: a duplicate of the superseding load
    shutil.copy(p, p.with_name("part-0000-resent.csv"))
    third = ingest(landing, wh, quiet_seconds=0)
    dup = [f for f in third.files if f.status != "skipped"]
    assert [(f.path, f.status) for f in dup] == [
        ("orders/2026-10-01/part-0000-resent.csv", "duplicate")
    ]
    assert "orders/2026-10-01/part-0000.csv" in dup[0].reason
    assert query(wh, "select count(*) from raw.orders") == [(10,)]


def test_changed_back_to_earlier_bytes_loads_them_again(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    a = csv_text([row("skus", sku_id="S1")])
    b = csv_text([row("skus", sku_id="S2")])
    p = write(landing, "skus", "s.csv", a)
    ingest(landing, wh, quiet_seconds=0)
    p.write_text(b)
    ingest(landing, wh, quiet_seconds=0)
    p.write_text(a)
    back = ingest(landing, wh, quiet_seconds=0)
    assert [(f.status, bool(f.supersedes)) for f in back.files] == [("loaded", True)]
    assert query(wh, "select sku_id from raw.skus") == [("S1",)]
    assert query(wh, "select status from raw.manifest order by loaded_at") == [
        ("superseded",),
        ("superseded",),
        ("loaded",),
    ]


def test_a_duplicate_of_a_superseded_load_is_read_again(tmp_path):
    """Same bytes under two names, then one changed in place: the other copy no longer
    refers to rows that count, so it is read like any delivery."""
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    a = csv_text([row("links", link_id="L1")])
    p = write(landing, "links", "a.csv", a)
    write(landing, "links", "b.csv", a)
    first = ingest(landing, wh, quiet_seconds=0)
    assert [f.status for f in first.files] == ["loaded", "duplicate"]
    p.write_text(csv_text([row("links", link_id="L2")]))
    second = ingest(landing, wh, quiet_seconds=0)
    assert {f.path: f.status for f in second.files} == {
        "links/2026-10-01/a.csv": "loaded",
        "links/2026-10-01/b.csv": "loaded",
    }
    assert query(wh, "select link_id from raw.links order by 1") == [("L1",), ("L2",)]


# ------------------------------------------------------------------ vanishing files


def test_files_vanishing_or_renamed_mid_run_are_skipped_and_reported(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    for name in ("a.csv", "b.csv", "c.csv", "d.csv"):
        write(landing, "clicks", name, csv_text([row("clicks", click_id=name)]))
    day = landing / "clicks" / "2026-10-01"

    def progress(msg: str) -> None:
        if msg.startswith("[loaded] clicks/2026-10-01/a.csv"):
            if (day / "b.csv").exists():
                (day / "b.csv").rename(day / "b-renamed.csv")  # write-then-rename elsewhere
                (day / "c.csv").unlink()
                (day / "c.csv").mkdir()  # a path that became a directory

    result = ingest(landing, wh, quiet_seconds=0, progress=progress)
    status = {f.path: f.status for f in result.files}
    assert status == {
        "clicks/2026-10-01/a.csv": "loaded",
        "clicks/2026-10-01/b.csv": "vanished",
        "clicks/2026-10-01/c.csv": "vanished",
        "clicks/2026-10-01/d.csv": "loaded",
    }
    assert result.ok and "VANISHED clicks/2026-10-01/b.csv" in result.summary()
    assert len(result.as_dict()["vanished"]) == 2
    assert query(wh, "select count(*) from raw.manifest") == [(2,)]
    # the next run reads the renamed file (and records the directory named c.csv)
    nxt = {f.path: f.status for f in ingest(landing, wh, quiet_seconds=0).files}
    assert nxt["clicks/2026-10-01/b-renamed.csv"] == "loaded"
    assert nxt["clicks/2026-10-01/c.csv"] == "not_a_file"


# ------------------------------------------------------------------ not files


def test_pipes_dangling_links_and_file_like_folders_get_a_manifest_row(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    good = write(landing, "orders", "good.csv", csv_text([row("orders")]))
    day = good.parent
    os.mkfifo(day / "pipe.csv")  # opening it for reading would block forever
    os.symlink(day / "gone.csv", day / "dangling.csv")
    (day / "folder.csv").mkdir()
    result = ingest(landing, wh, quiet_seconds=0)
    status = {f.path: f.status for f in result.files}
    assert status == {
        "orders/2026-10-01/good.csv": "loaded",
        "orders/2026-10-01/pipe.csv": "not_a_file",
        "orders/2026-10-01/dangling.csv": "not_a_file",
        "orders/2026-10-01/folder.csv": "not_a_file",
    }
    rows = dict(query(wh, "select file_name, reason from raw.manifest where status = 'not_a_file'"))
    assert "named pipe" in rows["pipe.csv"]
    assert "dangling symbolic link" in rows["dangling.csv"]
    assert "directory" in rows["folder.csv"]
    assert "NOT A FILE orders/2026-10-01/pipe.csv" in result.summary()
    # recorded once
    again = ingest(landing, wh, quiet_seconds=0)
    assert {f.status for f in again.files} == {"skipped"}
    assert query(wh, "select count(*) from raw.manifest") == [(4,)]


# ------------------------------------------------------------------ bad content


@pytest.mark.parametrize("offset", ["+80:00", "+24:00", "-15:00", "+14:30", "+0860"])
def test_impossible_timestamp_offsets_are_quarantined(tmp_path, offset):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write(
        landing,
        "clicks",
        "c.csv",
        csv_text(
            [
                row("clicks", click_id="OK1", clicked_at="2026-09-30T20:00:00+14:00"),
                row("clicks", click_id="OK2", clicked_at="2026-09-30T20:00:00-12:00"),
                row("clicks", click_id="BAD", clicked_at=f"2026-09-30T20:00:00{offset}"),
            ]
        ),
    )
    ingest(landing, wh, quiet_seconds=0)
    assert query(wh, "select click_id from raw.clicks order by 1") == [("OK1",), ("OK2",)]
    (reason,) = query(wh, "select reason from raw.quarantine")[0]
    assert "clicked_at" in reason and "is not an ISO 8601 timestamp" in reason


def test_a_file_in_the_wrong_folder_is_rejected_as_misrouted(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    orders = csv_text([row("orders", order_id=f"O{i}") for i in range(3)])
    write(landing, "buyers", "orders-by-mistake.csv", orders)
    write(
        landing,
        "orders",
        "events.jsonl",
        '{"order_id": "O1", "line_no": 1, "event": "paid", "event_at": "2026-09-30T21:00:05+08:00"}\n',
    )
    write(landing, "buyers", "b.csv", csv_text([row("buyers")]))
    result = ingest(landing, wh, quiet_seconds=0)
    status = {f.path: (f.status, f.reason) for f in result.files}
    assert status["buyers/2026-10-01/b.csv"][0] == "loaded"
    st, reason = status["buyers/2026-10-01/orders-by-mistake.csv"]
    assert st == "rejected" and "misrouted" in reason and "'orders'" in reason
    st, reason = status["orders/2026-10-01/events.jsonl"]
    assert st == "rejected" and "misrouted" in reason and "'order_events'" in reason
    assert query(wh, "select buyer_id from raw.buyers") == [("B1",)]
