{#- One row per group and day with any attributed order (outputs.md). Orders attributed
    to a link without a group (shared privately / to Moments) are not group activity.
    Incremental by activity_date (macros/marts_incremental.sql). -#}
{%- set refresh_from = marts_incremental('activity_date', ['orders', 'clicks']) %}

with lines as (
    select order_date, order_id, buyer_id, group_id, paid_amount
    from {{ ref('int_marts__attributed_lines') }}
    where group_id is not null
        and {{ marts_refresh_filter('order_date', refresh_from) }}
),

daily as (
    select
        order_date as activity_date,
        group_id,
        count(distinct order_id) as orders,
        count(*) as order_lines,
        count(distinct buyer_id) as buyers,
        sum(paid_amount) as gmv
    from lines
    group by order_date, group_id
),

owners as (
    select g.group_id, g.owner_id, p.platform
    from {{ ref('stg_exports__groups') }} as g
    left join {{ ref('int_marts__promoters_current') }} as p
        on p.promoter_id = g.owner_id
)

select
    d.activity_date,
    d.group_id,
    o.owner_id,
    o.platform,
    cast(d.orders as integer) as orders,
    cast(d.order_lines as integer) as order_lines,
    cast(d.buyers as integer) as buyers,
    cast(d.gmv as {{ money_type() }}) as gmv
from daily as d
left join owners as o
    on o.group_id = d.group_id
