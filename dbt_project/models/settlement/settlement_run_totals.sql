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
-- so lines_delivered is their sum (data tests below). Computed once per run in the table
-- rpt_settlement_run_funnel; orphan events (events of lines never delivered, §2) beside it.
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

funnel as (
    select * from {{ ref('rpt_settlement_run_funnel') }}
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
    -- the funnel's own counts of this run's settled and suspended lines: a data test
    -- checks them against lines_settled and suspense_lines
    funnel.funnel_settled,
    funnel.funnel_suspense,
    funnel.orphan_events
from first_settled
cross join ledger
cross join paid
cross join susp
cross join funnel
