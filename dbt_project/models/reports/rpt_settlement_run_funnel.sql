{#- The order-line funnel of one settlement run (outputs.md settlement_runs, §1): one row,
    read by settlement_run_totals (and so recorded in settlement_runs and shown by the run
    report). A table, built once per run: settlement_run_totals is a view read several
    times (gate, publish, report), and this is the one part of it that scans every
    delivered line. Every delivered order line lands in exactly one bucket, the first
    that applies, in this order:
      settled this run (funnel_settled) / settled by an earlier run (lines_settled_earlier)
      in suspense (funnel_suspense)
      organic: its order has no click in the window (§1, "unattributed")
      cancelled or refunded in full before the cutoff, never settled
      completed before the first settled month (outside this warehouse's ledger)
      pending completion: everything else (no completion before M's end yet)
    Orphan events (events before the cutoff of lines never delivered, §2) are counted
    beside the funnel. Attribution and the lines' events are read from the daily
    precompute (int_daily__order_attribution; int_daily__line_events through
    int_settlement__line_events_at_cutoff), never recomputed over every click or event
    here. -#}
{{ config(materialized='table', schema='settlement_build') }}

with delivered as (
    select order_id, line_no, paid_amount
    from {{ ref('stg_exports__orders') }}
),

-- the lines' events before the cutoff (from the daily summary; §2: a refund without
-- amount refunds the whole line, like a cancel here)
line_events as (
    select
        order_id,
        line_no,
        completed_at,
        case when has_cancel = 1 or has_full_refund = 1 then 1 else 0 end as has_cancel,
        refunded_amount
    from {{ ref('int_settlement__line_events_at_cutoff') }}
),

settled_or_suspended as (
    select order_id, line_no, first_settlement_month as settled_in, false as in_suspense
    from {{ ref('int_settlement__line_terms') }}
    union all
    select order_id, line_no, cast(null as {{ dbt.type_string() }}) as settled_in, true as in_suspense
    from {{ ref('suspense') }}
),

-- §1 attribution as precomputed every day for every staged order (the rows the close's
-- int_settlement__order_attribution reads): only the lines neither settled nor in
-- suspense look at it (those are attributed by definition)
attributed_orders as (
    select order_id
    from {{ ref('int_daily__order_attribution') }}
    where is_attributed
),

funnel_lines as (
    select
        case
            when s.settled_in = '{{ settlement_month() }}' then 'settled'
            when s.settled_in is not null then 'settled_earlier'
            when s.in_suspense then 'suspense'
            when c.order_id is null then 'organic'
            -- refunded in full: a refund covering what was paid (a line paid 0.00 with no
            -- refund is not refunded; it settles at base 0 once completed)
            when e.has_cancel = 1 or (e.refunded_amount > 0 and e.refunded_amount >= d.paid_amount) then 'cancelled'
            when e.completed_at < {{ first_month_start_ts() }} then 'before_first_month'
            else 'pending'
        end as bucket
    from delivered as d
    left join settled_or_suspended as s
        on s.order_id = d.order_id and s.line_no = d.line_no
    left join attributed_orders as c
        on c.order_id = d.order_id
    left join line_events as e
        on e.order_id = d.order_id and e.line_no = d.line_no
),

funnel as (
    select
        count(*) as lines_delivered,
        count(case when bucket = 'settled' then 1 end) as funnel_settled,
        count(case when bucket = 'settled_earlier' then 1 end) as lines_settled_earlier,
        count(case when bucket = 'suspense' then 1 end) as funnel_suspense,
        count(case when bucket = 'organic' then 1 end) as lines_organic,
        count(case when bucket = 'cancelled' then 1 end) as lines_cancelled_unsettled,
        count(case when bucket = 'before_first_month' then 1 end) as lines_completed_before_first_month,
        count(case when bucket = 'pending' then 1 end) as lines_pending_completion
    from funnel_lines
),

-- orphan events (§2) are defined once, in int_settlement__orphan_events
orphans as (
    select count(*) as orphan_events
    from {{ ref('int_settlement__orphan_events') }}
)

select
    funnel.lines_delivered,
    funnel.funnel_settled,
    funnel.lines_settled_earlier,
    funnel.funnel_suspense,
    funnel.lines_organic,
    funnel.lines_cancelled_unsettled,
    funnel.lines_completed_before_first_month,
    funnel.lines_pending_completion,
    orphans.orphan_events
from funnel
cross join orphans
