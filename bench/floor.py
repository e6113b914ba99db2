"""The floor: the settlement SQL that dbt ran, executed directly in one DuckDB connection,
without Airflow, dbt or Great Expectations.

It reads dbt's manifest of an earlier `dbt build` of the same month (the compiled SQL of
every model and data test that build ran, in dependency order), then in one connection:

1. models: `create or replace table|view <relation> as <compiled SQL>`; an incremental
   staging model that exists is merged as dbt-duckdb does (delete+insert on its key);
2. data tests: `select count(*) from (<compiled SQL>)` (must be 0, as in dbt);
3. gate queries: the rows the gate reads (settlement_checks, payouts, payout_lines,
   settlement_run_totals) fetched as Arrow, and every invariant must be 0;
4. publish: the five published tables copied into schema `settlement` in one
   transaction, and each month's Parquet partition written sorted by key.

So `settle (DAG) / floor` is the price of orchestration (Airflow start-up and task
bookkeeping, dbt parsing/compiling/materialisation steps, GX import and validation,
pandas conversion), not of the SQL.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import duckdb
import yaml

from supernova import settings
from supernova.tables import PUBLISHED_TABLES
from supernova.warehouse import table_exists


def profile_settings() -> dict:
    """The `settings:` of the duckdb output in dbt_project/profiles.yml, env_var() rendered,
    so the floor runs DuckDB exactly as configured for dbt."""
    prof = yaml.safe_load((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())
    raw = prof["supernova"]["outputs"]["duckdb"].get("settings") or {}

    def render(v):
        if not isinstance(v, str):
            return v

        def sub(m):
            return os.environ.get(m.group(1), m.group(3) or "")

        return re.sub(r"\{\{\s*env_var\(\s*'([^']+)'\s*(,\s*'([^']*)'\s*)?\)\s*\}\}", sub, v)

    return {k: render(v) for k, v in raw.items()}


def _ordered_nodes(manifest: dict, executed: set[str]) -> list[dict]:
    nodes = {uid: manifest["nodes"][uid] for uid in executed if uid in manifest["nodes"]}
    order, seen = [], set()

    def visit(uid):
        if uid in seen or uid not in nodes:
            return
        seen.add(uid)
        for dep in nodes[uid]["depends_on"]["nodes"]:
            visit(dep)
        order.append(nodes[uid])

    for uid in sorted(nodes):
        visit(uid)
    return order


def run_floor(warehouse: Path, month: str, target_dir: Path | None = None) -> dict:
    warehouse = Path(warehouse)
    target_dir = Path(
        target_dir or os.environ.get("BENCH_DBT_TARGET") or warehouse / "dbt" / "target"
    )
    manifest = json.loads((target_dir / "manifest.json").read_text())
    run_results = json.loads((target_dir / "run_results.json").read_text())
    executed = {r["unique_id"] for r in run_results["results"]}
    nodes = _ordered_nodes(manifest, executed)
    models = [n for n in nodes if n["resource_type"] == "model"]
    tests = [n for n in nodes if n["resource_type"] == "test"]
    out: dict = {"models": len(models), "tests": len(tests), "model_seconds": {}}

    con = duckdb.connect(str(settings.duckdb_path(warehouse)))
    try:
        for k, v in profile_settings().items():
            con.execute(f"set {k} = '{v}'" if isinstance(v, str) else f"set {k} = {v}")
        t0 = time.perf_counter()
        for n in models:
            rel = n["relation_name"]
            kind = "view" if n["config"]["materialized"] == "view" else "table"
            con.execute(f"create schema if not exists {n['schema']}")
            t = time.perf_counter()
            if n["config"]["materialized"] == "incremental" and table_exists(
                con, n["schema"], n["alias"]
            ):
                # what dbt-duckdb's delete+insert does with the rows of the incremental select
                key = n["config"]["unique_key"]
                keys = [key] if isinstance(key, str) else list(key)
                con.execute(f"create or replace temp table floor_delta as {n['compiled_code']}")
                on = " and ".join(f"d.{k} = t.{k}" for k in keys)
                con.execute(
                    f"delete from {rel} as t where exists (select 1 from floor_delta as d where {on})"
                )
                con.execute(f"insert into {rel} by name select * from floor_delta")
            else:
                con.execute(f"create or replace {kind} {rel} as {n['compiled_code']}")
            out["model_seconds"][n["name"]] = round(time.perf_counter() - t, 3)
        out["models_seconds"] = round(time.perf_counter() - t0, 3)

        t0 = time.perf_counter()
        failing = []
        for n in tests:
            cnt = con.execute(f"select count(*) from ({n['compiled_code']}) as t").fetchone()[0]
            if cnt:
                failing.append(n["name"])
        out["tests_seconds"] = round(time.perf_counter() - t0, 3)
        out["failing_tests"] = failing

        t0 = time.perf_counter()
        for table in ("settlement_checks", "payouts", "payout_lines", "settlement_run_totals"):
            con.execute(f"select * from settlement_build.{table}").to_arrow_table()
        violations = con.execute(
            "select coalesce(sum(violations), 0) from settlement_build.settlement_checks"
        ).fetchone()[0]
        out["gate_seconds"] = round(time.perf_counter() - t0, 3)
        out["violations"] = int(violations)

        t0 = time.perf_counter()
        con.execute("begin transaction")
        con.execute("create schema if not exists settlement")
        for table in PUBLISHED_TABLES:
            con.execute(
                f"create or replace table settlement.{table} as select * from settlement_build.{table}"
            )
        con.execute("commit")
        base = warehouse / "parquet-floor"
        for table, (col, order) in PUBLISHED_TABLES.items():
            d = base / table / f"settlement_month={month}"
            d.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"copy (select * exclude ({col}) from settlement.{table} order by {order}) "
                f"to '{d / 'part-0.parquet'}' (format parquet, compression zstd)"
            )
        out["publish_seconds"] = round(time.perf_counter() - t0, 3)
    finally:
        con.close()
    out["ok"] = not failing and out["violations"] == 0
    return out
