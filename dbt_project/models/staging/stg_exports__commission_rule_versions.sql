-- Every delivered version of every commission rule (a view over the raw export, one row
-- per delivered row, no version rule: a view costs nothing to keep current and the
-- readers filter it): the marts' incremental refresh reads it for the first day a re-
-- delivered rule's versions differ (marts_refresh_from).
{{ config(materialized='view') }}
select
    rule_id,
    scope,
    sku_id,
    merchant_id,
    category,
    rate,
    valid_from,
    valid_to,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'commission_rules') }}
