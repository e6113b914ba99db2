{#- Per month x platform x role x promoter city tier (outputs.md). A promoter's platform,
    role, city tier and status are those of their version in force at the end of the month
    (greatest updated_at before the next month starts). Months run from the first order
    day's month to the last delivered day's month (the last one is partial).
      promoters        : promoters who had joined by the month's end and were not terminated
                         then, plus any other promoter with an attributed order that month;
      active_promoters : promoters with >= 1 attributed order that month (as direct promoter);
      orders, gmv      : attributed orders (by order date) and the paid amount of their lines;
      commission_paid  : the settlement ledger's postings to these promoters for that
                         settlement month (settlement.payout_lines, all kinds and levels);
                         0 while no settlement is published (docs/marts.md);
      groups           : groups the promoters own that exist (not dissolved) on the month's
                         last as-of date; dead_groups: of those, status 'dead' that day. -#}
{%- set bounds = marts_bounds() %}

with days as (
    {{ marts_days(bounds.first_day, bounds.last_day) }}
),

days_by_month as (
    select
        day,
        cast({{ dbt.date_trunc('month', 'day') }} as date) as month
    from days
),

months as (
    select
        month,
        max(day) as last_as_of_date
    from days_by_month
    group by month
),

versions as (
    select
        m.month,
        p.promoter_id,
        p.platform,
        p.role,
        p.city_tier,
        p.status,
        p.joined_at
    from months as m
    cross join {{ ref('stg_exports__promoters') }} as p
    -- the version in force at the month's end; a promoter whose first version is later
    -- (but who has orders that month) falls back to that first version
    qualify row_number() over (
        partition by m.month, p.promoter_id
        order by
            case when p.updated_at < {{ dbt.dateadd('month', 1, 'm.month') }} then 0 else 1 end,
            case when p.updated_at < {{ dbt.dateadd('month', 1, 'm.month') }} then p.updated_at end desc,
            p.updated_at,
            {{ delivered_last() }}
    ) = 1
),

attributed_by_month as (
    select
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month,
        promoter_id,
        order_id,
        paid_amount
    from {{ ref('int_marts__attributed_lines') }}
),

promoter_orders as (
    select
        month,
        promoter_id,
        count(distinct order_id) as orders,
        sum(paid_amount) as gmv
    from attributed_by_month
    group by month, promoter_id
),

ledger as (
    select
        settlement_month,
        beneficiary_id,
        sum(amount) as amount
    from {{ published_or_empty('payout_lines',
        "select cast(null as " ~ dbt.type_string() ~ ") as settlement_month, cast(null as " ~ dbt.type_string()
        ~ ") as beneficiary_id, cast(null as " ~ money_type() ~ ") as amount") }} as pl
    group by settlement_month, beneficiary_id
),

group_counts as (
    select
        m.month,
        s.owner_id,
        count(case when s.status <> 'dissolved' then 1 end) as groups,
        count(case when s.status = 'dead' then 1 end) as dead_groups
    from months as m
    inner join {{ ref('group_status') }} as s
        on s.as_of_date = m.last_as_of_date
    group by m.month, s.owner_id
),

promoter_months as (
    select month, promoter_id from versions
    union
    select month, promoter_id from promoter_orders
),

per_promoter as (
    select
        k.month,
        v.platform,
        v.role,
        v.city_tier,
        k.promoter_id,
        coalesce(v.joined_at < {{ dbt.dateadd('month', 1, 'k.month') }} and v.status <> 'terminated', false)
            or coalesce(o.orders, 0) > 0 as is_counted,
        coalesce(o.orders, 0) as orders,
        coalesce(o.gmv, 0) as gmv,
        coalesce(l.amount, 0) as commission_paid,
        coalesce(g.groups, 0) as groups,
        coalesce(g.dead_groups, 0) as dead_groups
    from promoter_months as k
    left join versions as v
        on v.month = k.month and v.promoter_id = k.promoter_id
    left join promoter_orders as o
        on o.month = k.month and o.promoter_id = k.promoter_id
    left join ledger as l
        on l.settlement_month = substr(cast(k.month as {{ dbt.type_string() }}), 1, 7)
        and l.beneficiary_id = k.promoter_id
    left join group_counts as g
        on g.month = k.month and g.owner_id = k.promoter_id
)

select
    month,
    platform,
    role,
    city_tier,
    cast(count(case when is_counted then 1 end) as integer) as promoters,
    cast(count(case when orders > 0 then 1 end) as integer) as active_promoters,
    cast(sum(orders) as integer) as orders,
    cast(sum(gmv) as {{ money_type() }}) as gmv,
    cast(sum(commission_paid) as {{ money_type() }}) as commission_paid,
    cast(sum(groups) as integer) as groups,
    cast(sum(dead_groups) as integer) as dead_groups
from per_promoter
group by month, platform, role, city_tier
