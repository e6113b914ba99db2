"""The monthly settlement run on Spark (`supernova settle --engine spark`), step by step:
the same steps as supernova/settle.py, the same request, lease, state file, plan rules and
report; what differs is where the data lives (docs/spark.md, "What runs where").

begin (validate, take the lease) → ingest (the DuckDB-based ingestion: raw Parquet and the
manifest Parquet Spark reads) → plan (facts from the manifest Parquet, the commit markers
and the run record's Parquet, never the DuckDB file; plan.decide's rules) → build (dbt on
Spark) → gate (GX Spark datasource + invariants in Spark SQL) → publish (Parquet
partitions + markers, then the run record) → finish (record a failed/preview attempt,
write the report, release the lease).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from supernova import lock, settle, spark_runs
from supernova.faults import fault_point
from supernova.plan import Facts, decide, facts_of, loaded_file_ids
from supernova.publish import TOTAL_COLUMNS
from supernova.run_state import RunState, record_error, run_row
from supernova.settle import BuildFailed, ingest_step
from supernova.spark_support import manifest_parquet_path

ENGINE = "spark"


def begin(
    params: dict,
    log=print,
    *,
    process_bound: bool = True,
    dag_id: str | None = None,
    dag_run_id: str | None = None,
) -> dict:
    """Validate the request, take the warehouse lease and account for earlier attempts
    that never finished (settle.begin, with Spark's record of interrupted attempts).
    Returns the attempt context. `process_bound`: the whole run lives in this process
    (`supernova settle`); under a scheduler the lease is bound to the DAG run instead."""
    return settle.begin(
        params,
        log,
        process_bound=process_bound,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
        engine=ENGINE,
        recover=spark_runs.recover_interrupted,
    )


def manifest_path(ctx: dict) -> Path:
    return manifest_parquet_path(Path(ctx["warehouse"]) / "raw")


def loaded_files(manifest: Path) -> list[str]:
    """Every file the manifest Parquet lists as loaded, as the plan identifies it
    (plan.loaded_file_ids: path and sha256), sorted."""
    import pyarrow.parquet as pq

    if not manifest.is_file():
        return []
    rows = pq.read_table(manifest, columns=["file_path", "sha256", "status"]).to_pylist()
    return loaded_file_ids((r["file_path"], r["sha256"]) for r in rows if r["status"] == "loaded")


def gather_facts(ctx: dict, now: datetime | None = None) -> Facts:
    """The plan's facts from the Parquet a Spark run leaves: loaded files from the manifest,
    published months from the commit markers and the run record."""
    warehouse, month = Path(ctx["warehouse"]), ctx["month"]
    files = loaded_files(manifest_path(ctx))
    published = spark_runs.published_runs(warehouse, spark_runs.published_months(warehouse))
    reopens = spark_runs.reopen_count(warehouse, month) if month in published else 0
    return facts_of(ctx, files, published, reopens, now)


def plan_step(ctx: dict, log=print, now: datetime | None = None) -> dict:
    facts = gather_facts(ctx, now)
    decision = decide(ctx, facts)
    RunState(Path(ctx["warehouse"]), ctx["attempt_id"]).update(plan=decision)
    log(
        decision["message"]
        or f"plan: settle {ctx['month']} as run {decision['run_id']} (first month "
        f"{decision['first_month']}, {facts.input_files} input files)"
    )
    return decision


def run_session(ctx: dict, plan: dict):
    """This process's Spark session for the run: the one the build left (every step in
    one process), or a new one on the same catalog (<warehouse>/spark, the Derby
    metastore) when each step is its own process (an Airflow task)."""
    from supernova import spark_build

    vars_ = {
        "settlement_month": ctx["month"],
        "run_id": plan["run_id"],
        "first_month": plan["first_month"],
        "accept_suspense": bool(ctx["accept_suspense"]),
    }
    return spark_build.session(Path(ctx["warehouse"]), manifest_path(ctx), vars_)


def build_step(ctx: dict, plan: dict, log=print) -> dict:
    from supernova import spark_build

    if plan["action"] != "settle":
        return {"skipped": True}
    from supernova.spark_publish import register_published

    warehouse = Path(ctx["warehouse"])
    if spark_runs.published_months(warehouse):
        # what the build reads as already posted / frozen terms: the committed months,
        # registered from the markers now (a new process, a reopen, a recovered run)
        spark = run_session(ctx, plan)
        log(f"published months registered for the build: {register_published(spark, warehouse)}")
    res = spark_build.build(
        warehouse,
        ctx["month"],
        manifest_path(ctx),
        first_month=plan["first_month"],
        run_id=plan["run_id"],
        accept_suspense=ctx["accept_suspense"],
    )
    state = RunState(warehouse, ctx["attempt_id"])
    if not res["ok"]:
        problems = [{"node": f.split(":")[0], "message": f} for f in res["failures"]]
        state.update(build={"ok": False, "seconds": res["dbt_seconds"], "failures": problems})
        raise BuildFailed(
            f"dbt build on Spark failed for {ctx['month']}; nothing was published:\n"
            + "\n".join(f"  - {f[:500]}" for f in res["failures"])
        )
    fault_point("after_build")
    state.update(build={"ok": True, "seconds": res["dbt_seconds"], "nodes": res["nodes"]})
    log(f"dbt build on Spark: {res['nodes']} models and tests passed in {res['dbt_seconds']} s")
    return {"ok": True, "seconds": res["dbt_seconds"]}


def gate_step(ctx: dict, plan: dict, log=print) -> dict:
    from supernova import spark_gate

    if plan["action"] != "settle":
        return {"skipped": True}
    t0 = time.time()
    gate = spark_gate.run_gate(run_session(ctx, plan), ctx["month"])
    return settle.gate_verdict(ctx, gate, time.time() - t0, log)


def build_totals(spark) -> dict:
    """The run totals of the candidate tables (settlement_build.settlement_run_totals)."""
    row = spark.sql(
        f"select {', '.join(TOTAL_COLUMNS)} from settlement_build.settlement_run_totals"
    ).collect()[0]
    return {c: row[c] for c in TOTAL_COLUMNS}


def publish_step(ctx: dict, plan: dict, log=print) -> dict:
    """Publish the partitions (spark_publish's commit protocol), then the run's row."""
    from supernova import serving, spark_publish

    warehouse = Path(ctx["warehouse"])
    state = RunState(warehouse, ctx["attempt_id"])
    if plan["action"] != "settle" or ctx["preview"]:
        log("preview: nothing published" if ctx["preview"] else plan["message"])
        return {"published": False}
    spark = run_session(ctx, plan)
    data = state.load()
    reason = f"reopened: {ctx['reason']}" if ctx["reopen"] else ""
    row = {**run_row(ctx, plan, data, "published", reason), "run_id": plan["run_id"]}
    row.update(build_totals(spark))
    counts = spark_publish.publish_month(
        spark, warehouse, ctx["month"], plan["run_id"], data.get("gate"), reopen=ctx["reopen"]
    )
    fault_point("publish_after_commit")
    spark_runs.record_published(warehouse, row)
    serving.write_catalog(warehouse)
    state.update(publish={"published": True, "run_id": plan["run_id"], "rows": counts})
    log(
        f"published {ctx['month']} as run {plan['run_id']}: "
        + ", ".join(f"{t} {n}" for t, n in counts.items())
    )
    return {"published": True, "rows": counts}


def finish_step(ctx: dict | None, log=print) -> dict:
    """Always last: record a failed/preview attempt (as a run-record Parquet row), write
    the report, release the lease (settle.finish_step with Spark's record and markers).
    A publish that committed its markers but stopped before its run row (an exception,
    not a kill: a kill is found by the next begin) gets its row here."""
    if ctx:
        try:
            _record_unrecorded_publish(ctx, log)
        except Exception as exc:  # recording must not hide the original failure
            log(f"could not record the published run in settlement_runs: {exc}")
    return settle.finish_step(
        ctx, log, record_failed=_record_failed, is_month_published=_month_published
    )


def _record_unrecorded_publish(ctx: dict, log) -> None:
    from supernova import serving

    warehouse = Path(ctx["warehouse"])
    data = RunState(warehouse, ctx["attempt_id"]).load()
    plan = data.get("plan") or {}
    run_id = plan.get("run_id")
    if ctx["preview"] or not _month_published(ctx, run_id):
        return
    if any(
        r["run_id"] == run_id and r["status"] == "published"
        for r in spark_runs.read_runs(warehouse)
    ):
        return
    reason = f"reopened: {ctx['reason']}" if ctx["reopen"] else ""
    row = {**run_row(ctx, plan, data, "published", reason), "run_id": run_id}
    spark_runs.record_published(warehouse, row)  # without totals: the build's are not at hand
    serving.write_catalog(warehouse)
    log(f"recorded published run {run_id} (its publish stopped before its row)")


def _record_failed(warehouse: Path, row: dict, state: dict) -> None:
    from supernova import serving

    if (state.get("build") or {}).get("ok"):
        # the totals are optional: when Spark itself is why the run failed, the row must
        # still be written
        try:
            ctx = {**state["request"], "warehouse": str(warehouse)}
            row.update(build_totals(run_session(ctx, state["plan"])))
        except Exception:  # noqa: BLE001 - the row without totals, rather than no row
            pass
    spark_runs.write_run_row(warehouse, row)
    serving.write_catalog(warehouse)


def _month_published(ctx: dict, run_id: str | None) -> bool:
    """Published when every table's commit marker names this run (spark_publish)."""
    from supernova.spark_publish import published_run

    return bool(run_id) and published_run(Path(ctx["warehouse"]), ctx["month"]) == run_id


def run(params: dict, log=print) -> dict:
    """One attempt, every step in this process (what `supernova settle --engine spark`
    runs); returns finish's result (status, report, attempt_id) plus the error, if any."""
    ctx = begin(params, log)
    error = None
    try:
        with lock.keep_alive(Path(ctx["warehouse"]), ctx["attempt_id"], log=log):
            ingest_step(ctx, log)
            plan = plan_step(ctx, log)
            build_step(ctx, plan, log)
            gate_step(ctx, plan, log)
            publish_step(ctx, plan, log)
    except Exception as exc:  # every failure is recorded and reported by finish
        record_error(ctx, exc)
        error = str(exc)
        log(f"ERROR: {exc}")
    finally:
        result = finish_step(ctx, log)
    return {**result, "error": error}
