"""A `target`-sized warehouse made from an ingested `today` one, for when generating and
ingesting a real `target` month does not fit the time at hand (docs/benchmarks.md says
which figures come from it):

    uv run --frozen python -m bench.replicate --from today --to target3x --copies 3

Every committed raw Parquet file is written `copies` times with every entity ID prefixed
by the copy's letter (promoters, groups, links, clicks, buyers, orders, events), so each
copy is an independent programme with the same distributions; SKUs and commission rules
(the merchants' catalogue) are shared, as they would be. The manifest gets one row per
new file, and the raw views are rebuilt from it by ingestion's own ensure_raw_schema.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from bench.data import data_facts
from bench.measure import ROOT

PREFIXED = {
    "promoters": ["promoter_id", "inviter_id"],
    "groups": ["group_id", "owner_id"],
    "links": ["link_id", "promoter_id", "group_id"],
    "clicks": ["click_id", "link_id", "buyer_id"],
    "orders": ["order_id", "parent_order_id", "buyer_id"],
    "order_events": ["order_id", "event_id"],
    "buyers": ["buyer_id"],
    "skus": [],
    "commission_rules": [],
}


def replicate(src: Path, dst: Path, copies: int) -> dict:
    import duckdb

    from ingestion import ensure_raw_schema
    from ingestion.schema import parquet_path

    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    t0 = time.perf_counter()
    shutil.copy2(src / "supernova.duckdb", dst / "supernova.duckdb")
    con = duckdb.connect(str(dst / "supernova.duckdb"))
    try:
        # only the raw layer is replicated: whatever dbt built from the source is dropped
        for (schema,) in con.execute(
            "select distinct schema_name from information_schema.schemata "
            "where catalog_name = current_database() "
            "and schema_name not in ('raw', 'main', 'information_schema', 'pg_catalog')"
        ).fetchall():
            con.execute(f"drop schema {schema} cascade")
        rows = con.execute(
            "select export, cast(delivery_date as varchar), sha256, file_path from raw.manifest "
            "where status = 'loaded'"
        ).fetchall()
        letters = "abcdefghij"[:copies]
        for export, day, sha, _ in rows:
            src_file = parquet_path(src, export, day, sha)
            cols = [
                r[0]
                for r in con.execute(
                    f"describe select * from read_parquet('{src_file}')"
                ).fetchall()
            ]
            for k in letters if PREFIXED[export] else "a":
                new_sha = sha[:-1] + k if PREFIXED[export] else sha
                # the lineage columns name the file the row is in, as its manifest row
                # does (incremental staging finds a new file's rows by them; the versions
                # views' key is (_file_name, _line_no)): copies b, c, ... live under
                # '<letter>/' + the original path
                lineage = {
                    "_file_sha256": f"'{new_sha}'",
                    "_file_name": f"'{k}/' || _file_name" if k != "a" else "_file_name",
                }
                sel = ", ".join(
                    f"'{k}' || {c} as {c}"
                    if c in PREFIXED[export]
                    else f"{lineage[c]} as {c}"
                    if c in lineage
                    else c
                    for c in cols
                )
                out = parquet_path(dst, export, day, new_sha)
                out.parent.mkdir(parents=True, exist_ok=True)
                con.execute(
                    f"copy (select {sel} from read_parquet('{src_file}')) to '{out}' "
                    "(format parquet, compression zstd)"
                )
        con.execute("begin transaction")
        for k in letters[1:]:
            con.execute(f"""insert into raw.manifest
                select '{k}/' || file_path, export, delivery_date, file_name, left(sha256, 63) || '{k}', size_bytes,
                       encoding, rows_read, rows_loaded, rows_quarantined, status, reason, extra_columns,
                       ingest_run_id, loaded_at
                from raw.manifest where status = 'loaded'
                  and export not in ('skus', 'commission_rules')
                  and file_path not similar to '[b-j]/.*'""")  # the originals only, not earlier copies
        con.execute("""update raw.manifest set sha256 = left(sha256, 63) || 'a'
                       where status = 'loaded' and export not in ('skus', 'commission_rules')
                         and file_path not similar to '[b-j]/.*'""")
        con.execute("commit")
    finally:
        con.close()
    ensure_raw_schema(dst)
    return {"seconds": round(time.perf_counter() - t0, 1), "copies": copies}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replicate")
    p.add_argument("--from", dest="src", default="today")
    p.add_argument("--to", dest="dst", default="target3x")
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--root", type=Path, default=ROOT / "var" / "bench")
    a = p.parse_args(argv)
    src = a.root / "data" / a.src
    dst = a.root / "data" / a.dst
    (dst / "stage_month.json").unlink(missing_ok=True)  # staging is rebuilt for the new data
    info = replicate(src / "warehouse", dst / "warehouse", a.copies)
    info.update(data_facts(dst / "warehouse"))
    src_gen = json.loads((src / "generated.json").read_text())
    (dst / "generated.json").write_text(
        json.dumps(
            {
                "args": {**src_gen["args"], "replicated_from": a.src, "copies": a.copies},
                "landing_bytes": src_gen["landing_bytes"] * a.copies,
            },
            indent=1,
        )
    )
    src_ingest = json.loads((src / "ingest_month.json").read_text())
    (dst / "ingest_month.json").write_text(
        json.dumps(
            {
                **info,
                "replicated": True,
                "wall_s": None,
                "peak_rss_mb": None,
                "rc": 0,
                "load_before": None,
                "note": f"made by bench.replicate from {a.src}; ingest of {a.src}: "
                f"{src_ingest.get('wall_s')} s",
            },
            indent=1,
        )
    )
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
