{#- The product list promoters see (outputs.md): per SKU and day, from the day the SKU was
    first delivered to the last delivered day.
      positive_review_rate : the SKU's value as delivered by that day (latest delivery on
                             or before it);
      commission_rate      : the rate in force at the end of the day (the rate a share made
                             now earns; orders earn the rate in force at ordered_at, which
                             differs on a day a rule changes after midnight), by
                             settlement-rules §2 precedence (rate_in_force): sku rule >
                             merchant rule > category rule (self-operated SKUs only); no
                             rule: 0;
      attributed_orders_30d, gmv_30d : attributed orders with a line of the SKU ordered in
                             the 30 days ending that day, and those lines' paid amount;
      rank                 : 1 = first. Ordered by expected earnings quality
                             positive_review_rate x commission_rate (high review rate and high
                             commission rate first), then review rate, commission rate,
                             gmv_30d, sku_id. SKUs without a review rate count it as 0.
    Incremental by ranking_date. -#}
{%- set refresh_from = marts_incremental('ranking_date', ['orders', 'clicks', 'skus', 'rules']) -%}
{%- set bounds = marts_bounds() -%}
{#- never before the first day: a refresh of everything may start earlier (the model's
    first row, when the first order day moved later) -#}
{%- set compute_from = ([refresh_from, bounds.first_day | string] | max) if refresh_from and bounds.first_day
    else (refresh_from or bounds.first_day) %}

with days as (
    {{ marts_days(compute_from, bounds.last_day) }}
),

-- a SKU's attributes as delivered by each day: the version delivered last on a delivery date
sku_deliveries as (
    select sku_id, merchant_id, category, is_self_operated, positive_review_rate, _delivery_date
    from {{ ref('stg_exports__sku_versions') }}
    qualify row_number() over (partition by sku_id, _delivery_date order by {{ delivered_last() }}) = 1
),

sku_versions as (
    select
        sku_id, merchant_id, category, is_self_operated, positive_review_rate,
        _delivery_date as valid_from,
        lead(_delivery_date) over (partition by sku_id order by _delivery_date) as valid_to
    from sku_deliveries
),

sku_days as (
    select
        d.day as ranking_date,
        {{ dbt.dateadd('day', 1, 'd.day') }} as next_midnight,
        v.sku_id, v.merchant_id, v.category, v.is_self_operated, v.positive_review_rate
    from days as d
    inner join sku_versions as v
        on v.valid_from <= d.day
        and (v.valid_to is null or d.day < v.valid_to)
),

-- the rate in force at the end of the day: just before the next midnight
rated_sku_days as (
    {{ rate_in_force('sku_days', [
        'ranking_date', 'sku_id', 'merchant_id', 'category', 'is_self_operated', 'positive_review_rate'
    ], 'next_midnight', just_before=true) }}
),

sku_daily as (
    select
        order_date,
        sku_id,
        count(distinct order_id) as orders,
        sum(paid_amount) as gmv
    from {{ ref('int_marts__attributed_lines') }}
    {%- if compute_from %}
    where order_date >= {{ dbt.dateadd('day', -29, marts_date_literal(compute_from)) }}
    {%- endif %}
    group by order_date, sku_id
),

-- distinct orders over 30 days: an order is on one date, so daily distinct counts add up
last_30d as (
    select
        s.ranking_date,
        s.sku_id,
        sum(a.orders) as orders_30d,
        sum(a.gmv) as gmv_30d
    from sku_days as s
    inner join sku_daily as a
        on a.sku_id = s.sku_id
        and a.order_date <= s.ranking_date
        and a.order_date > {{ dbt.dateadd('day', -30, 's.ranking_date') }}
    group by s.ranking_date, s.sku_id
),

scored as (
    select
        s.ranking_date,
        s.sku_id,
        s.merchant_id,
        s.category,
        s.is_self_operated,
        s.positive_review_rate,
        s.rate as commission_rate,
        coalesce(a.orders_30d, 0) as attributed_orders_30d,
        coalesce(a.gmv_30d, 0) as gmv_30d
    from rated_sku_days as s
    left join last_30d as a
        on a.ranking_date = s.ranking_date and a.sku_id = s.sku_id
)

select
    ranking_date,
    sku_id,
    merchant_id,
    category,
    is_self_operated,
    cast(positive_review_rate as {{ rate_type() }}) as positive_review_rate,
    cast(commission_rate as {{ rate_type() }}) as commission_rate,
    cast(attributed_orders_30d as integer) as attributed_orders_30d,
    cast(gmv_30d as {{ money_type() }}) as gmv_30d,
    cast(row_number() over (
        partition by ranking_date
        order by
            coalesce(positive_review_rate, 0) * commission_rate desc,
            coalesce(positive_review_rate, 0) desc,
            commission_rate desc,
            gmv_30d desc,
            sku_id asc
    ) as integer) as sku_rank
from scored
