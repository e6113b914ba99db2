"""analytics_marts: refresh the analytics marts (schema `marts`) and their Parquet copies.

Data-aware: runs whenever the Asset `supernova://warehouse/raw` is updated (ingest_exports
loaded at least one new file), and on demand from the UI/API or `supernova marts`. One
task after the other, because only one process may open the warehouse DuckDB file (each
writing task takes the warehouse lease for its step and the 1-slot pool
`supernova_warehouse`):

    wait_for_warehouse ─ ingest (new export files) ─ build (one `dbt build` of the marts)
    ─ parquet (atomic copies)

`wait_for_warehouse` waits while a settlement run holds the warehouse lease
(supernova/lock.py), in reschedule mode (no worker or pool slot while waiting), and logs
which run it waits for. `max_active_runs=1`: asset updates that arrive during a refresh
queue at most one more run. A step that meets a settlement's lease taken after the wait
is retried (`lock.WarehouseBusy`); any other failure fails the task without retries and
is announced (supernova/dag_support.py).

The daily refresh is incremental (only days new deliveries can change), and so are the
incremental marts' data tests (the rows written since they last all passed); the param
`full_refresh` rebuilds the marts from scratch, `verify_all` tests every row. Definitions: docs/marts.md; BI access:
docs/bi.md. All logic lives in supernova.marts.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from supernova import dag_support


def _run(fn, *args):
    """A marts failure fails the task for good; lock.WarehouseBusy is left to the retries."""
    from supernova import marts

    try:
        return dag_support.retry_only_when_busy(fn, *args)
    except marts.MartsFailed as exc:
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="analytics_marts",
    description="Analytics marts for BI: group activity and status, buyer demographics, promoter performance, SKU ranking.",
    schedule=[dag_support.raw_asset()],
    start_date=pendulum.datetime(2026, 9, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["supernova", "analytics"],
    default_args=dag_support.default_args(retries=3),
    params={
        **dag_support.path_params(),
        "full_refresh": Param(
            False, type="boolean", description="Rebuild the incremental marts from scratch."
        ),
        "verify_all": Param(
            False,
            type="boolean",
            description="Test every row of the incremental marts and of staging, not only "
            "the rows written since their tests last passed.",
        ),
    },
    doc_md=__doc__,
)
def analytics_marts():
    @task
    def ingest(params=None) -> dict:
        from supernova import marts

        landing, warehouse = marts.resolve(params)
        return _run(marts.ingest_step, landing, warehouse)

    @task
    def build(params=None) -> dict:
        from supernova import marts

        _, warehouse = marts.resolve(params)
        return _run(
            marts.build_step,
            warehouse,
            bool(params.get("full_refresh", False)),
            print,
            bool(params.get("verify_all", False)),
        )

    @task(outlets=[dag_support.marts_asset()])
    def parquet(params=None) -> dict:
        from supernova import marts

        _, warehouse = marts.resolve(params)
        out = _run(marts.parquet_step, warehouse)
        print(marts.summary(warehouse))
        return out

    dag_support.wait_for_warehouse_task()() >> ingest() >> build() >> parquet()


analytics_marts()
