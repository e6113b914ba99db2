{#- Estimated earnings against the close (issue #15, outputs.md promoter_earnings_daily):
    one row for the month M of the run being built. The month base is the lines the run
    settles for the first time (line_terms of M: completed in M, or completed earlier and
    released from suspense now), plus the lines completed in M that went to suspense.
    For each, the estimate promoter_earnings_daily shows (estimated_line_earnings: rate in
    force at the line's ordering, §3 split at the promoter's latest platform and inviter), level 1 +
    level 2, with the line's events before M's cutoff (the close's
    int_settlement__line_events_at_cutoff), against the run's accruals
    (payout_lines, kind accrual, both levels). Exactly:
      estimated_at_paid - accrued = lost_to_refunds + lost_to_cancels + in_suspense + terms_difference
      accrued = accrued_paid + accrued_held + accrued_forfeited + accrued_below_threshold + accrued_debt
    lost_to_*: the estimate at the paid amount minus at the base as of the cutoff (a
    cancelled line, or a refund without amount, loses all of it); in_suspense: the
    estimate at the base of lines completed in M that went to suspense; terms_difference:
    the estimate at the cutoff base minus the accrual of settled lines (frozen terms, or a
    platform or inviter that changed after the cutoff); accrued_<status>: the accruals of
    beneficiaries whose payout for M has that status (paid before tax; held and forfeited
    by status; below_threshold and debt carried out). A table in settlement_build, rebuilt
    with every run, read by the run report. -#}
{{ config(materialized='table', schema='settlement_build') }}

with settled as (
    select order_id, line_no, promoter_id, true as is_settled
    from {{ ref('line_terms') }}
    where first_settlement_month = '{{ settlement_month() }}'
),

suspended as (
    select order_id, line_no, promoter_id, false as is_settled
    from {{ ref('suspense') }}
    where completed_at >= {{ month_start_ts() }}
        and completed_at < {{ next_month_start_ts() }}
),

month_keys as (
    select * from settled
    union all
    select * from suspended
),

-- every month key is an attributed line new to this run; the rate is the one in force at
-- the line's own ordered_at, as the close takes it (int_settlement__new_line_terms)
lines as (
    select k.order_id, k.line_no, o.ordered_at, o.sku_id, o.paid_amount, k.promoter_id
    from month_keys as k
    inner join {{ ref('stg_exports__orders') }} as o
        on o.order_id = k.order_id and o.line_no = k.line_no
),

-- the mart's split terms (latest platform and inviter, inviter loops), not the cutoff's:
-- terms_difference measures the gap
loops as (
    select promoter_id from {{ ref('int_marts__promoter_split') }} where is_in_inviter_loop
),

estimates as (
    {{ estimated_line_earnings('lines', ref('int_marts__promoter_split'), 'loops', line_events=settlement_line_events()) }}
),

accruals as (
    select order_id, line_no, beneficiary_id, amount
    from {{ ref('payout_lines') }}
    where kind = 'accrual' and settlement_month = '{{ settlement_month() }}'
),

accrued_per_line as (
    select order_id, line_no, sum(amount) as accrued
    from accruals
    group by order_id, line_no
),

per_line as (
    select
        k.is_settled,
        e.level1_at_paid + e.level2_at_paid as estimated_at_paid,
        e.level1_at_base + e.level2_at_base as estimated_at_base,
        e.is_cancelled,
        coalesce(a.accrued, 0) as accrued
    from month_keys as k
    inner join estimates as e
        on e.order_id = k.order_id and e.line_no = k.line_no
    left join accrued_per_line as a
        on a.order_id = k.order_id and a.line_no = k.line_no
),

by_status as (
    select
        sum(case when p.status = 'paid' then a.amount else 0 end) as accrued_paid,
        sum(case when p.status = 'held' then a.amount else 0 end) as accrued_held,
        sum(case when p.status = 'forfeited' then a.amount else 0 end) as accrued_forfeited,
        sum(case when p.status = 'below_threshold' then a.amount else 0 end) as accrued_below_threshold,
        sum(case when p.status = 'debt' then a.amount else 0 end) as accrued_debt
    from accruals as a
    left join {{ ref('payouts') }} as p
        on p.promoter_id = a.beneficiary_id and p.settlement_month = '{{ settlement_month() }}'
),

totals as (
    select
        count(case when is_settled then 1 end) as lines_settled,
        count(case when not is_settled then 1 end) as lines_in_suspense,
        coalesce(sum(estimated_at_paid), 0) as estimated_at_paid,
        coalesce(sum(case when not is_cancelled then estimated_at_paid - estimated_at_base else 0 end), 0) as lost_to_refunds,
        coalesce(sum(case when is_cancelled then estimated_at_paid - estimated_at_base else 0 end), 0) as lost_to_cancels,
        coalesce(sum(case when not is_settled then estimated_at_base else 0 end), 0) as in_suspense,
        coalesce(sum(case when is_settled then estimated_at_base - accrued else 0 end), 0) as terms_difference,
        coalesce(sum(accrued), 0) as accrued
    from per_line
)

select
    '{{ settlement_month() }}' as settlement_month,
    '{{ var("run_id") }}' as run_id,
    cast(t.lines_settled as bigint) as lines_settled,
    cast(t.lines_in_suspense as bigint) as lines_in_suspense,
    cast(t.estimated_at_paid as {{ money_type() }}) as estimated_at_paid,
    cast(t.lost_to_refunds as {{ money_type() }}) as lost_to_refunds,
    cast(t.lost_to_cancels as {{ money_type() }}) as lost_to_cancels,
    cast(t.in_suspense as {{ money_type() }}) as in_suspense,
    cast(t.terms_difference as {{ money_type() }}) as terms_difference,
    cast(t.accrued as {{ money_type() }}) as accrued,
    cast(coalesce(s.accrued_paid, 0) as {{ money_type() }}) as accrued_paid,
    cast(coalesce(s.accrued_held, 0) as {{ money_type() }}) as accrued_held,
    cast(coalesce(s.accrued_forfeited, 0) as {{ money_type() }}) as accrued_forfeited,
    cast(coalesce(s.accrued_below_threshold, 0) as {{ money_type() }}) as accrued_below_threshold,
    cast(coalesce(s.accrued_debt, 0) as {{ money_type() }}) as accrued_debt
from totals as t
cross join by_status as s
