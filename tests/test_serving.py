"""The BI serving layer (supernova/serving.py, docs/bi.md) and runs that meet a reader
holding the working file (supernova/warehouse.py).

One module warehouse: `supernova demo` on the tiny exports (both months settled, the marts,
the statements; its transcript is checked: short, no colour codes, each line once, and every
command it suggests works as printed), then the marts refreshed step by step while a second
process holds the working DuckDB file open (as a person with the DuckDB CLI would): the dbt
invocation and the Parquet copy wait for it and say who holds it. Then the catalog is opened
with the DuckDB 1.4 CLI, and docs/bi.md is followed as written (its `duckdb` and Python
blocks are run against this warehouse).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from supernova import marts, publish, serving
from supernova.warehouse import WarehouseLocked, connect, wait_until_free

ROOT = Path(__file__).resolve().parent.parent
DUCKDB_CLI = ROOT / ".venv" / "bin" / "duckdb"
BI_DOC = ROOT / "docs" / "bi.md"
DOC_WAREHOUSE = "var/demo/warehouse"  # the warehouse docs/bi.md's examples name


def _env() -> dict:
    # the tiny exports were generated a moment ago: load them now, not after the quiet period
    return {**os.environ, "PYTHONPATH": str(ROOT), "SUPERNOVA_INGEST_QUIET_SECONDS": "0"}


class Holder:
    """A second process holding <warehouse>/supernova.duckdb open read-only, as a BI tool
    or a person at the DuckDB CLI would, for `seconds` (None: until stopped)."""

    def __init__(self, warehouse: Path, seconds: float | None):
        code = textwrap.dedent(f"""
            import sys, time, duckdb
            con = duckdb.connect({str(warehouse / "supernova.duckdb")!r}, read_only=True)
            print('holding', flush=True)
            time.sleep({seconds if seconds is not None else 3600})
            con.close()
        """)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "holding"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tiny_landing, tmp_path_factory):
    wh = tmp_path_factory.mktemp("served") / "warehouse"
    # the demo generates exports unless its marker says they are there: use the tiny ones
    (tiny_landing.parent / f".{tiny_landing.name}.generated").write_text("ok\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "supernova.cli",
            "demo",
            "--landing",
            str(tiny_landing),
            "--warehouse",
            str(wh),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    waits = {}
    msgs: list[str] = []
    marts.ingest_step(tiny_landing, wh, log=msgs.append)
    for step, run in (
        ("build", lambda: marts.build_step(wh, log=msgs.append)),
        ("parquet", lambda: marts.parquet_step(wh, log=msgs.append)),
    ):
        holder = Holder(wh, seconds=3)
        err = _capture_stderr(run)
        waits[step] = {"pid": holder.pid, "stderr": err}
        holder.stop()
    return {"wh": wh, "landing": tiny_landing, "waits": waits, "demo": proc}


def _capture_stderr(fn) -> str:
    """Run fn and return the wait notices it gave (supernova.warehouse sends them to the
    terminal, or wherever the CLI points them)."""
    from supernova import warehouse

    notices: list[str] = []
    warehouse.set_notice_sink(notices.append)
    try:
        fn()
    finally:
        warehouse.set_notice_sink(None)
    return "\n".join(notices)


# ----------------------------------------------------------------------------- the demo's transcript

ANSI = re.compile(r"\x1b\[")


def test_demo_transcript_is_short_plain_and_says_each_thing_once(served):
    proc = served["demo"]
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    print(f"{len(lines)} lines:\n{out}")  # the measured transcript (pytest -rP shows it)
    assert len(lines) < 60, f"{len(lines)} lines:\n{out}"
    assert not ANSI.search(out), "colour codes in a transcript that is not a terminal"
    assert "[loaded]" not in out and "DeprecationWarning" not in out
    # each message once: no line repeats within one command's part of the transcript
    sections, current = [], []
    for line in lines:
        if line.startswith("[supernova] settling") or line.startswith("[supernova] refreshing"):
            sections.append(current)
            current = []
        current.append(line)
    sections.append(current)
    for section in sections:
        text = [x for x in section if x.strip()]
        assert len(text) == len(set(text)), [x for x in text if text.count(x) > 1]


def test_demo_builds_everything_the_readme_promises(served):
    wh = served["wh"]
    with connect(wh, read_only=True) as con:
        months = con.execute(
            "select settlement_month from settlement.settlement_runs where status = 'published' "
            "order by 1"
        ).fetchall()
        assert months == [("2026-09",), ("2026-10",)]
    for t in marts.MART_TABLES:
        assert list((wh / "parquet" / "marts" / t).glob("*.parquet")), t
    assert list((wh / "statements" / "2026-10").glob("supernova_statements_2026-10.xlsx"))
    assert serving.catalog_path(wh).exists()
    assert list((wh / "logs").glob("settle-2026-10-*.log")) and list(
        (wh / "logs").glob("marts-*.log")
    )


def test_every_command_the_demo_suggests_works_as_printed(served):
    out = served["demo"].stdout.splitlines()
    hints = [line.strip() for line in out[out.index("try:") + 1 :] if line.startswith("  ")]
    assert len(hints) >= 3 and any("statements --month 2026-10" in h for h in hints)
    for hint in hints:
        proc = subprocess.run(
            hint, shell=True, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode == 0, (hint, proc.stdout[-2000:], proc.stderr[-2000:])


# ----------------------------------------------------------------------------- waiting


@pytest.mark.parametrize("step", ["build", "parquet"])
def test_a_step_waits_for_a_reader_and_names_it(served, step):
    err = served["waits"][step]["stderr"]
    pid = served["waits"][step]["pid"]
    assert f"PID {pid}" in err, err
    assert "waiting up to" in err and "going on" in err


def test_marts_refreshed_despite_the_readers(served):
    with connect(served["wh"], read_only=True) as con:
        for t in marts.MART_TABLES:
            assert con.execute(f"select count(*) from marts.{t}").fetchone()[0] >= 0


def test_a_reader_that_never_lets_go_gives_a_clear_error_naming_it(tmp_path):
    duckdb.connect(str(tmp_path / "supernova.duckdb")).close()
    holder = Holder(tmp_path, seconds=None)
    try:
        t0 = time.monotonic()
        with pytest.raises(WarehouseLocked, match=f"still held by PID {holder.pid} .*after 1 s"):
            with connect(tmp_path, wait=1.0, log=lambda m: None):
                pass
        with pytest.raises(WarehouseLocked, match=f"PID {holder.pid}"):
            wait_until_free(tmp_path, wait=0.5, log=lambda m: None)
        assert time.monotonic() - t0 < 60  # bounded: it gave up instead of hanging
    finally:
        holder.stop()


def test_the_wait_bound_is_read_from_the_environment(tmp_path):
    duckdb.connect(str(tmp_path / "supernova.duckdb")).close()
    holder = Holder(tmp_path, seconds=None)
    try:
        code = (
            f"from supernova.warehouse import connect\nwith connect({str(tmp_path)!r}):\n    pass\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**_env(), "SUPERNOVA_WAREHOUSE_WAIT_SECONDS": "1"},
            timeout=120,
        )
        assert proc.returncode != 0
        assert f"held by PID {holder.pid}" in proc.stderr and "after 1 s" in proc.stderr, (
            proc.stderr
        )
    finally:
        holder.stop()


def test_publish_waits_for_a_reader(tmp_path):
    """The settlement publish (one transaction, then the Parquet copies and the catalog)
    opens the file after a reader took it: it waits, then publishes everything."""
    wh, month = tmp_path, "2026-10"
    con = duckdb.connect(str(wh / "supernova.duckdb"))
    con.execute("create schema settlement_build")
    con.execute(
        f"create table settlement_build.payouts as select '{month}' as settlement_month, 'P' || i as "
        "promoter_id, cast(i as decimal(18, 2)) as net_paid, 'r1' as run_id from range(5) t(i)"
    )
    con.execute(
        f"create table settlement_build.payout_lines as select '{month}' as settlement_month, 'O' || i as "
        "order_id, 1 as line_no, 'accrual' as kind, 1 as level, 'P1' as beneficiary_id, "
        "cast(i as decimal(18, 2)) as amount, 'r1' as run_id from range(5) t(i)"
    )
    con.execute(
        f"create table settlement_build.suspense as select '{month}' as settlement_month, 'O1' as order_id, "
        "1 as line_no"
    )
    con.execute(
        f"create table settlement_build.findings as select '{month}' as settlement_month, 'k' as kind, "
        "'x' as row_key"
    )
    con.execute(
        f"create table settlement_build.line_terms as select 'O' || i as order_id, 1 as line_no, "
        f"'{month}' as first_settlement_month from range(5) t(i)"
    )
    cols = ", ".join(f"cast(0 as {publish.RUN_COLUMNS[c]}) as {c}" for c in publish.TOTAL_COLUMNS)
    con.execute(f"create table settlement_build.settlement_run_totals as select {cols}")
    con.close()
    holder = Holder(wh, seconds=2)
    try:
        err = _capture_stderr(
            lambda: publish.publish_month(
                wh, month, "r1", {"attempt_id": "a1", "settlement_month": month}, False
            )
        )
    finally:
        holder.stop()
    assert f"PID {holder.pid}" in err, err
    cat = duckdb.connect(str(serving.catalog_path(wh)), read_only=True)
    try:
        assert cat.execute("select count(*) from settlement.payouts").fetchone()[0] == 5
        assert cat.execute(
            "select distinct first_settlement_month from settlement.line_terms"
        ).fetchall() == [(month,)]
    finally:
        cat.close()


# ----------------------------------------------------------------------------- the catalog


def test_catalog_opens_in_duckdb_1_4_and_answers_like_the_working_file(served):
    wh = served["wh"]
    catalog = serving.catalog_path(wh)
    assert catalog.exists() and not (wh / "parquet" / "marts" / "marts_views.duckdb").exists()
    sql = (
        "select count(*), sum(net_paid) from settlement.payouts; "
        "select count(*) from marts.group_status; "
        "select count(*) from settlement.settlement_runs where status = 'published';"
    )
    proc = subprocess.run(
        [str(DUCKDB_CLI), "-readonly", "-csv", "-noheader", str(catalog), "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "v1.4"
        in subprocess.run([str(DUCKDB_CLI), "--version"], capture_output=True, text=True).stdout
    )
    with connect(wh, read_only=True) as con:
        expected = [
            ",".join(
                str(v)
                for v in con.execute(
                    "select count(*), sum(net_paid) from settlement.payouts"
                ).fetchone()
            ),
            str(con.execute("select count(*) from marts.group_status").fetchone()[0]),
            str(
                con.execute(
                    "select count(*) from settlement.settlement_runs where status = 'published'"
                ).fetchone()[0]
            ),
        ]
    assert proc.stdout.split() == expected


def test_catalog_is_replaced_atomically_and_leaves_nothing_behind(served):
    wh = served["wh"]
    before = serving.catalog_path(wh).stat().st_ino
    reader = duckdb.connect(str(serving.catalog_path(wh)), read_only=True)  # a BI tool holding it
    try:
        serving.write_catalog(wh)
        assert reader.execute("select count(*) from marts.sku_ranking").fetchone()[0] >= 0
    finally:
        reader.close()
    assert serving.catalog_path(wh).stat().st_ino != before
    assert sorted(p.name for p in (wh / "bi").iterdir()) == [serving.CATALOG_FILE]


# ----------------------------------------------------------------------------- table folders


def _table_dirs(wh: Path) -> list[Path]:
    settlement = [
        wh / "parquet" / "settlement" / t for t in [*publish.PUBLISHED_TABLES, "settlement_runs"]
    ]
    return settlement + [wh / "parquet" / "marts" / t for t in marts.MART_TABLES]


def test_table_folders_hold_only_parquet(served):
    for d in _table_dirs(served["wh"]):
        files = [p for p in d.rglob("*") if p.is_file()]
        assert files and all(p.suffix == ".parquet" for p in files), (d, files)


def test_every_table_folder_reads_whole_in_polars_and_duckdb(served):
    import polars as pl

    for d in _table_dirs(served["wh"]):
        assert pl.read_parquet(d).height >= 0, d
        pattern = (
            "*/*.parquet"
            if d.parent.name == "settlement" and d.name != "settlement_runs"
            else "*.parquet"
        )
        duckdb.sql(f"select count(*) from read_parquet('{d}/{pattern}')").fetchall()
        duckdb.sql(
            f"select count(*) from read_parquet('{d}/*')"
            if pattern == "*.parquet"
            else f"select count(*) from read_parquet('{d}/*/*')"
        ).fetchall()


def test_column_names_are_the_same_in_duckdb_and_parquet(served):
    import polars as pl

    wh = served["wh"]
    with connect(wh, read_only=True) as con:
        for d in _table_dirs(wh):
            schema = d.parent.name
            duck = [r[0] for r in con.execute(f"describe {schema}.{d.name}").fetchall()]
            parquet = pl.read_parquet(d, hive_partitioning=True).columns
            assert sorted(duck) == sorted(parquet), (d.name, set(duck) ^ set(parquet))


# ----------------------------------------------------------------------------- docs/bi.md as written


def _doc_blocks(lang: str) -> list[str]:
    text = BI_DOC.read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_bi_doc_steers_every_tool_away_from_the_working_file():
    text = BI_DOC.read_text(encoding="utf-8")
    for line in text.splitlines():
        if "supernova.duckdb" in line:
            assert re.search(r"never|not|don't|only the pipeline", line, flags=re.I), line
    assert "bi/supernova_bi.duckdb" in text


def test_bi_doc_duckdb_cli_blocks_run_as_written(served):
    blocks = [b for b in _doc_blocks("sh") if b.lstrip().startswith("duckdb ")]
    assert blocks
    for block in blocks:
        cmd = block.replace(DOC_WAREHOUSE, str(served["wh"])).replace(
            "duckdb ", f"{DUCKDB_CLI} ", 1
        )
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and proc.stdout.strip(), (block, proc.stderr)
        assert "Error" not in proc.stdout + proc.stderr


def test_bi_doc_python_blocks_run_as_written(served):
    blocks = _doc_blocks("python")
    assert any("polars" in b for b in blocks) and any("pandas" in b for b in blocks)
    for block in blocks:
        code = block.replace(DOC_WAREHOUSE, str(served["wh"]))
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, (block, proc.stderr[-2000:])
        assert proc.stdout.strip(), block  # every example prints what it read
