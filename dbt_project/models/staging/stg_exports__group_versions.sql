-- Every delivered version of every group snapshot (a view over the raw export, one row
-- per delivered row, no version rule: a view costs nothing to keep current and the
-- readers filter it): group_status reads each snapshot's member_count
-- (stg_exports__groups keeps only the latest snapshot), and the marts' incremental
-- refresh the dates a re-delivered snapshot or dissolution changes (marts_refresh_from).
{{ config(materialized='view') }}
select
    group_id,
    owner_id,
    created_at,
    member_count,
    dissolved_at,
    snapshot_date,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'groups') }}
