-- What every settled line is entitled to as of M's cutoff (§2, §3), on its frozen terms:
-- C = round(base x rate); F = round(C x fee); P = C - F; each share = round(P x share);
-- the operator keeps R = P - level 1 - level 2, so F + L1 + L2 + R = C exactly.
with lines as (
    select
        s.order_id,
        s.line_no,
        s.paid_amount,
        s.base_amount,
        s.completed_at,
        s.is_cancelled,
        t.first_settlement_month,
        t.group_id,
        t.promoter_id,
        t.platform,
        t.level2_beneficiary_id,
        t.rule_id,
        t.rule_scope,
        t.rate,
        t.platform_fee_rate,
        t.level1_share,
        t.level2_share,
        {{ round_money('s.base_amount * t.rate') }} as line_commission
    from {{ ref('int_settlement__line_state') }} as s
    inner join {{ ref('int_settlement__line_terms') }} as t
        on t.order_id = s.order_id and t.line_no = s.line_no
),

fee as (
    select
        *,
        {{ round_money('line_commission * platform_fee_rate') }} as platform_fee
    from lines
),

shares as (
    select
        *,
        cast(line_commission - platform_fee as {{ money_type() }}) as pool_amount,
        {{ round_money('(line_commission - platform_fee) * level1_share') }} as level1_amount,
        case
            when level2_beneficiary_id is not null
                then {{ round_money('(line_commission - platform_fee) * level2_share') }}
            else cast(0 as {{ money_type() }})
        end as level2_amount
    from fee
)

select
    *,
    cast(pool_amount - level1_amount - level2_amount as {{ money_type() }}) as operator_retained
from shares
