-- One row per click_id: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
select
    click_id,
    link_id,
    buyer_id,
    clicked_at,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'clicks') }}
qualify row_number() over (partition by click_id order by {{ delivered_last() }}) = 1
