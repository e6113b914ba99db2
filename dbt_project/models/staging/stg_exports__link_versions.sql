-- Every delivered version of every share link (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): the marts' incremental refresh reads it for the links re-delivered since
-- its watermark (marts_refresh_from).
{{ config(materialized='view') }}
select
    link_id,
    promoter_id,
    group_id,
    sku_id,
    created_at,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'links') }}
