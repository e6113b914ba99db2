{#- What each promoter's crowd buys (千人千面, outputs.md): per as_of_date x promoter x
    platform x category, over the 30 days ending with as_of_date (as_of_date - 29 ..
    as_of_date, as group_status counts "the last 30 days"):
      buyers, orders, gmv         : distinct buyers, distinct attributed orders with a line of
                                    the category, and the paid amount of those lines;
      share_of_promoter_gmv       : gmv / the promoter's gmv over all categories;
      lift                        : share_of_promoter_gmv / the platform's share of the same
                                    category (the category's gmv over all the platform's
                                    promoters / the platform's gmv, same 30 days): 1 = like
                                    the platform, 2 = twice as much.
    Ratios are exact DECIMALs rounded half away from zero to 6 decimals (marts_ratio).
    A row exists for every day on which the promoter had an order of the category in the
    last 30 days (up to the last delivered day). Small cells are suppressed as in the
    buyer marts (macros/marts_suppression.sql), per as_of_date and promoter: a cell under
    10 buyers, and more cells where the promoter's total (which the shares imply) minus the
    visible cells would give one away. Category from the skus export ('unknown' when
    missing); platform: the promoter's latest version (as in group_status). No buyer ids.
    Incremental by as_of_date: recomputes from the first date new deliveries can change.
    A first build, a full refresh or a refresh of several days takes the 30-day figures
    from each day's figures by running sums (macros/marts_windows.sql): no line is joined
    to the 30 days it counts on, and no distinct count spans a window. A refresh of the
    last delivered day alone (the daily run) counts that one window straight from its
    lines, which is cheaper for one day (docs/marts.md "Trailing windows"). -#}
{%- set refresh_from = marts_incremental('as_of_date', ['orders', 'clicks', 'skus']) -%}
{%- set lines_from = none -%}
{#- A refresh of the last delivered day alone (the daily run) counts that day's window
    straight from its lines (marts_trailing_window_by_day); a longer one, a first build
    or a full refresh goes by the spans. A refresh that starts after the last delivered
    day has no day to compute. -#}
{%- set by_day = false -%}
{%- set last_day = none -%}
{%- if execute and refresh_from -%}
    {%- set lines_from = (modules.datetime.date.fromisoformat(refresh_from) - modules.datetime.timedelta(days=29)).isoformat() -%}
    {%- set last_day = marts_bounds().last_day -%}
    {%- set by_day = last_day is not none and refresh_from >= (last_day | string) -%}
{%- endif %}

with lines as (
    select
        l.order_date,
        l.order_id,
        l.buyer_id,
        l.paid_amount,
        l.promoter_id,
        coalesce(p.platform, 'unknown') as platform,
        coalesce(s.category, 'unknown') as category
    from {{ ref('int_marts__attributed_lines') }} as l
    left join {{ ref('stg_exports__skus') }} as s
        on s.sku_id = l.sku_id
    left join {{ ref('int_marts__promoters_current') }} as p
        on p.promoter_id = l.promoter_id
    {%- if lines_from %}
    where l.order_date >= {{ marts_date_literal(lines_from) }}
    {%- endif %}
),

{%- if by_day %}
{#- the one day, or none when the refresh starts after the last delivered day -#}
{%- set day = refresh_from if refresh_from == (last_day | string) else none %}
{{ marts_trailing_window_by_day('cell_windows', 'lines', ['promoter_id', 'platform', 'category'], day, last_day) }},

{{ marts_trailing_window_by_day('total_windows', 'lines', ['promoter_id', 'platform'], day, last_day) }},
{%- else %}
-- each day's orders and gmv, and who bought, per cell and per promoter (all categories)
cell_days as (
    select promoter_id, platform, category, order_date,
        count(distinct order_id) as orders, sum(paid_amount) as gmv
    from lines
    group by promoter_id, platform, category, order_date
),

cell_buyer_days as (
    select distinct promoter_id, platform, category, buyer_id, order_date
    from lines
),

total_days as (
    select promoter_id, platform, order_date,
        count(distinct order_id) as orders, sum(paid_amount) as gmv
    from lines
    group by promoter_id, platform, order_date
),

total_buyer_days as (
    select distinct promoter_id, platform, buyer_id, order_date
    from lines
),

-- the recomputed days end with the last delivered day (the marts' calendar, marts_bounds)
{%- set last_delivered_day = "(select max(_delivery_date) from " ~ ref('stg_exports__order_versions') ~ ")" %}
{{ marts_trailing_window('cell_windows', 'cell_days', 'cell_buyer_days',
                         ['promoter_id', 'platform', 'category'], last_delivered_day, refresh_from) }},

{{ marts_trailing_window('total_windows', 'total_days', 'total_buyer_days',
                         ['promoter_id', 'platform'], last_delivered_day, refresh_from) }},
{%- endif %}

cells as (
    select as_of_date, promoter_id, platform, category, buyers, 0 as new_buyers, orders, gmv
    from cell_windows
),

totals as (
    select as_of_date, promoter_id, platform, buyers, 0 as new_buyers, orders, gmv
    from total_windows
),

platform_totals as (
    select as_of_date, platform, sum(gmv) as platform_gmv
    from totals
    group by as_of_date, platform
),

platform_category as (
    select
        c.as_of_date,
        c.platform,
        c.category,
        sum(c.gmv) as category_gmv,
        max(p.platform_gmv) as platform_gmv
    from cells as c
    inner join platform_totals as p
        on p.as_of_date = c.as_of_date and p.platform = c.platform
    group by c.as_of_date, c.platform, c.category
),

-- the cells with their suppression flags (macros/marts_suppression.sql)
suppressed as (
    with
    {{ marts_suppressed_cells('cells', 'totals', ['as_of_date', 'promoter_id', 'platform'], ['category'],
                              [dbt.type_string()], total_rows=false) }}
)

select
    s.as_of_date,
    s.promoter_id,
    s.platform,
    s.category,
    s.buyers,
    s.orders,
    s.gmv,
    s.share_of_gmv as share_of_promoter_gmv,
    case when not s.suppressed then
        cast({{ marts_ratio('c.gmv * pc.platform_gmv', 't.gmv * pc.category_gmv', 6) }} as decimal(18,6))
    end as lift,
    s.suppressed
from suppressed as s
inner join cells as c
    on c.as_of_date = s.as_of_date and c.promoter_id = s.promoter_id
    and c.platform = s.platform and c.category = s.category
inner join totals as t
    on t.as_of_date = s.as_of_date and t.promoter_id = s.promoter_id and t.platform = s.platform
inner join platform_category as pc
    on pc.as_of_date = s.as_of_date and pc.platform = s.platform and pc.category = s.category
