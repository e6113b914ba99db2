"""analytics_marts: refresh the analytics marts (schema `marts`) and their Parquet copies.

Data-aware: runs whenever the Asset `supernova://warehouse/raw` is updated (ingest_exports
loaded new files), and on demand from the UI/API or `supernova marts`. Three tasks, one
after the other, because only one process may open the warehouse DuckDB file (each also
takes the warehouse run lock and the 1-slot pool `supernova_warehouse`):

    ingest (new export files) ─ build (one `dbt build` of the marts) ─ parquet (atomic copies)

The daily refresh is incremental (only days new deliveries can change); the param
`full_refresh` rebuilds the marts from scratch. Definitions: docs/marts.md; BI access:
docs/bi.md. All logic lives in supernova.marts.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from supernova import settings

RAW_ASSET = Asset("supernova://warehouse/raw")
MARTS_ASSET = Asset("supernova://warehouse/marts")
POOL = "supernova_warehouse"


def _run(fn, *args):
    from supernova import marts

    try:
        return fn(*args)
    except (marts.MartsFailed, marts.lock.WarehouseBusy) as exc:
        raise AirflowFailException(str(exc)) from exc


def _pool() -> dict:
    """The 1-slot warehouse pool shared by every DAG that opens the DuckDB file
    (docker-compose creates it; `dag.test()` runs tasks without consulting pools)."""
    return {"pool": POOL}


@dag(
    dag_id="analytics_marts",
    description="Analytics marts for BI: group activity and status, buyer demographics, promoter performance, SKU ranking.",
    schedule=[RAW_ASSET],
    start_date=pendulum.datetime(2026, 9, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["supernova", "analytics"],
    default_args={"retries": 0},
    params={
        "landing": Param(str(settings.default_landing()), type="string", minLength=1,
                         description="landing directory: <export>/<YYYY-MM-DD>/<files>"),
        "warehouse": Param(str(settings.default_warehouse()), type="string", minLength=1,
                           description="warehouse directory (supernova.duckdb + parquet/)"),
        "full_refresh": Param(False, type="boolean",
                              description="Rebuild the incremental marts from scratch."),
    },
    doc_md=__doc__,
)
def analytics_marts():
    @task(**_pool())
    def ingest(params=None) -> dict:
        from supernova import marts

        landing, warehouse = marts._resolve(params)
        return _run(marts.ingest_step, landing, warehouse)

    @task(**_pool())
    def build(ingested: dict, params=None) -> dict:
        from supernova import marts

        _, warehouse = marts._resolve(params)
        return _run(marts.build_step, warehouse, bool(params.get("full_refresh", False)))

    @task(outlets=[MARTS_ASSET], **_pool())
    def parquet(built: dict, params=None) -> dict:
        from supernova import marts

        _, warehouse = marts._resolve(params)
        out = _run(marts.parquet_step, warehouse)
        print(marts.summary(warehouse))
        return out

    parquet(build(ingest()))


analytics_marts()
