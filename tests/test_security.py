"""Security and privacy of a whole settlement run (not just ingestion, which
test_ingestion_pii.py covers):

* the buyers' phone numbers of the landing appear nowhere: not in any byte of any file
  under the warehouse dir (DuckDB file, raw and published Parquet, BI catalog, dbt
  target/logs, the CLI's detail logs, run state, reports), not in the decoded content of any Parquet file or any DuckDB
  table/view, not in the stdout/stderr of `supernova settle`;
* no table of the warehouse has a phone column;
* hostile ids and file names (SQL, shell, Jinja) pass through ingestion, dbt and
  publish byte-exact and execute nothing (no `pwned` file appears, the manifest and the
  published tables still exist).

Uses the reference `supernova settle` run of test_reliability_faults.py (shared, run
once per session).
"""

from __future__ import annotations

import re

import duckdb
import pyarrow.parquet as pq
import pytest
import test_reliability_faults as rf

PHONE_RE = re.compile(rb"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_landing):
    prep = rf.prepared(tmp_path_factory, tiny_landing)
    ref = rf.reference_run(prep)
    assert ref["proc"].returncode == 0, ref["proc"].stdout[-3000:] + ref["proc"].stderr[-3000:]
    phones = rf.landing_phones(prep["landing"])
    return {"prep": prep, "wh": ref["wh"], "proc": ref["proc"], "phones": phones}


def _decoded(wh) -> str:
    chunks = []
    for f in sorted(wh.rglob("*.parquet")):
        chunks.append(str(pq.read_table(f).to_pylist()))
    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        rels = con.execute(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
        for schema, name in rels:
            chunks.append(str(con.execute(f'select * from "{schema}"."{name}"').fetchall()))
    finally:
        con.close()
    return "\n".join(chunks)


def test_phone_numbers_appear_in_no_file_table_or_log(run):
    phones, wh, proc = run["phones"], run["wh"], run["proc"]
    assert len(phones) > 1000
    # positive control: the same scanner finds them in the landing
    landing_hits = set()
    for f in run["prep"]["landing"].glob("buyers/*/*.csv"):
        landing_hits |= {m.decode() for m in PHONE_RE.findall(f.read_bytes())}
    assert phones <= landing_hits

    files = [p for p in wh.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    # the scan covers them all, including the run's detail log (Airflow, dbt, one line per
    # ingested file: what used to be on the terminal) and the BI catalog
    assert {".duckdb", ".parquet", ".md", ".json", ".log"} <= kinds, kinds
    assert (wh / "bi" / "supernova_bi.duckdb") in files and list((wh / "logs").glob("settle-*.log"))
    leaks = {}
    for p in files:
        hits = {m.decode() for m in PHONE_RE.findall(p.read_bytes())} & phones
        if hits:
            leaks[str(p.relative_to(wh))] = sorted(hits)[:3]
    assert leaks == {}
    text = _decoded(wh)
    assert "2026-09-r0-" in text  # the decoded scan sees real content
    assert not (set(re.findall(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", text)) & phones)
    logs = proc.stdout + proc.stderr
    assert "published" in logs.lower()
    assert not (set(re.findall(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", logs)) & phones)


def test_no_table_has_a_phone_column(run):
    con = duckdb.connect(str(run["wh"] / "supernova.duckdb"), read_only=True)
    try:
        cols = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where lower(column_name) like '%phone%' or lower(column_name) like '%mobile%'"
        ).fetchall()
        schemas = {
            r[0]
            for r in con.execute(
                "select distinct table_schema from information_schema.tables"
            ).fetchall()
        }
    finally:
        con.close()
    assert cols == []
    assert {"raw", "staging", "settlement"} <= schemas
    for f in (run["wh"] / "parquet").rglob("*.parquet"):
        names = pq.read_schema(f).names
        assert not [n for n in names if "phone" in n.lower() or "mobile" in n.lower()], f


def test_hostile_names_and_ids_pass_through_to_published_findings_byte_exact(run):
    wh = run["wh"]
    assert not (run["prep"]["root"] / "pwned").exists()
    for name in (rf.SQL_NAME, rf.SHELL_NAME):
        rel = f"clicks/2026-09-15/{name}"
        assert rf.read_rows(
            wh, "select file_name, status from raw.manifest where file_path = ?", [rel]
        ) == [(name, "loaded")]
    found = dict(
        rf.read_rows(
            wh,
            "select row_key, detail from settlement.findings "
            "where kind = 'click_unknown_link' and settlement_month = '2026-09'",
        )
    )
    for i, cid in enumerate(rf.HOSTILE_CLICK_IDS):
        assert cid in found, cid
        assert found[cid] == f"click on link L-unknown-{i}'-- which is not in the links export"
    # and in the published Parquet copy
    part = (
        wh / "parquet" / "settlement" / "findings" / "settlement_month=2026-09" / "part-0.parquet"
    )
    keys = set(pq.read_table(part).column("row_key").to_pylist())
    assert set(rf.HOSTILE_CLICK_IDS) <= keys
    # nothing was dropped or executed: the tables the hostile strings name still exist
    assert rf.read_rows(wh, "select count(*) from settlement.payouts")[0][0] > 0
    assert rf.read_rows(wh, "select count(*) from raw.manifest")[0][0] > 100
