-- Every delivered version of every SKU (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): sku_ranking reads a SKU's attributes as delivered by each day
-- (stg_exports__skus keeps only the latest), and the marts' incremental refresh the
-- delivery dates (marts_refresh_from).
{{ config(materialized='view') }}
-- every column as delivered, lineage included (the readers name the ones they use)
select *
from {{ source('exports', 'skus') }}
