"""Monthly settlement (月结): the job finance triggers.

Runs once a month at 02:00 on the cutoff day (`vars.supernova.cutoff_day`, day 8 today;
Asia/Shanghai), right after the previous month's cutoff, and on demand from the Airflow
UI/API or `supernova settle`. Few coarse tasks, one after the other, because only one
process may open the warehouse DuckDB file:

    begin ─ ingest ─ plan ─ build (one dbt build) ─ validate (GX gate) ─ publish ─ finish

`begin` takes the warehouse lease for the whole run (supernova/lock.py): every task
renews it, `finish` (a teardown) releases it, and other writers (ingest_exports,
analytics_marts, `supernova ingest`) wait for it or are refused, so nothing changes what
the run settles between `plan` and `publish`. `validate` fails closed: when any check
fails, `publish` never runs and the DAG run fails; `finish` records the attempt, writes
the report and releases the lease either way. Every task failure is announced
(supernova/dag_support.py: log, a note under <warehouse>/alerts/, webhook/email).

Parameters (conf of `POST /api/v2/dags/monthly_settlement/dagRuns`):
- `month`: "YYYY-MM"; empty = the month before the run date (scheduled runs);
- `preview`: compute and report only, publish nothing;
- `reopen_reason`: non-empty = republish the latest closed month, for this reason;
- `accept_suspense_reason`: non-empty = accept suspense above the limit, for this reason;
- `landing`, `warehouse`: directories; `attempt_id`: set by `supernova settle`.
A reopen or an acceptance cannot be asked for without its reason: the reason is the
request. The JSON schema of each param refuses wrong types at trigger time (HTTP 400).
Unknown keys (a misspelt `Month`), `preview` together with `reopen_reason`, and the
wording of errors need the whole conf: the API server's trigger guard
(supernova/trigger_guard.py, an Airflow plugin) refuses them at trigger time with words;
where it is not installed, `begin` refuses them within seconds with the same words
(run_request.request_problems), before anything is read or written.

A scheduled run never starts the programme: into a warehouse with nothing published it
settles only the programme's first month (`vars.supernova.first_month`). No catch-up:
a missed month is settled by hand, in order.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from supernova import dag_support, lock
from supernova import settle as s
from supernova.cli import ENGINE_ENV, ENGINES, check_spark_installed
from supernova.cli_support import UsageError
from supernova.run_request import RunRefused, request_problems
from supernova.run_state import record_error


def _engine() -> str:
    """The engine of this run: $SUPERNOVA_ENGINE of the Airflow worker (default duckdb),
    read when a task runs, not when the DAG file is parsed."""
    engine = os.environ.get(ENGINE_ENV) or "duckdb"
    if engine not in ENGINES:
        raise AirflowFailException(
            f"{ENGINE_ENV} must be one of {', '.join(ENGINES)}, not {engine!r}"
        )
    return engine


def _steps(ctx: dict):
    """The run's steps: supernova/settle.py (DuckDB) or supernova/spark_settle.py (the
    same steps on Spark), as `begin` recorded in the context."""
    if ctx.get("engine") == "spark":
        from supernova import spark_settle

        return spark_settle
    return s


def _fail_closed(step, ctx: dict, *args):
    """Run a step; any failure is recorded for the report and fails the task without
    retries, so nothing downstream (publish) runs."""
    try:
        # renew the run's lease now, and keep renewing it while the step runs
        with lock.keep_alive(ctx["warehouse"], ctx["attempt_id"]):
            return step(ctx, *args)
    except Exception as exc:
        record_error(ctx, exc)
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="monthly_settlement",
    description="Monthly settlement: attribution, commissions, ledger, payouts; gated and published atomically.",
    schedule=dag_support.settlement_schedule(),
    start_date=pendulum.datetime(2026, 1, 8, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["supernova", "finance"],
    # Every task opens the warehouse DuckDB file, which only one process may hold: under a
    # real scheduler all DAGs that touch it share this 1-slot pool (docker-compose creates it).
    default_args=dag_support.default_args(),
    params={
        "month": Param(
            "",
            type="string",
            pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$",
            title="month (YYYY-MM)",
            description="Settlement month, a calendar month written YYYY-MM, e.g. 2026-10. "
            "Empty: the month before the run date.",
        ),
        "preview": Param(
            False,
            type="boolean",
            description="Compute and report only; publish nothing (allowed before the cutoff).",
        ),
        "reopen_reason": Param(
            "",
            type="string",
            title="reopen: reason",
            description="Non-empty: republish the latest closed month, for this "
            "reason (recorded). Not with preview.",
        ),
        "accept_suspense_reason": Param(
            "",
            type="string",
            title="accept suspense: reason",
            description="Non-empty: accept suspense above the limit for "
            "this run, for this reason (recorded).",
        ),
        **dag_support.path_params(),
        "attempt_id": Param(
            "",
            type="string",
            pattern=r"^[0-9A-Za-z_.-]*$",
            description="Set by `supernova settle`; leave empty.",
        ),
    },
    doc_md=__doc__,
)
def monthly_settlement():
    @task
    def begin(**context) -> dict:
        params = dict(context["params"])
        problems = request_problems(params, month_required=False)
        if problems:
            raise AirflowFailException("the run's parameters are refused: " + "; ".join(problems))
        if not params.get("month"):
            run_after = pendulum.instance(context["dag_run"].run_after).in_timezone("Asia/Shanghai")
            params["month"] = run_after.subtract(months=1).format("YYYY-MM")
        params["triggered_by"] = dag_support.triggering_user(context)
        params["scheduled"] = dag_support.is_scheduled(context)
        dag_run = context["dag_run"]
        engine = _engine()
        try:
            if engine == "spark":
                check_spark_installed()  # before the lease: says how to install it
                from supernova import spark_settle as begin_on
            else:
                begin_on = s
            ctx = begin_on.begin(
                params,
                process_bound=dag_support.in_process_run(),
                dag_id=dag_run.dag_id,
                dag_run_id=dag_run.run_id,
            )
            # the DuckDB context stays as it was; a Spark run's tasks follow "engine"
            return {**ctx, "engine": engine} if engine == "spark" else ctx
        except (RunRefused, lock.WarehouseBusy, UsageError) as exc:
            raise AirflowFailException(str(exc)) from exc

    @task
    def ingest(ctx: dict) -> dict:
        return _fail_closed(s.ingest_step, ctx)

    @task
    def plan(ctx: dict, ingested: dict) -> dict:
        return _fail_closed(_steps(ctx).plan_step, ctx)

    @task
    def build(ctx: dict, planned: dict) -> dict:
        return _fail_closed(_steps(ctx).build_step, ctx, planned)

    @task
    def validate(ctx: dict, planned: dict, built: dict) -> dict:
        return _fail_closed(_steps(ctx).gate_step, ctx, planned)

    @task
    def publish(ctx: dict, planned: dict, validated: dict) -> dict:
        return _fail_closed(_steps(ctx).publish_step, ctx, planned)

    @task
    def finish(ctx: dict) -> dict:
        return _steps(ctx).finish_step(ctx)

    ctx = begin()
    planned = plan(ctx, ingest(ctx))
    published = publish(ctx, planned, validate(ctx, planned, build(ctx, planned)))
    # finish is ctx's teardown: it runs whatever happened after begin, and does not
    # decide the run's state (a failed gate still fails the DAG run).
    published >> finish(ctx).as_teardown(setups=ctx)


monthly_settlement()
