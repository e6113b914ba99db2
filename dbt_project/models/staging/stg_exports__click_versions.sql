-- Every delivered version of every click (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): the marts' incremental refresh reads it for the first click date a re-
-- delivered click changes (marts_refresh_from).
{{ config(materialized='view') }}
-- every column as delivered, lineage included (the readers name the ones they use)
select *
from {{ source('exports', 'clicks') }}
