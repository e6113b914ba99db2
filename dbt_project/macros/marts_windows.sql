{#- Trailing-window measures without multiplying lines by days (docs/marts.md "Trailing
    windows"). For every group `keys` (e.g. promoter_id, platform, category) and every day
    whose window (the day and the `window_days - 1` days before it) holds an order of the
    group, up to `last_day`:
      buyers : distinct buyers with an order of the group in the window;
      orders : orders of the group in the window;
      gmv    : their paid amount.
    Inputs, both already cut to the lines the caller reads:
      daily      : keys, order_date, orders (distinct orders that day), gmv (sum that day);
                   an order has one order_date, so a window's orders are the sum of its days';
      buyer_days : keys, buyer_id, order_date, one row per buyer, group and day bought.
    How: a buyer who bought on t1 < t2 < ... counts on the days [t_i, min(t_i + 29,
    t_{i+1} - 1)] (disjoint spans whose union is exactly the days the buyer is in the
    window); a day's orders and gmv count on [t, t + 29]. Each span and day becomes +1 / -1
    changes, a running sum per group gives the window's figures from one change to the
    next (never more than window_days days apart while the window holds an order), and
    only those pieces are spread over their days. The line x day product (and its distinct
    counts), which spilled tens of GB at programme volume, is never built.
    Emits CTEs named <name>_spans, <name>_changes, <name>_pieces and <name> (keys,
    as_of_date, buyers, orders, gmv), for a `with` list. Days before `first_day` (the
    refresh's first day, or none) are not returned.
    Only the returned days need pieces of their own: the changes before `first_day` matter
    only through their sum (the running total entering it) and those after `last_day` only
    end the last piece, so each side is collapsed onto one day (first_day - 1, last_day +
    1) before the running sums. A one-day refresh then sorts about three days per group
    instead of the sixty its lines span. -#}
{% macro marts_trailing_window(name, daily, buyer_days, keys, last_day, first_day=none, window_days=30) -%}
{%- set key_list = keys | join(', ') -%}
{%- set last = window_days - 1 -%}
{%- set collapsed_day = 'least(change_day, cast(' ~ dbt.dateadd('day', 1, last_day) ~ ' as date))' -%}
{%- if first_day -%}
    {%- set collapsed_day = 'greatest(' ~ collapsed_day ~ ', cast(' ~ dbt.dateadd('day', -1, marts_date_literal(first_day)) ~ ' as date))' -%}
{%- endif -%}
{{ name }}_spans as (
    select
        {{ key_list }},
        order_date as span_start,
        coalesce(
            least(
                cast({{ dbt.dateadd('day', last, 'order_date') }} as date),
                cast({{ dbt.dateadd('day', -1, 'lead(order_date) over (partition by ' ~ key_list ~ ', buyer_id order by order_date)') }} as date)
            ),
            cast({{ dbt.dateadd('day', last, 'order_date') }} as date)
        ) as span_end
    from {{ buyer_days }}
),

{{ name }}_changes as (
    select
        {{ key_list }},
        day,
        sum(buyers) as buyers,
        sum(orders) as orders,
        sum(gmv) as gmv
    from (
        select {{ key_list }}, {{ collapsed_day }} as day, buyers, orders, gmv
        from (
            select {{ key_list }}, span_start as change_day, 1 as buyers, 0 as orders, 0 as gmv
            from {{ name }}_spans
            union all
            select {{ key_list }}, cast({{ dbt.dateadd('day', 1, 'span_end') }} as date), -1, 0, 0
            from {{ name }}_spans
            union all
            select {{ key_list }}, order_date, 0, orders, gmv
            from {{ daily }}
            union all
            select {{ key_list }}, cast({{ dbt.dateadd('day', window_days, 'order_date') }} as date), 0, -orders, -gmv
            from {{ daily }}
        ) as signed_changes
    ) as collapsed_changes
    group by {{ key_list }}, day
),

-- the window's figures from one change to the next (piece_end excluded)
{{ name }}_pieces as (
    select
        {{ key_list }},
        day as piece_start,
        lead(day) over (partition by {{ key_list }} order by day) as piece_end,
        sum(buyers) over (partition by {{ key_list }} order by day rows between unbounded preceding and current row) as buyers,
        sum(orders) over (partition by {{ key_list }} order by day rows between unbounded preceding and current row) as orders,
        sum(gmv) over (partition by {{ key_list }} order by day rows between unbounded preceding and current row) as gmv
    from {{ name }}_changes
),

{{ name }}_offsets as (
    {%- for k in range(window_days) %}
    select {{ k }} as k{{ " union all" if not loop.last }}
    {%- endfor %}
),

{{ name }} as (
    select
        {%- for c in keys %}
        p.{{ c }},
        {%- endfor %}
        cast({{ dbt.dateadd('day', 'o.k', 'p.piece_start') }} as date) as as_of_date,
        cast(p.buyers as bigint) as buyers,
        cast(p.orders as bigint) as orders,
        p.gmv
    from {{ name }}_pieces as p
    cross join {{ name }}_offsets as o
    -- a window that holds an order always ends with a change (the order's day + window_days)
    where p.orders > 0
        and {{ dbt.dateadd('day', 'o.k', 'p.piece_start') }} < p.piece_end
        and {{ dbt.dateadd('day', 'o.k', 'p.piece_start') }} <= {{ last_day }}
        {%- if first_day %}
        and {{ dbt.dateadd('day', 'o.k', 'p.piece_start') }} >= {{ marts_date_literal(first_day) }}
        {%- endif %}
)
{%- endmacro %}

{#- The figures of marts_trailing_window (same CTE `name`, same columns) for the days
    first_day .. last_day (literals), straight from the lines: each day's window is one
    aggregation of the lines of its window_days days, its distinct buyers and orders
    counted directly. `lines`: keys, order_date, order_id, buyer_id, paid_amount.
    Cheaper than the spans when one day is asked (a daily refresh: no sort of the window's
    buyer days, no running sums), dearer for several (each day reads its whole window
    again): at `target3x` the affinity's two windows for one day took 31.8 s this way, for
    three days 136.2 s, and its model in the day's run went from 97.8 s by spans to
    43.5-49.1 s (docs/benchmarks.md, twelfth round). The caller chooses. -#}
{% macro marts_trailing_window_by_day(name, lines, keys, first_day, last_day, window_days=30) -%}
{{ name }}_days as (
    {{ marts_days(first_day, last_day) }}
),

{{ name }} as (
    select
        {%- for c in keys %}
        l.{{ c }},
        {%- endfor %}
        d.day as as_of_date,
        cast(count(distinct l.buyer_id) as bigint) as buyers,
        cast(count(distinct l.order_id) as bigint) as orders,
        sum(l.paid_amount) as gmv
    from {{ name }}_days as d
    inner join {{ lines }} as l
        on l.order_date <= d.day
        and l.order_date > cast({{ dbt.dateadd('day', -window_days, 'd.day') }} as date)
    group by {% for c in keys %}l.{{ c }}, {% endfor %}d.day
)
{%- endmacro %}
