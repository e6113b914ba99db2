"""Per-model timings (and optionally EXPLAIN ANALYZE) of the settlement SQL on a copy of
a benchmark warehouse, without running dbt's build:

    uv run --frozen python -m bench.profile --scale today [--explain MODEL ...]

Compiles the project with dbt (`dbt compile`: only the queries macros run to decide what
to compile, e.g. an incremental model's scope), then replays the compiled
models in one DuckDB connection like the floor (bench/floor.py) and prints each model's
seconds; `--explain` writes EXPLAIN ANALYZE of the named models to <root>/profile/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.data import MONTH, clone
from bench.measure import ROOT


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--scale", default="today")
    p.add_argument("--root", type=Path, default=ROOT / "var" / "bench")
    p.add_argument("--explain", nargs="*", default=[])
    p.add_argument("--only", nargs="*", default=None, help="stop after these models are built")
    a = p.parse_args(argv)
    import duckdb

    from bench.floor import _ordered_nodes, profile_settings
    from supernova import settings
    from supernova.dbt_runner import dbt_invoke

    base = a.root / "data" / a.scale / "warehouse"
    wh = clone(base, a.root / "runs" / a.scale / "profile")
    vars_ = {
        "settlement_month": MONTH,
        "run_id": f"{MONTH}-bench",
        "first_month": MONTH,
        "accept_suspense": False,
    }
    res = dbt_invoke(
        wh, ["compile", "--select", "+path:models/settlement,resource_type:model"], vars_
    )
    assert res.success, res.exception
    target = wh / "dbt" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    executed = {
        r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]
    }
    out_dir = a.root / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.duckdb_path(wh)))
    for k, v in profile_settings().items():
        con.execute(f"set {k} = '{v}'" if isinstance(v, str) else f"set {k} = {v}")
    total = 0.0
    for n in _ordered_nodes(manifest, executed):
        if n["resource_type"] != "model":
            continue
        kind = "view" if n["config"]["materialized"] == "view" else "table"
        con.execute(f"create schema if not exists {n['schema']}")
        if n["name"] in a.explain:
            con.execute("pragma enable_profiling = 'query_tree'")
            con.execute(f"pragma profiling_output = '{out_dir / (n['name'] + '.txt')}'")
        t = time.perf_counter()
        con.execute(f"create or replace {kind} {n['relation_name']} as {n['compiled_code']}")
        dt = time.perf_counter() - t
        if n["name"] in a.explain:
            con.execute("pragma disable_profiling")
        total += dt
        rows = (
            con.execute(f"select count(*) from {n['relation_name']}").fetchone()[0]
            if kind == "table"
            else "-"
        )
        print(f"{n['name']:<45} {dt:8.2f} s  {rows:>12} rows", flush=True)
        if a.only and n["name"] in a.only:
            break
    print(f"{'total':<45} {total:8.2f} s")
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
