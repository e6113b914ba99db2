-- Every delivered version of every order line (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): the marts read it for their calendar (marts_bounds) and for the first
-- order date a re-delivered order changes (marts_refresh_from, an order's ordered_at may
-- move between versions).
{{ config(materialized='view') }}
-- every column as delivered, lineage included (the readers name the ones they use)
select *
from {{ source('exports', 'orders') }}
