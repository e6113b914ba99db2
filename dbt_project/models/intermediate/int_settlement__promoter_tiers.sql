-- §5: a promoter's tier for M is set by the base of their level-1 accrual rows posted in
-- M (zero-rate lines count); the bonus is round(sum of those accrual amounts x bonus
-- rate). Clawbacks never change a tier or a bonus.
with accruals as (
    select
        beneficiary_id as promoter_id,
        cast(sum(base_amount) as {{ money_type() }}) as tier_base,
        cast(sum(amount) as {{ money_type() }}) as level1_accrual_amount
    from {{ ref('int_settlement__line_postings') }}
    where level = 1 and kind = 'accrual'
    group by beneficiary_id
),

tiers as (
    {{ tiers_relation() }}
)

select
    a.promoter_id,
    t.tier,
    a.tier_base,
    a.level1_accrual_amount,
    t.bonus_rate,
    {{ round_money('a.level1_accrual_amount * t.bonus_rate') }} as tier_bonus
from accruals as a
inner join tiers as t
    on a.tier_base >= t.min_base
    and (t.max_base is null or a.tier_base < t.max_base)
