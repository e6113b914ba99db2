-- Orphan events (§2): events before M's cutoff of an order line that was never delivered
-- in `orders`. Nothing can settle them (there is no paid amount, buyer or order time); they
-- are a data-quality finding (`findings`, one row per line) and counted in the run's
-- reconciliation. Recomputed by every run like suspense: a line whose order row arrives
-- later stops being an orphan and settles in the month whose run first sees it completed.
-- The orphan lines come from the lines with an event before the cutoff
-- (int_settlement__line_events_at_cutoff, from the daily summary): only their events are
-- read, not every staged event.
with orphan_lines as (
    select l.order_id, l.line_no
    from {{ settlement_line_events() }} as l
    where not exists (
        select 1 from {{ ref('stg_exports__orders') }} as o
        where o.order_id = l.order_id and o.line_no = l.line_no
    )
)

select
    e.order_id,
    e.line_no,
    e.event_id,
    e.event,
    e.event_at,
    e.amount
from {{ ref('stg_exports__order_events') }} as e
-- semi-joins, not an inner join: joined, the events were matched with every line before
-- the orders anti-join left (almost) none (0.41 s against 2.6 s for 4.7M events)
where e.order_id in (select order_id from orphan_lines)
    and e.event_at < {{ cutoff_ts() }}
    and exists (
        select 1 from orphan_lines as l
        where l.order_id = e.order_id and l.line_no = e.line_no
    )
