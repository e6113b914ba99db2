-- Data-quality findings that did not stop the run (outputs.md): inviter loops, orders
-- whose lines disagree on buyer or time, clicks in M on unknown links, files delivered in
-- M with unknown extra columns, and order lines never delivered that have events before
-- M's cutoff (orphan events, §2; one finding per line, as of the cutoff).
with loops as (
    select
        'inviter_loop' as kind,
        promoter_id as row_key,
        'inviter chain returns to this promoter after ' || cast(loop_length as {{ dbt.type_string() }}) || ' step(s); no level-2 share is paid on their lines' as detail
    from {{ ref('int_settlement__inviter_loops') }}
),

disagreeing_orders as (
    select
        'order_lines_disagree' as kind,
        o.order_id as row_key,
        'lines of this order have ' || cast(count(distinct o.buyer_id) as {{ dbt.type_string() }}) || ' buyer(s) and '
            || cast(count(distinct o.ordered_at) as {{ dbt.type_string() }}) || ' order time(s); attributed on the lowest line_no' as detail
    from {{ ref('stg_exports__orders') }} as o
    where o.order_id in (
        -- min <> max finds them without two distinct-counts over every settled order
        -- (buyer_id and ordered_at are never null); the counts are for these few only
        select order_id
        from {{ ref('stg_exports__orders') }}
        where order_id in (select order_id from {{ ref('int_settlement__new_lines') }})
        group by order_id
        having min(buyer_id) <> max(buyer_id) or min(ordered_at) <> max(ordered_at)
    )
    group by o.order_id
),

unknown_link_clicks as (
    select
        'click_unknown_link' as kind,
        c.click_id as row_key,
        'click on link ' || c.link_id || ' which is not in the links export' as detail
    from {{ ref('stg_exports__clicks') }} as c
    left join {{ ref('stg_exports__links') }} as l on l.link_id = c.link_id
    where l.link_id is null
        and c.clicked_at >= {{ month_start_ts() }}
        and c.clicked_at < {{ next_month_start_ts() }}
),

extra_columns as (
    select
        'unknown_extra_columns' as kind,
        m.file_path as row_key,
        'ignored unknown column(s): ' || cast(m.extra_columns as {{ dbt.type_string() }}) as detail
    from {{ ref('stg_exports__manifest') }} as m
    where m.extra_columns is not null
        and m.status = 'loaded'
        and m.delivery_date >= cast({{ month_start_ts() }} as date)
        and m.delivery_date < cast({{ next_month_start_ts() }} as date)
),

orphan_lines as (
    select
        'orphan_event' as kind,
        order_id || '#' || cast(line_no as {{ dbt.type_string() }}) as row_key,
        cast(count(*) as {{ dbt.type_string() }}) || ' event(s) before the cutoff, '
            || cast(count(case when event = 'completed' then 1 end) as {{ dbt.type_string() }})
            || ' of them completions, for an order line that is not in the orders export; '
            || 'nothing settles for it until the line is delivered' as detail
    from {{ ref('int_settlement__orphan_events') }}
    group by order_id, line_no
)

select
    '{{ settlement_month() }}' as settlement_month,
    '{{ var("run_id") }}' as run_id,
    kind,
    row_key,
    detail
from (
    select * from loops
    union all
    select * from disagreeing_orders
    union all
    select * from unknown_link_clicks
    union all
    select * from extra_columns
    union all
    select * from orphan_lines
) as f
