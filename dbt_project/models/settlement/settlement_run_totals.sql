{{ config(materialized='view') }}
-- A view: totals are read at gate and publish time from the candidate tables.
-- One row: the month's totals for settlement_runs and the report, and the suspense
-- ratio of §7. Line totals cover the lines this run settled for the first time.
-- The order-line funnel (outputs.md settlement_runs, §1): every delivered order line
-- lands in exactly one bucket, the first that applies, in this order:
--   settled this run (lines_settled) / settled by an earlier run (lines_settled_earlier)
--   in suspense (suspense_lines)
--   organic: its order has no click in the window (§1 "unattributed")
--   cancelled or refunded in full before the cutoff, never settled
--   completed before the first settled month (outside this warehouse's ledger)
--   pending completion: everything else (no completion before M's end yet)
-- so lines_delivered is their sum (data test funnel_adds_up). Orphan events (events of
-- lines never delivered, §2) are counted beside the funnel.
with first_settled as (
    select
        count(*) as lines_settled,
        coalesce(sum(base_amount), 0) as base_amount,
        coalesce(sum(line_commission), 0) as line_commission,
        coalesce(sum(platform_fee), 0) as platform_fee,
        coalesce(sum(level1_amount), 0) as level1_amount,
        coalesce(sum(level2_amount), 0) as level2_amount,
        coalesce(sum(operator_retained), 0) as operator_retained
    from {{ ref('int_settlement__line_entitlements') }}
    where first_settlement_month = '{{ settlement_month() }}'
),

ledger as (
    select
        count(*) as postings,
        coalesce(sum(case when kind = 'clawback' then amount end), 0) as clawback_amount,
        coalesce(sum(case when kind = 'adjustment' then amount end), 0) as adjustment_amount,
        coalesce(sum(case when kind = 'tier_bonus' then amount end), 0) as tier_bonus_amount,
        coalesce(sum(amount), 0) as postings_amount
    from {{ ref('payout_lines') }}
),

paid as (
    select
        count(*) as payout_rows,
        coalesce(sum(carried_in), 0) as carried_in,
        coalesce(sum(gross_due), 0) as gross_due,
        coalesce(sum(net_paid), 0) as net_paid,
        coalesce(sum(tax_withheld), 0) as tax_withheld,
        coalesce(sum(carried_out), 0) as carried_out,
        coalesce(sum(forfeited_amount), 0) as forfeited_amount
    from {{ ref('payouts') }}
),

susp as (
    select
        count(*) as suspense_lines,
        coalesce(sum(base_amount), 0) as suspense_base
    from {{ ref('suspense') }}
),

delivered as (
    select order_id, line_no, paid_amount
    from {{ ref('stg_exports__orders') }}
),

line_events as (
    select
        order_id,
        line_no,
        min(case when event = 'completed' then event_at end) as completed_at,
        max(case when event = 'cancelled' or (event = 'refunded' and amount is null) then 1 else 0 end) as has_cancel,
        coalesce(sum(case when event = 'refunded' then amount end), 0) as refunded_amount
    from {{ ref('stg_exports__order_events') }}
    where event_at < {{ cutoff_ts() }}
    group by order_id, line_no
),

settled_or_suspended as (
    select order_id, line_no, first_settlement_month as settled_in, false as in_suspense
    from {{ ref('int_settlement__line_terms') }}
    union all
    select order_id, line_no, cast(null as {{ dbt.type_string() }}) as settled_in, true as in_suspense
    from {{ ref('suspense') }}
),

-- §1 attribution of the orders that still have a line neither settled nor in suspense
-- (settled and suspended lines are attributed by definition)
unplaced_heads as (
    {{ order_heads(ref('stg_exports__orders'),
                   where="order_id in (select d.order_id from delivered as d left join settled_or_suspended as s "
                         ~ "on s.order_id = d.order_id and s.line_no = d.line_no where s.order_id is null)") }}
),

unplaced_clicks as (
    {{ last_click_attribution('unplaced_heads', ref('stg_exports__clicks')) }}
),

funnel_lines as (
    select
        case
            when s.settled_in = '{{ settlement_month() }}' then 'settled'
            when s.settled_in is not null then 'settled_earlier'
            when s.in_suspense then 'suspense'
            when c.order_id is null then 'organic'
            when e.has_cancel = 1 or e.refunded_amount >= d.paid_amount then 'cancelled'
            when e.completed_at < {{ first_month_start_ts() }} then 'before_first_month'
            else 'pending'
        end as bucket
    from delivered as d
    left join settled_or_suspended as s
        on s.order_id = d.order_id and s.line_no = d.line_no
    left join unplaced_clicks as c
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

orphans as (
    select count(*) as orphan_events
    from {{ ref('stg_exports__order_events') }} as e
    left join delivered as d
        on d.order_id = e.order_id and d.line_no = e.line_no
    where d.order_id is null
        and e.event_at < {{ cutoff_ts() }}
)

select
    '{{ settlement_month() }}' as settlement_month,
    '{{ var("run_id") }}' as run_id,
    first_settled.lines_settled,
    cast(first_settled.base_amount as {{ money_type() }}) as base_amount,
    cast(first_settled.line_commission as {{ money_type() }}) as line_commission,
    cast(first_settled.platform_fee as {{ money_type() }}) as platform_fee,
    cast(first_settled.level1_amount as {{ money_type() }}) as level1_amount,
    cast(first_settled.level2_amount as {{ money_type() }}) as level2_amount,
    cast(first_settled.operator_retained as {{ money_type() }}) as operator_retained,
    ledger.postings,
    cast(ledger.clawback_amount as {{ money_type() }}) as clawback_amount,
    cast(ledger.adjustment_amount as {{ money_type() }}) as adjustment_amount,
    cast(ledger.tier_bonus_amount as {{ money_type() }}) as tier_bonus_amount,
    cast(ledger.postings_amount as {{ money_type() }}) as postings_amount,
    paid.payout_rows,
    cast(paid.carried_in as {{ money_type() }}) as carried_in,
    cast(paid.gross_due as {{ money_type() }}) as gross_due,
    cast(paid.net_paid as {{ money_type() }}) as net_paid,
    cast(paid.tax_withheld as {{ money_type() }}) as tax_withheld,
    cast(paid.carried_out as {{ money_type() }}) as carried_out,
    cast(paid.forfeited_amount as {{ money_type() }}) as forfeited_amount,
    susp.suspense_lines,
    cast(susp.suspense_base as {{ money_type() }}) as suspense_base,
    cast(
        case when first_settled.base_amount + susp.suspense_base = 0 then 0
             else susp.suspense_base / (first_settled.base_amount + susp.suspense_base) end
        as decimal(18,8)
    ) as suspense_ratio,
    {{ dec(cfg('suspense_limit_ratio'), 18, 8) }} as suspense_limit_ratio,
    {{ 'true' if var('accept_suspense') else 'false' }} as suspense_accepted,
    funnel.lines_delivered,
    funnel.lines_organic,
    funnel.lines_settled_earlier,
    funnel.lines_pending_completion,
    funnel.lines_cancelled_unsettled,
    funnel.lines_completed_before_first_month,
    -- the funnel's own counts of this run's settled and suspended lines: the data test
    -- funnel_adds_up checks them against lines_settled and suspense_lines
    funnel.funnel_settled,
    funnel.funnel_suspense,
    orphans.orphan_events
from first_settled
cross join ledger
cross join paid
cross join susp
cross join funnel
cross join orphans
