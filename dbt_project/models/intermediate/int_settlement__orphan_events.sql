-- Orphan events (§2): events before M's cutoff of an order line that was never delivered
-- in `orders`. Nothing can settle them (there is no paid amount, buyer or order time); they
-- are a data-quality finding (`findings`, one row per line) and counted in the run's
-- reconciliation. Recomputed by every run like suspense: a line whose order row arrives
-- later stops being an orphan and settles in the month whose run first sees it completed.
select
    e.order_id,
    e.line_no,
    e.event_id,
    e.event,
    e.event_at,
    e.amount
from {{ ref('stg_exports__order_events') }} as e
left join {{ ref('stg_exports__orders') }} as o
    on o.order_id = e.order_id and o.line_no = e.line_no
where o.order_id is null
    and e.event_at < {{ cutoff_ts() }}
