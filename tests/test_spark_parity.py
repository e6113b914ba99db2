"""The same dbt project on Spark (dbt-spark, method: session, local PySpark) settles the
same generated tiny data to the same fen as DuckDB: September from an empty ledger, then
October on top of September as DuckDB published it (clawbacks, carried balances, frozen
terms), comparing payouts and payout_lines row for row.

Needs the optional `spark` dependency group in its own environment (docs/spark.md):

    UV_PROJECT_ENVIRONMENT=.venv-spark uv sync --frozen --group spark
    UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark pytest -m spark

In the default environment (CI's) pyspark is absent and the Spark test is skipped with
that reason; the check that the Spark raw views' columns follow the export contract runs
everywhere.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import duckdb
import pytest

from supernova import settings

HAVE_SPARK = (
    importlib.util.find_spec("pyspark") is not None
    and importlib.util.find_spec("dbt.adapters.spark") is not None
)
SKIP_REASON = (
    "pyspark/dbt-spark are not installed in this environment (optional group `spark`): run "
    "`UV_PROJECT_ENVIRONMENT=.venv-spark uv run --frozen --group spark pytest -m spark`"
)

MONTHS = [("2026-09", "2026-09"), ("2026-10", "2026-09")]  # (month, first month of the warehouse)
PAYOUT_LINES = (
    "settlement_month, order_id, line_no, beneficiary_id, level, kind, base_amount, rate, "
    "line_commission, amount, group_id, run_id"
)
PAYOUTS = (
    "settlement_month, promoter_id, platform, tier, level1_amount, level2_amount, tier_bonus, "
    "clawback_amount, adjustment_amount, carried_in, gross_due, tax_withheld, net_paid, carried_out, "
    "forfeited_amount, status, run_id"
)


def test_spark_raw_views_follow_the_export_contract():
    """macros/spark_raw.sql lists each export's columns and types; they must be
    supernova/contract.py's, in order (the DuckDB raw views are built from the contract)."""
    from supernova.contract import EXPORTS, LINEAGE_COLUMNS, RAW_SQL_TYPES

    spark_types = {
        "VARCHAR": "string",
        "TIMESTAMP": "timestamp",
        "DATE": "date",
        "INTEGER": "int",
        "BOOLEAN": "boolean",
        "BIGINT": "bigint",
    }
    text = (settings.DBT_PROJECT_DIR / "macros" / "spark_raw.sql").read_text()
    for name, export in EXPORTS.items():
        m = re.search(rf"'{name}': \[(.*?)\]", text)
        assert m, f"export {name} missing from macros/spark_raw.sql"
        listed = re.findall(r"'([^']+)'", m.group(1))
        expected = [
            f"{c.name}:{spark_types.get(RAW_SQL_TYPES[c.type], RAW_SQL_TYPES[c.type].lower())}"
            for c in export.stored_columns
        ]
        assert listed == expected, name
    lineage = re.findall(
        r"'([^']+)'",
        re.search(r"raw_lineage_columns\(\) -%}\s*\{\{ return\(\[(.*?)\]", text, re.S).group(1),
    )
    assert lineage == [f"{n}:{spark_types[t]}" for n, t in LINEAGE_COLUMNS]


def _duckdb_months(landing: Path, wh: Path) -> dict:
    """Settle September and October on DuckDB with the run's own steps (build, gate,
    publish); returns each month's candidate payouts and payout_lines."""
    from ingestion import ingest
    from supernova import settle as s

    ingest(landing, wh, progress=lambda *_: None)
    out = {}
    for month, first in MONTHS:
        ctx = {
            "attempt_id": f"parity-{month}",
            "month": month,
            "landing": str(landing),
            "warehouse": str(wh),
            "preview": False,
            "reopen": False,
            "reason": "",
            "accept_suspense": False,
            "accept_suspense_reason": "",
            "triggered_by": "test",
        }
        plan = {
            "action": "settle",
            "run_id": f"{month}-parity",
            "first_month": first,
            "input_fingerprint": "parity",
            "code_fingerprint": "parity",
            "input_files": 0,
        }
        s.RunState(wh, ctx["attempt_id"]).update(started_at="2026-11-25T00:00:00+08:00")
        s.build_step(ctx, plan, log=lambda *_: None)
        s.gate_step(ctx, plan, log=lambda *_: None)
        con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
        try:
            out[month] = {
                "payout_lines": con.execute(
                    f"select {PAYOUT_LINES} from settlement_build.payout_lines"
                ).fetchall(),
                "payouts": con.execute(
                    f"select {PAYOUTS} from settlement_build.payouts"
                ).fetchall(),
            }
        finally:
            con.close()
        s.publish_step(ctx, plan, log=lambda *_: None)
    return out


def _register_published(spark, duck_wh: Path) -> None:
    """What a cluster reads as `settlement.*`: the Parquet copies DuckDB's publish wrote."""
    spark.sql("create database if not exists settlement")
    base = duck_wh / "parquet" / "settlement"
    for table in ("payouts", "payout_lines"):
        spark.sql(
            f"create or replace view settlement.{table} as select * from parquet.`{base / table}`"
        )
    # line_terms is partitioned by its first_settlement_month (folders first_settlement_month=…)
    spark.sql(
        "create or replace view settlement.line_terms as select order_id, line_no, "
        "cast(first_settlement_month as string) as first_settlement_month, first_run_id, click_id, link_id, "
        "group_id, promoter_id, platform, level2_beneficiary_id, rule_id, rule_scope, rate, "
        f"platform_fee_rate, level1_share, level2_share from parquet.`{base / 'line_terms'}`"
    )


def _key(row):
    return tuple("" if v is None else str(v) for v in row)


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_SPARK, reason=SKIP_REASON)
def test_spark_settles_to_the_same_fen_as_duckdb(tiny_landing, tmp_path_factory):
    from bench import spark as sp

    duck_wh = tmp_path_factory.mktemp("duck-warehouse")
    duck = _duckdb_months(tiny_landing, duck_wh)
    assert duck["2026-10"]["payout_lines"] and any(
        r[5] == "clawback" for r in duck["2026-10"]["payout_lines"]
    )

    spark_wh = tmp_path_factory.mktemp("spark-warehouse")
    os.symlink(duck_wh / "raw", spark_wh / "raw")
    saved = dict(os.environ)
    try:
        for month, first in MONTHS:
            if month != first:
                # later months read what earlier months published (the DuckDB publish's Parquet)
                _register_published(sp.spark_session(), duck_wh)
            res = sp.build(spark_wh, month, first_month=first, run_id=f"{month}-parity")
            assert res["ok"], res["failures"]
            spark = sp.spark_session()
            got = {
                "payout_lines": [
                    tuple(r)
                    for r in spark.sql(
                        f"select {PAYOUT_LINES} from settlement_build.payout_lines"
                    ).collect()
                ],
                "payouts": [
                    tuple(r)
                    for r in spark.sql(f"select {PAYOUTS} from settlement_build.payouts").collect()
                ],
            }
            print(
                f"spark {month}: {len(got['payout_lines'])} payout_lines, {len(got['payouts'])} payouts, "
                f"dbt build {res['dbt_seconds']} s"
            )
            checks = spark.sql(
                "select check_name, violations from settlement_build.settlement_checks"
            ).collect()
            assert checks and all(c.violations == 0 for c in checks), [
                tuple(c) for c in checks if c.violations
            ]
            for table in ("payout_lines", "payouts"):
                want = sorted(duck[month][table], key=_key)
                have = sorted(got[table], key=_key)
                assert len(have) == len(want), (month, table, len(have), len(want))
                diffs = [(w, h) for w, h in zip(want, have) if _key(w) != _key(h)]
                assert not diffs, (month, table, diffs[:5])
    finally:
        os.environ.clear()
        os.environ.update(saved)
