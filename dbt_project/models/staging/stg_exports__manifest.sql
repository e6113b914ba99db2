-- One row per landing file seen by an ingest run (ingestion manifest, docs/ingestion.md):
-- what was read, loaded, quarantined or rejected, and why. A view: it is small, and the
-- settlement's findings and checks must see every file the ingest recorded, not the
-- files staged when staging was last built.
{{ config(materialized='view') }}
select
    file_path,
    export,
    delivery_date,
    file_name,
    sha256,
    size_bytes,
    encoding,
    rows_read,
    rows_loaded,
    rows_quarantined,
    status,
    reason,
    extra_columns,
    ingest_run_id,
    loaded_at
from {{ source('exports', 'manifest') }}
