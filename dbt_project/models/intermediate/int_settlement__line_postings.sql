-- The ledger rule (§4): for each settled line and beneficiary, post
-- (entitlement as of M's cutoff) - (everything already posted for it).
-- First posting: an `accrual` row, even for 0. Later: a `clawback` when the amount falls,
-- an `adjustment` when it rises, nothing when it is unchanged. Deltas of base and
-- commission ride along; amounts are differences of rounded figures.
with entitled as (
    select order_id, line_no, 1 as level, promoter_id as beneficiary_id, base_amount, rate,
           line_commission, level1_amount as amount, group_id
    from {{ ref('int_settlement__line_entitlements') }}

    union all

    select order_id, line_no, 2 as level, level2_beneficiary_id as beneficiary_id, base_amount,
           rate, line_commission, level2_amount as amount, group_id
    from {{ ref('int_settlement__line_entitlements') }}
    where level2_beneficiary_id is not null
),

posted as (
    select * from {{ ref('int_settlement__posted_before') }}
)

select
    e.order_id,
    e.line_no,
    e.beneficiary_id,
    e.level,
    case
        when p.order_id is null then 'accrual'
        when e.amount < p.amount then 'clawback'
        else 'adjustment'
    end as kind,
    cast(e.base_amount - coalesce(p.base_amount, 0) as {{ money_type() }}) as base_amount,
    e.rate,
    cast(e.line_commission - coalesce(p.line_commission, 0) as {{ money_type() }}) as line_commission,
    cast(e.amount - coalesce(p.amount, 0) as {{ money_type() }}) as amount,
    e.group_id
from entitled as e
left join posted as p
    on p.order_id = e.order_id
    and p.line_no = e.line_no
    and p.beneficiary_id = e.beneficiary_id
    and p.level = e.level
where p.order_id is null or e.amount <> p.amount
