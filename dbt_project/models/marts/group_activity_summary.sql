{#- Per day x platform x owner role (outputs.md): groups by status (from group_status),
    the groups' attributed orders and GMV that day (from group_daily_activity), and orders
    per existing group (existing = not dissolved on that day). Platform and role are the
    group owner's, from the owner's latest promoter version. Incremental by activity_date. -#}
{%- set refresh_from = marts_incremental('activity_date', ['orders', 'clicks', 'groups']) %}

with owners as (
    select g.group_id, p.platform, p.role as owner_role
    from {{ ref('stg_exports__groups') }} as g
    left join {{ ref('int_marts__promoters_current') }} as p
        on p.promoter_id = g.owner_id
),

statuses as (
    select
        s.as_of_date as activity_date,
        o.platform,
        o.owner_role,
        count(case when s.status <> 'dissolved' then 1 end) as existing_groups,
        count(case when s.status = 'new' then 1 end) as new_groups,
        count(case when s.status = 'active' then 1 end) as active_groups,
        count(case when s.status = 'dormant' then 1 end) as dormant_groups,
        count(case when s.status = 'dead' then 1 end) as dead_groups,
        count(case when s.status = 'dissolved' then 1 end) as dissolved_groups
    from {{ ref('group_status') }} as s
    left join owners as o
        on o.group_id = s.group_id
    where {{ marts_refresh_filter('s.as_of_date', refresh_from) }}
    group by s.as_of_date, o.platform, o.owner_role
),

orders as (
    select
        a.activity_date,
        o.platform,
        o.owner_role,
        sum(a.orders) as orders,
        sum(a.order_lines) as order_lines,
        sum(a.gmv) as gmv
    from {{ ref('group_daily_activity') }} as a
    left join owners as o
        on o.group_id = a.group_id
    where {{ marts_refresh_filter('a.activity_date', refresh_from) }}
    group by a.activity_date, o.platform, o.owner_role
),

cells as (
    select activity_date, platform, owner_role from statuses
    union
    select activity_date, platform, owner_role from orders
)

select
    c.activity_date,
    c.platform,
    c.owner_role,
    cast(coalesce(s.existing_groups, 0) as integer) as existing_groups,
    cast(coalesce(s.new_groups, 0) as integer) as new_groups,
    cast(coalesce(s.active_groups, 0) as integer) as active_groups,
    cast(coalesce(s.dormant_groups, 0) as integer) as dormant_groups,
    cast(coalesce(s.dead_groups, 0) as integer) as dead_groups,
    cast(coalesce(s.dissolved_groups, 0) as integer) as dissolved_groups,
    cast(coalesce(r.orders, 0) as integer) as orders,
    cast(coalesce(r.order_lines, 0) as integer) as order_lines,
    cast(coalesce(r.gmv, 0) as {{ money_type() }}) as gmv,
    cast(case when coalesce(s.existing_groups, 0) > 0
        then cast(coalesce(r.orders, 0) as decimal(18,4)) / s.existing_groups end as decimal(18,4))
        as orders_per_existing_group
from cells as c
left join statuses as s
    on s.activity_date = c.activity_date
    and s.platform is not distinct from c.platform
    and s.owner_role is not distinct from c.owner_role
left join orders as r
    on r.activity_date = c.activity_date
    and r.platform is not distinct from c.platform
    and r.owner_role is not distinct from c.owner_role
