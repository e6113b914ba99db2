-- Every order line that is settled as of month M (§2, §4), and its base as of M's cutoff.
-- Settled: a `completed` event before the end of M (the earliest decides its month) and
-- on or after the first month settled in this warehouse; or settled by an earlier month
-- already (it has frozen terms), whatever its events say now. Cancels and refunds count
-- when they happen before M's cutoff; base = paid_amount - refunds so far, never below 0.
-- The base is 0 once cancelled, and 0 for an already settled line whose completion a later
-- version of its event withdrew or moved past M's cutoff (§2: a clawback, like a cancel;
-- when it completes again, the base comes back and the rise posts as an adjustment on the
-- frozen terms). A line never settled whose completion moved later is simply not settled
-- until the month of its new earliest completion. An already settled line whose order row
-- is gone (a file changed in place superseded the load that delivered it) has base 0 as
-- well: a clawback; its events become orphan events (a finding).
with per_line as (
    -- per line with an event before the cutoff: completed_at, has_cancel, has_full_refund,
    -- refunded_amount (int_settlement__line_events_at_cutoff, from the daily summary)
    select order_id, line_no, completed_at, has_cancel, has_full_refund, refunded_amount
    from {{ settlement_line_events() }} as line_events
),

settled_before as (
    select order_id, line_no
    from {{ ref('int_settlement__published_line_terms') }}
),

settled as (
    -- a full join: an already settled line may have no event before the cutoff any more
    select
        coalesce(e.order_id, b.order_id) as order_id,
        coalesce(e.line_no, b.line_no) as line_no,
        e.completed_at,
        coalesce(e.has_cancel, 0) as has_cancel,
        coalesce(e.has_full_refund, 0) as has_full_refund,
        coalesce(e.refunded_amount, 0) as refunded_amount,
        b.order_id is not null as settled_before,
        b.order_id is not null and e.completed_at is null as completion_withdrawn
    from per_line as e
    full outer join settled_before as b
        on b.order_id = e.order_id and b.line_no = e.line_no
    where b.order_id is not null
        or (e.completed_at >= {{ first_month_start_ts() }}
            and e.completed_at < {{ next_month_start_ts() }})
)

select
    e.order_id,
    e.line_no,
    o.buyer_id,
    o.sku_id,
    o.ordered_at,
    o.paid_amount,
    e.completed_at,
    cast({{ dbt.date_trunc('month', 'e.completed_at') }} as date) as completed_month,
    e.has_cancel = 1 as is_cancelled,
    e.completion_withdrawn,
    o.order_id is not null as order_line_delivered,
    case when e.has_full_refund = 1 then o.paid_amount
         else least(e.refunded_amount, o.paid_amount) end as refunded_amount,
    cast(
        case
            when e.completion_withdrawn or o.order_id is null or e.has_cancel = 1 or e.has_full_refund = 1 then 0
            when o.paid_amount - e.refunded_amount < 0 then 0
            else o.paid_amount - e.refunded_amount
        end as {{ money_type() }}
    ) as base_amount
from settled as e
left join {{ ref('stg_exports__orders') }} as o
    on o.order_id = e.order_id and o.line_no = e.line_no
where o.order_id is not null or e.settled_before
