"""Monthly settlement (月结): the job finance triggers.

Runs once a month at 02:00 on day 8 (Asia/Shanghai), right after the previous month's
cutoff, and on demand from the Airflow UI/API or `supernova settle`. Few coarse tasks,
one after the other, because only one process may open the warehouse DuckDB file:

    begin ─ ingest ─ plan ─ build (one dbt build) ─ validate (GX gate) ─ publish ─ finish

`validate` fails closed: when any check fails, `publish` never runs and the DAG run
fails; `finish` (a teardown) records the attempt, writes the report and releases the
warehouse lock either way. All logic lives in supernova.settle.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from supernova import settings
from supernova import settle as s


def _fail_closed(step, ctx: dict, *args):
    """Run a step; any failure is recorded for the report and fails the task without
    retries, so nothing downstream (publish) runs."""
    try:
        return step(ctx, *args)
    except Exception as exc:
        s.record_error(ctx, exc)
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="monthly_settlement",
    description="Monthly settlement: attribution, commissions, ledger, payouts; gated and published atomically.",
    schedule="0 2 8 * *",
    start_date=pendulum.datetime(2026, 1, 8, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["supernova", "finance"],
    # Every task opens the warehouse DuckDB file, which only one process may hold: under a
    # real scheduler all DAGs that touch it share this 1-slot pool (docker-compose creates it).
    default_args={"retries": 0, "pool": "supernova_warehouse"},
    params={
        "month": Param("", type="string", pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$",
                       description="Settlement month YYYY-MM. Empty: the month before the run date."),
        "preview": Param(False, type="boolean",
                         description="Compute and report only; publish nothing (allowed before the cutoff)."),
        "reopen": Param(False, type="boolean",
                        description="Republish the latest closed month (needs a reason; recorded)."),
        "reason": Param("", type="string", description="Why the month is reopened."),
        "accept_suspense": Param(False, type="boolean",
                                 description="Accept suspense above 0.5 % for this run (needs a reason)."),
        "accept_suspense_reason": Param("", type="string"),
        "landing": Param(str(settings.default_landing()), type="string", description="Landing directory."),
        "warehouse": Param(str(settings.default_warehouse()), type="string", description="Warehouse directory."),
        "attempt_id": Param("", type="string", description="Set by `supernova settle`; leave empty."),
    },
    doc_md=__doc__,
)
def monthly_settlement():
    @task
    def begin(**context) -> dict:
        params = dict(context["params"])
        if not params.get("month"):
            run_after = pendulum.instance(context["dag_run"].run_after).in_timezone("Asia/Shanghai")
            params["month"] = run_after.subtract(months=1).format("YYYY-MM")
        try:
            return s.begin(params)
        except (s.RunRefused, s.lock.WarehouseBusy) as exc:
            raise AirflowFailException(str(exc)) from exc

    @task
    def ingest(ctx: dict) -> dict:
        return _fail_closed(s.ingest_step, ctx)

    @task
    def plan(ctx: dict, ingested: dict) -> dict:
        return _fail_closed(s.plan_step, ctx)

    @task
    def build(ctx: dict, planned: dict) -> dict:
        return _fail_closed(s.build_step, ctx, planned)

    @task
    def validate(ctx: dict, planned: dict, built: dict) -> dict:
        return _fail_closed(s.gate_step, ctx, planned)

    @task
    def publish(ctx: dict, planned: dict, validated: dict) -> dict:
        return _fail_closed(s.publish_step, ctx, planned)

    @task
    def finish(ctx: dict) -> dict:
        return s.finish_step(ctx)

    ctx = begin()
    planned = plan(ctx, ingest(ctx))
    published = publish(ctx, planned, validate(ctx, planned, build(ctx, planned)))
    # finish is ctx's teardown: it runs whatever happened after begin, and does not
    # decide the run's state (a failed gate still fails the DAG run).
    published >> finish(ctx).as_teardown(setups=ctx)


monthly_settlement()
