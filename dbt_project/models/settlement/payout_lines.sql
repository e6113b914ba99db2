-- The ledger for month M: one row per posting (settlement-rules §4-§5, outputs.md).
-- Line postings (accrual / clawback / adjustment) plus one tier_bonus row per promoter
-- with a non-zero bonus (order, line, level and group empty).
select
    '{{ settlement_month() }}' as settlement_month,
    order_id,
    line_no,
    beneficiary_id,
    level,
    kind,
    base_amount,
    rate,
    line_commission,
    amount,
    group_id,
    '{{ var("run_id") }}' as run_id
from {{ ref('int_settlement__line_postings') }}

union all

select
    '{{ settlement_month() }}' as settlement_month,
    cast(null as {{ dbt.type_string() }}) as order_id,
    cast(null as integer) as line_no,
    promoter_id as beneficiary_id,
    cast(null as integer) as level,
    'tier_bonus' as kind,
    tier_base as base_amount,
    bonus_rate as rate,
    level1_accrual_amount as line_commission,
    tier_bonus as amount,
    cast(null as {{ dbt.type_string() }}) as group_id,
    '{{ var("run_id") }}' as run_id
from {{ ref('int_settlement__promoter_tiers') }}
where tier_bonus <> 0
