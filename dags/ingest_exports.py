"""ingest_exports: load new export files from the landing directory into the raw layer.

Once a day (06:00 Asia/Shanghai) and on demand, task `ingest_new_files` runs `ingestion.ingest`:
every file under `<landing>/<export>/<YYYY-MM-DD>/` that the manifest has not seen is
validated and loaded into `<warehouse>/raw/...parquet` and the `raw` schema of
`<warehouse>/supernova.duckdb` (bad rows to `raw.quarantine`). Ingest is idempotent, so
catch-up runs after the first are cheap no-ops.

The task fails (no retries) when any file was rejected, with the summary naming the
file and the reason; the files that were fine are loaded regardless. On success it
updates the Asset `supernova://warehouse/raw`, which downstream DAGs can be scheduled
on. Then task `stage_new_files` merges the newly loaded files into the staging layer (one
incremental `dbt build` of the staging models and their tests, supernova.staging), so a
month's settlement does not deduplicate the whole history again. Both tasks hold the
DuckDB file: they share the 1-slot `supernova_warehouse` pool with the other DAGs.

Trigger by hand with params `landing` and `warehouse` (defaults: supernova.settings).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from supernova import settings

RAW_ASSET = Asset("supernova://warehouse/raw")


@dag(
    dag_id="ingest_exports",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 9, 1, tz="Asia/Shanghai"),
    catchup=True,
    max_active_runs=1,
    tags=["supernova", "ingestion"],
    params={
        "landing": Param(str(settings.default_landing()), type="string", minLength=1,
                         description="landing directory: <export>/<YYYY-MM-DD>/<files>"),
        "warehouse": Param(str(settings.default_warehouse()), type="string", minLength=1,
                           description="warehouse directory (supernova.duckdb + raw/)"),
    },
    doc_md=__doc__,
)
def ingest_exports():
    # the warehouse DuckDB file admits one process: share the 1-slot pool with the other
    # DAGs that open it (docker-compose creates it; dag.test() runs without it)
    @task(outlets=[RAW_ASSET], retries=0, pool="supernova_warehouse")
    def ingest_new_files(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ingestion import ingest

        result = ingest(params["landing"], params["warehouse"], progress=print)
        print(result.summary())
        if not result.ok:
            raise AirflowFailException(result.summary())
        return result.as_dict()

    @task(retries=0, pool="supernova_warehouse")
    def stage_new_files(loaded: dict, params=None) -> dict:
        """Merge the newly loaded files into the incremental staging layer (dbt), so the
        monthly settlement starts from current staging instead of the whole history."""
        from supernova import staging

        return staging.stage(params["warehouse"], log=print)

    stage_new_files(ingest_new_files())


ingest_exports()
