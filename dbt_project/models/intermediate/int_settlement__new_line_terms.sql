-- Terms for every newly settled, attributed line (organic lines drop out here, §1):
-- beneficiaries from the click's link and the promoter as of the cutoff, the rate in
-- force at ordered_at by precedence sku > merchant > category (self-operated only) > 0
-- (§2, macros/rate_precedence.sql rate_in_force), the split shares of the promoter's platform (§3), or the reason the line goes
-- to suspense (§7).
with joined as (
    select
        l.order_id,
        l.line_no,
        l.sku_id,
        l.ordered_at,
        l.paid_amount,
        l.base_amount,
        l.completed_at,
        a.click_id,
        a.link_id,
        lk.link_id is not null as link_known,
        lk.promoter_id,
        lk.group_id,
        s.sku_id is not null as sku_known,
        s.merchant_id,
        s.category,
        s.is_self_operated,
        p.promoter_id is not null as promoter_known,
        p.platform,
        p.inviter_id,
        inv.promoter_id is not null as inviter_known,
        lp.promoter_id is not null as inviter_loop
    from {{ ref('int_settlement__new_lines') }} as l
    inner join {{ ref('int_settlement__order_attribution') }} as a
        on a.order_id = l.order_id
    left join {{ ref('stg_exports__links') }} as lk
        on lk.link_id = a.link_id
    left join {{ ref('stg_exports__skus') }} as s
        on s.sku_id = l.sku_id
    left join {{ ref('int_settlement__promoters_as_of_cutoff') }} as p
        on p.promoter_id = lk.promoter_id
    left join {{ ref('int_settlement__promoters_as_of_cutoff') }} as inv
        on inv.promoter_id = p.inviter_id
    left join {{ ref('int_settlement__inviter_loops') }} as lp
        on lp.promoter_id = p.promoter_id
    where a.is_attributed
),

shares as (
    {{ split_shares_relation() }}
),

-- the rate in force at ordered_at (§2), the joined columns carried along
with_rates as (
    {{ rate_in_force('joined', [
        'order_id',
        'line_no',
        'sku_id',
        'ordered_at',
        'paid_amount',
        'base_amount',
        'completed_at',
        'click_id',
        'link_id',
        'link_known',
        'promoter_id',
        'group_id',
        'sku_known',
        'promoter_known',
        'platform',
        'inviter_id',
        'inviter_known',
        'inviter_loop'
    ], 'ordered_at') }}
),

with_rules as (
    select
        r.*,
        sh.level1_share,
        sh.level2_share
    from with_rates as r
    left join shares as sh
        on sh.platform = r.platform
)

select
    order_id,
    line_no,
    sku_id,
    ordered_at,
    completed_at,
    paid_amount,
    base_amount,
    click_id,
    link_id,
    group_id,
    promoter_id,
    platform,
    inviter_id,
    inviter_loop,
    case
        when not link_known then 'unknown_link'
        when not sku_known then 'unknown_sku'
        when not promoter_known then 'unknown_promoter'
        when level2_share > 0 and inviter_id is not null and not inviter_known then 'unknown_inviter'
    end as suspense_reason,
    rule_id,
    rule_scope,
    rate,
    {{ dec(cfg('platform_fee_rate'), 9, 6) }} as platform_fee_rate,
    level1_share,
    case
        when level2_share > 0 and inviter_id is not null and not inviter_loop then level2_share
        else cast(0 as {{ rate_type() }})
    end as level2_share,
    case
        when level2_share > 0 and inviter_id is not null and not inviter_loop then inviter_id
    end as level2_beneficiary_id
from with_rules
