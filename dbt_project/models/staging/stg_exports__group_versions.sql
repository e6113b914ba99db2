-- Every delivered version of every group snapshot (a view over the raw export, one row
-- per delivered row, no version rule: a view costs nothing to keep current and the
-- readers filter it): group_status reads each snapshot's member_count
-- (stg_exports__groups keeps only the latest snapshot), and the marts' incremental
-- refresh the dates a re-delivered snapshot or dissolution changes (marts_refresh_from).
{{ config(materialized='view') }}
-- every column as delivered, lineage included (the readers name the ones they use)
select *
from {{ source('exports', 'groups') }}
