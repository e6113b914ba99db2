-- Every delivered version of every click (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): the marts' incremental refresh reads it for the first click date a re-
-- delivered click changes (marts_refresh_from).
{{ config(materialized='view') }}
select
    click_id,
    link_id,
    buyer_id,
    clicked_at,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'clicks') }}
