"""ingest_exports: load new export files from the landing directory into the raw layer.

Once a day (06:00 Asia/Shanghai) and on demand:

    wait_for_warehouse ─ ingest_new_files ─ stage_new_files ─ announce_new_data

- `wait_for_warehouse` waits while a settlement run (or another writer) holds the
  warehouse lease (supernova/lock.py), in reschedule mode: it holds no worker slot and
  no pool slot while it waits, and its log says which run it waits for and since when.
- `ingest_new_files` runs `ingestion.ingest`: every file under
  `<landing>/<export>/<YYYY-MM-DD>/` that the manifest has not seen is validated and
  loaded into `<warehouse>/raw/...parquet` and the `raw` schema of
  `<warehouse>/supernova.duckdb` (bad rows to `raw.quarantine`). It fails (no retries)
  when any file was rejected, with the summary naming the file and the reason; the files
  that were fine are loaded regardless.
- `stage_new_files` merges the newly loaded files into the staging layer (one
  incremental `dbt build` of the staging models and their tests, supernova.staging), so
  a month's settlement does not deduplicate the whole history again.
- `announce_new_data` updates the Asset `supernova://warehouse/raw` (which schedules
  analytics_marts) only when this run loaded at least one file; otherwise it is skipped
  and emits nothing, so a no-op ingest triggers no marts refresh.

No catch-up (`catchup=False`): ingest is not partitioned by date, one run loads every
file not yet seen whatever day it was delivered, so catch-up runs would only queue
no-op runs (≈94 on a first unpause three months after the start date). Writers share
the 1-slot `supernova_warehouse` pool and take the lease for each step; a step that
meets a settlement's lease taken after the wait is retried (`lock.WarehouseBusy`).
Failures are announced (supernova/dag_support.py). Trigger by hand with params
`landing` and `warehouse` (defaults: supernova.settings).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from supernova import dag_support


@dag(
    dag_id="ingest_exports",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 9, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["supernova", "ingestion"],
    default_args=dag_support.default_args(retries=3),
    params={
        **dag_support.path_params(),
    },
    doc_md=__doc__,
)
def ingest_exports():
    @task
    def ingest_new_files(params=None) -> dict:
        from ingestion import ingest

        result = dag_support.retry_only_when_busy(
            ingest, params["landing"], params["warehouse"], progress=print
        )
        print(result.summary())
        if not result.ok:
            raise AirflowFailException(result.summary())
        return result.as_dict()

    @task
    def stage_new_files(params=None) -> dict:
        """Merge the newly loaded files into the incremental staging layer (dbt), so the
        monthly settlement starts from current staging instead of the whole history."""
        from supernova import staging

        return dag_support.retry_only_when_busy(staging.stage, params["warehouse"], log=print)

    @task(outlets=[dag_support.raw_asset()], pool="default_pool")
    def announce_new_data(loaded: dict) -> int:
        files = int((loaded.get("files") or {}).get("loaded", 0))
        if files == 0:
            raise AirflowSkipException("no new file was loaded: the raw Asset is not updated")
        print(f"{files} new file(s) loaded: updating {dag_support.RAW_ASSET_URI}")
        return files

    loaded = ingest_new_files()
    (
        dag_support.wait_for_warehouse_task()()
        >> loaded
        >> stage_new_files()
        >> announce_new_data(loaded)
    )


ingest_exports()
