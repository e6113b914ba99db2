{#- One row per group and as-of date (outputs.md), for every day from the first order day
    to the last delivered day. A group has a row on each day from its creation on; a
    dissolved group keeps rows, with status 'dissolved', for the 30 days from its
    dissolution date (so a month's dissolutions stay visible), then drops out. Windows
    count calendar days ending with as_of_date: "the last 7 days" is as_of_date - 6 ..
    as_of_date (docs/marts.md):
      dissolved : dissolved_at's date <= as_of_date
      active    : an attributed order in the last 7 days (0..6 days ago)
      dormant   : last attributed order 7..29 days ago ("8-30 days ago", counting today as day 1)
      new       : no attributed order yet and created in the last 30 days (0..29 days ago)
      dead      : otherwise (僵死群): no attributed order in the last 30 days, or never
                  and created 30 or more days ago.
    Orders are the group's attributed orders from group_daily_activity, so orders before
    the first loaded order day are unknown: the first 30 as-of dates are a warm-up.
    Incremental by as_of_date: recomputes from the first date new deliveries can change
    (and reads 29 days before it for the windows). -#}
{%- set refresh_from = marts_incremental('as_of_date', ['orders', 'clicks', 'groups']) -%}
{%- set bounds = marts_bounds() -%}
{%- set compute_from = none -%}
{%- if execute and refresh_from and bounds.first_day -%}
    {%- set d = modules.datetime.date.fromisoformat(refresh_from) - modules.datetime.timedelta(days=29) -%}
    {%- set compute_from = [d.isoformat(), bounds.first_day | string] | max -%}
{%- else -%}
    {%- set compute_from = bounds.first_day -%}
{%- endif %}
{#- A refresh of the last delivered day alone (the daily run) computes that one day's
    windows by aggregating its group's activity of the 30 days (`windowed`, one row per
    group), instead of running the windows over every day of them and keeping the last:
    the same figures, for a thirtieth of the group-days (docs/marts.md "group_status"). -#}
{%- set one_day = execute and refresh_from and bounds.last_day and refresh_from == (bounds.last_day | string) %}

with days as (
    {%- if one_day %}
    {{ marts_days(refresh_from, bounds.last_day) }}
    {%- else %}
    {{ marts_days(compute_from, bounds.last_day) }}
    {%- endif %}
),

groups_now as (
    select
        group_id,
        owner_id,
        created_at,
        dissolved_at,
        cast(created_at as date) as created_date,
        cast(dissolved_at as date) as dissolved_date
    from {{ ref('stg_exports__groups') }}
),

-- member_count as of a day: the latest snapshot on or before it (the first snapshot
-- stands for the days before it); a snapshot delivered twice: the version delivered last.
snapshots as (
    select group_id, snapshot_date, member_count
    from {{ ref('stg_exports__group_versions') }}
    qualify row_number() over (partition by group_id, snapshot_date order by {{ delivered_last() }}) = 1
),

member_counts as (
    select
        group_id,
        member_count,
        -- empty valid_from: the first snapshot, also standing for the days before it
        case when row_number() over (partition by group_id order by snapshot_date) > 1
            then snapshot_date end as valid_from,
        lead(snapshot_date) over (partition by group_id order by snapshot_date) as valid_to
    from snapshots
),

group_days as (
    select
        d.day as as_of_date,
        g.group_id,
        g.owner_id,
        g.created_at,
        g.created_date,
        g.dissolved_date
    from groups_now as g
    inner join days as d
        on d.day >= g.created_date
        and (g.dissolved_date is null or d.day < {{ dbt.dateadd('day', 30, 'g.dissolved_date') }})
),

activity as (
    select activity_date, group_id, orders
    from {{ ref('group_daily_activity') }}
    {%- if compute_from %}
    where activity_date >= {{ marts_date_literal(compute_from) }}
    {%- endif %}
),

prior_last_order as (
    {%- if compute_from %}
    select group_id, max(activity_date) as last_order_date
    from {{ ref('group_daily_activity') }}
    where activity_date < {{ marts_date_literal(compute_from) }}
    group by group_id
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as group_id, cast(null as date) as last_order_date
    where 1 = 0
    {%- endif %}
),

-- the windows of each group-day: over several days, running windows over the group's
-- consecutive days; for the one day of a daily refresh, the group's orders since it was
-- created within the window's days (activity starts at compute_from, 29 days before),
-- which is what the running windows count. The last order day before compute_from comes
-- from prior_last_order.
{%- set group_day_columns = ['gd.as_of_date', 'gd.group_id', 'gd.owner_id', 'gd.created_at',
                             'gd.created_date', 'gd.dissolved_date'] %}
windowed as (
    select
        {{ group_day_columns | join(',\n        ') }},
        {%- if one_day %}
        coalesce(
            max(case when a.orders > 0 and a.activity_date >= gd.created_date then a.activity_date end),
            max(p.last_order_date)
        ) as last_order_date,
        sum(case when a.activity_date >= gd.created_date
                and a.activity_date > {{ dbt.dateadd('day', -7, 'gd.as_of_date') }}
            then a.orders else 0 end) as orders_7d,
        sum(case when a.activity_date >= gd.created_date then a.orders else 0 end) as orders_30d
        {%- else %}
        coalesce(
            max(case when a.orders > 0 then gd.as_of_date end) over (
                partition by gd.group_id order by gd.as_of_date rows between unbounded preceding and current row),
            p.last_order_date
        ) as last_order_date,
        sum(coalesce(a.orders, 0)) over (
            partition by gd.group_id order by gd.as_of_date rows between 6 preceding and current row) as orders_7d,
        sum(coalesce(a.orders, 0)) over (
            partition by gd.group_id order by gd.as_of_date rows between 29 preceding and current row) as orders_30d
        {%- endif %}
    from group_days as gd
    left join activity as a
        on a.group_id = gd.group_id
        {%- if one_day %}
        and a.activity_date <= gd.as_of_date
        {%- else %}
        and a.activity_date = gd.as_of_date
        {%- endif %}
    left join prior_last_order as p
        on p.group_id = gd.group_id
    {%- if one_day %}
    group by {{ group_day_columns | join(', ') }}
    {%- endif %}
)

select
    w.as_of_date,
    w.group_id,
    w.owner_id,
    pr.platform,
    w.created_at,
    cast(m.member_count as integer) as member_count,
    w.last_order_date,
    cast(w.orders_7d as integer) as orders_7d,
    cast(w.orders_30d as integer) as orders_30d,
    cast(case
        when w.dissolved_date is not null and w.dissolved_date <= w.as_of_date then 'dissolved'
        when w.last_order_date is not null
            and {{ dbt.datediff('w.last_order_date', 'w.as_of_date', 'day') }} <= 6 then 'active'
        when w.last_order_date is not null
            and {{ dbt.datediff('w.last_order_date', 'w.as_of_date', 'day') }} <= 29 then 'dormant'
        when w.last_order_date is null
            and {{ dbt.datediff('w.created_date', 'w.as_of_date', 'day') }} <= 29 then 'new'
        else 'dead'
    end as {{ dbt.type_string() }}) as status
from windowed as w
left join member_counts as m
    on m.group_id = w.group_id
    and (m.valid_from is null or m.valid_from <= w.as_of_date)
    and (m.valid_to is null or w.as_of_date < m.valid_to)
left join {{ ref('int_marts__promoters_current') }} as pr
    on pr.promoter_id = w.owner_id
where {{ marts_refresh_filter('w.as_of_date', refresh_from) }}
