"""One benchmark stage in this process (the harness runs each in its own process and
measures its wall time and peak memory from outside).

    python -m bench.stage STAGE --landing DIR --warehouse DIR --month YYYY-MM

Stages: ingest, stage (merge loaded files into the incremental staging layer, as the
ingest_exports DAG does), stage_day (merge one delivery day into current staging), build_full (the
settlement build with staging rebuilt from the whole history, what Spark does),
settle (the monthly_settlement DAG end to end through Airflow, like
`supernova settle`), build (the settlement `dbt build` alone), gate (the Great
Expectations gate alone), publish, marts (dbt build of the marts + Parquet copies),
marts_incremental (the same, incremental: after stage_day, the day's refresh),
floor (the compiled settlement SQL in one DuckDB connection, bench/floor.py).
Prints one JSON line `BENCH_RESULT {...}` with what the stage reports about itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# The benchmark generates its exports and ingests them at once: they are complete when
# written, so the quiet period that protects real deliveries (exports.md) is off here.
os.environ.setdefault("SUPERNOVA_INGEST_QUIET_SECONDS", "0")


def _ctx(month: str, landing: Path, warehouse: Path) -> tuple[dict, dict]:
    from supernova.run_request import RunRequest

    ctx = RunRequest(month, str(landing), str(warehouse), triggered_by="bench").context(
        f"bench-{month}"
    )
    plan = {
        "action": "settle",
        "run_id": f"{month}-bench",
        "first_month": month,
        "input_fingerprint": "bench",
        "code_fingerprint": "bench",
        "input_files": 0,
    }
    return ctx, plan


def run_stage(
    stage: str, landing: Path, warehouse: Path, month: str, day: str = "2026-10-15"
) -> dict:
    out: dict = {"stage": stage}
    t0 = time.perf_counter()
    if stage == "ingest":
        from ingestion import ingest

        res = ingest(landing, warehouse, progress=lambda *_: None)
        out.update(ok=bool(res.ok), rows_loaded=int(res.rows_loaded), summary=res.summary())
    elif stage == "settle":
        from supernova.cli import settle_month

        rc = settle_month(month, landing, warehouse)
        out.update(ok=rc == 0)
        states = sorted(
            (warehouse / "runs").glob(f"{month}-*/state.json"), key=lambda p: p.stat().st_mtime
        )
        if states:
            st = json.loads(states[-1].read_text())
            out.update(
                status=st.get("status"),
                build_seconds=(st.get("build") or {}).get("seconds"),
                gate_seconds=(st.get("gate") or {}).get("seconds"),
                rows=(st.get("publish") or {}).get("rows"),
            )
    elif stage in ("build", "build_full", "gate", "publish"):
        from supernova import settle as s

        ctx, plan = _ctx(month, landing, warehouse)
        s.RunState(warehouse, ctx["attempt_id"]).update(started_at="2026-01-01T00:00:00+08:00")
        if stage in ("build", "build_full"):
            from ingestion import ensure_raw_schema

            ensure_raw_schema(warehouse)
            if stage == "build_full":
                # staging deduplicated from the whole history again, as on Spark: forget the
                # staging code record, so the build is a --full-refresh of staging
                from supernova.warehouse import connect

                with connect(warehouse) as con:
                    con.execute("drop table if exists staging.staging_code")
            res = s.build_step(ctx, plan, log=lambda *_: None)
            out.update(ok=True, build_seconds=res.get("seconds"))
        elif stage == "gate":
            try:
                s.gate_step(ctx, plan, log=lambda *_: None)
                out.update(ok=True)
            except s.GateFailed as exc:
                out.update(ok=False, error=str(exc)[:2000])
        else:
            res = s.publish_step(ctx, plan, log=lambda *_: None)
            out.update(ok=bool(res.get("published")), rows=res.get("rows"))
    elif stage in ("marts", "marts_incremental"):
        # marts_incremental: what the daily analytics_marts run does after stage_day (whose
        # forgotten file records include the marts': they refresh from that day)
        from supernova import marts

        b = marts.build_step(warehouse, full_refresh=stage == "marts", log=lambda *_: None)
        p = marts.parquet_step(warehouse, log=lambda *_: None)
        out.update(ok=True, dbt_seconds=b.get("dbt_seconds"), rows=p.get("rows"))
    elif stage in ("stage", "stage_day"):
        from supernova import staging

        if stage == "stage_day":
            # as if delivery day `day` had just been loaded: its files are not staged yet
            # (the keys it touches are recomputed from all their versions and replaced)
            from supernova.warehouse import connect

            with connect(warehouse) as con:
                n = con.execute(
                    "delete from staging.staged_files where sha256 in (select sha256 from raw.manifest "
                    "where delivery_date = cast(? as date) and status = 'loaded')",
                    [day],
                ).fetchone()[0]
            out.update(day=day, file_records_forgotten=int(n))
        res = staging.stage(warehouse, log=lambda *_: None)
        out.update(ok=True, dbt_seconds=res["seconds"], full_refresh=res["full_refresh"])
    elif stage == "floor":
        from bench.floor import run_floor

        out.update(run_floor(warehouse, month))
        out.setdefault("ok", True)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    out["inner_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stage")
    p.add_argument("stage")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--month", required=True)
    p.add_argument("--day", default="2026-10-15", help="stage_day: the delivery day merged")
    a = p.parse_args(argv)
    try:
        out = run_stage(a.stage, a.landing.resolve(), a.warehouse.resolve(), a.month, a.day)
    except Exception as exc:  # reported, not hidden: the harness marks the stage failed
        out = {"stage": a.stage, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000]}
    print("BENCH_RESULT " + json.dumps(out, default=str), flush=True)
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
