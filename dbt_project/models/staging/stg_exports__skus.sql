-- One row per sku_id: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
select
    sku_id,
    merchant_id,
    category,
    is_self_operated,
    positive_review_rate,
    title,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'skus') }}
qualify row_number() over (partition by sku_id order by {{ delivered_last() }}) = 1
