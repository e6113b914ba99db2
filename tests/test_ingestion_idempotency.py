"""Duplicates, reruns, manifest balance, corrections, processing order and the CLI."""

from __future__ import annotations

import shutil

from ingestion_cases.helpers import csv_text, query, row, write

from ingestion import ingest
from supernova import cli


def _landing(tmp_path):
    landing = tmp_path / "landing"
    write(
        landing,
        "orders",
        "part-1.csv",
        csv_text([row("orders", order_id=f"O{i}") for i in range(5)]),
    )
    write(
        landing,
        "orders",
        "part-2.csv",
        csv_text([row("orders", order_id="O9"), row("orders", order_id="O10", quantity="0")]),
    )
    write(landing, "clicks", "c.csv", csv_text([row("clicks")]), day="2026-10-02")
    return landing


def _state(wh):
    return {
        "manifest": query(
            wh,
            "SELECT file_path, export, delivery_date, file_name, sha256, size_bytes, "
            "encoding, rows_read, rows_loaded, rows_quarantined, status, reason, "
            "extra_columns FROM raw.manifest ORDER BY file_path, sha256",
        ),
        "quarantine": query(
            wh,
            "SELECT export, file_path, sha256, line_no, raw_row, reason "
            "FROM raw.quarantine ORDER BY file_path, line_no",
        ),
        "orders": query(wh, "SELECT * FROM raw.orders ORDER BY _file_name, _line_no"),
        "clicks": query(wh, "SELECT * FROM raw.clicks ORDER BY _file_name, _line_no"),
        "parquet": sorted(
            p.relative_to(wh).as_posix() for p in (wh / "raw").rglob("*") if p.is_file()
        ),
    }


def test_rerun_loads_nothing_twice(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    first = ingest(landing, wh)
    assert [f.status for f in first.files] == ["loaded", "loaded", "loaded"]
    before = _state(wh)
    second = ingest(landing, wh)
    assert [f.status for f in second.files] == ["skipped"] * 3
    assert second.ok and second.rows_read == 0
    assert "3 already seen" in second.summary()
    assert _state(wh) == before
    assert len(before["orders"]) == 6 and len(before["quarantine"]) == 1


def test_duplicate_bytes_under_other_name_and_folder(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    ingest(landing, wh)
    src = landing / "orders" / "2026-10-01" / "part-1.csv"
    (landing / "orders" / "2026-10-05").mkdir()
    shutil.copy(src, landing / "orders" / "2026-10-05" / "resent.csv")
    shutil.copy(src, landing / "orders" / "2026-10-01" / "part-1-copy.csv")
    result = ingest(landing, wh)
    dups = result.by_status("duplicate")
    assert sorted(d.path for d in dups) == [
        "orders/2026-10-01/part-1-copy.csv",
        "orders/2026-10-05/resent.csv",
    ]
    assert all("same bytes as orders/2026-10-01/part-1.csv" in d.reason for d in dups)
    assert result.ok  # a duplicate is not an error
    assert query(wh, "SELECT count(*) FROM raw.orders") == [(6,)]
    m = query(
        wh, "SELECT status, rows_read, rows_loaded FROM raw.manifest WHERE status = 'duplicate'"
    )
    assert m == [("duplicate", 0, 0)] * 2
    # recorded once: a third run does not record them again
    ingest(landing, wh)
    assert query(wh, "SELECT count(*) FROM raw.manifest WHERE status = 'duplicate'") == [(2,)]


def test_duplicate_within_one_run_first_in_order_wins(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    text = csv_text([row("links")])
    write(landing, "links", "b.csv", text, day="2026-10-01")
    write(landing, "links", "a.csv", text, day="2026-10-02")
    result = ingest(landing, wh)
    assert [(f.path, f.status) for f in result.files] == [
        ("links/2026-10-01/b.csv", "loaded"),
        ("links/2026-10-02/a.csv", "duplicate"),
    ]


def test_corrected_file_loads_beside_the_original(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    ingest(landing, wh)
    write(
        landing,
        "orders",
        "part-1-fix.csv",
        csv_text([row("orders", order_id="O1", paid_amount="99.00")]),
        day="2026-10-03",
    )
    result = ingest(landing, wh)
    assert [f.status for f in result.files if f.status != "skipped"] == ["loaded"]
    got = query(
        wh,
        "SELECT paid_amount, _delivery_date, _file_name FROM raw.orders "
        "WHERE order_id = 'O1' ORDER BY _delivery_date",
    )
    assert [str(g[0]) for g in got] == ["129.90", "99.00"]
    assert got[1][2] == "orders/2026-10-03/part-1-fix.csv"


def test_file_changed_in_place_supersedes_and_a_fixed_rejected_file_loads(tmp_path):
    """exports.md (issue 19): a loaded file changed in place supersedes its earlier load
    (it used to be rejected, which lost the rest of a file read half-written)."""
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    bad = write(landing, "skus", "s.csv", "sku_id,title\nS1,x\n")
    r1 = ingest(landing, wh)
    assert [f.status for f in r1.files if f.path == "skus/2026-10-01/s.csv"] == ["rejected"]
    bad.write_text(csv_text([row("skus")]))
    p1 = landing / "orders" / "2026-10-01" / "part-1.csv"
    p1.write_text(csv_text([row("orders", order_id="CHANGED")]))
    r2 = ingest(landing, wh)
    status = {f.path: (f.status, f.reason) for f in r2.files}
    assert status["skus/2026-10-01/s.csv"][0] == "loaded"
    assert status["orders/2026-10-01/part-1.csv"][0] == "loaded"
    assert "changed in place" in status["orders/2026-10-01/part-1.csv"][1]
    assert query(
        wh, "SELECT order_id FROM raw.orders WHERE _file_name = 'orders/2026-10-01/part-1.csv'"
    ) == [("CHANGED",)]
    assert query(
        wh,
        "SELECT status FROM raw.manifest WHERE file_path = 'orders/2026-10-01/part-1.csv' "
        "ORDER BY loaded_at",
    ) == [("superseded",), ("loaded",)]


def test_manifest_balance_for_every_file(tmp_path):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    write(landing, "buyers", "ragged.csv", "buyer_id,gender,phone\nB1,F,1\nB2,F\nB3,X,3\n\n")
    write(landing, "orders", "rejected.csv", "nothing,useful\n1,2\n")
    ingest(landing, wh)
    rows = query(
        wh, "SELECT file_path, status, rows_read, rows_loaded, rows_quarantined FROM raw.manifest"
    )
    assert len(rows) == 5
    for path, _status, read, loaded, quarantined in rows:
        assert read == loaded + quarantined, path
    # and the numbers match what is really in the views and the quarantine
    for path, _status, _read, loaded, quarantined in rows:
        export = path.split("/")[0]
        assert query(wh, f"SELECT count(*) FROM raw.{export} WHERE _file_name = ?", [path]) == [
            (loaded,)
        ]
        assert query(wh, "SELECT count(*) FROM raw.quarantine WHERE file_path = ?", [path]) == [
            (quarantined,)
        ]
    assert {r[0]: r[2:] for r in rows}["buyers/2026-10-01/ragged.csv"] == (3, 1, 2)


def test_processing_order_is_date_export_path(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    for day, export, name in [
        ("2026-10-02", "clicks", "a.csv"),
        ("2026-10-01", "orders", "b.csv"),
        ("2026-10-01", "orders", "a.csv"),
        ("2026-10-01", "promoters", "z.csv"),
    ]:
        write(
            landing,
            export,
            name,
            csv_text([row(export, **({"order_id": name} if export == "orders" else {}))]),
            day=day,
        )
    result = ingest(landing, wh)
    assert [f.path for f in result.files] == [
        "promoters/2026-10-01/z.csv",
        "orders/2026-10-01/a.csv",
        "orders/2026-10-01/b.csv",
        "clicks/2026-10-02/a.csv",
    ]


def test_cli_exit_code_and_output(tmp_path, capsys):
    landing, wh = _landing(tmp_path), tmp_path / "wh"
    assert cli.main(["ingest", "--landing", str(landing), "--warehouse", str(wh)]) == 0
    out = capsys.readouterr().out
    assert "3 loaded" in out and "OK" in out
    write(landing, "orders", "broken.csv", "order_id\nO1\n")
    assert cli.main(["ingest", "--landing", str(landing), "--warehouse", str(wh)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED orders/2026-10-01/broken.csv: required column(s) missing" in out
    # the rejection is recorded once; the next run is clean again
    assert cli.main(["ingest", "--landing", str(landing), "--warehouse", str(wh)]) == 0
