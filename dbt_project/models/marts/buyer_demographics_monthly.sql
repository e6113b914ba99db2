{#- Per month x buyer city tier x gender (outputs.md), over the buyers of attributed orders
    (organic orders are not programme activity). Buyer attributes are the buyer profile's
    latest version; a buyer without a profile counts with an empty tier and gender.
    new_buyers: buyers whose first attributed order (in all loaded data) falls in the month.
    Cells with fewer than 10 buyers are suppressed, and more cells and the month's total
    row where arithmetic could otherwise recover one, also across
    buyer_category_mix_monthly (macros/marts_suppression.sql, marts_buyer_marts_linked:
    both models run the same macro, so `lines` carries the category). No buyer ids leave
    this model. -#}
with lines as (
    select
        cast({{ dbt.date_trunc('month', 'l.order_date') }} as date) as month,
        coalesce(s.category, 'unknown') as category,
        l.order_id,
        l.buyer_id,
        l.paid_amount,
        b.city_tier,
        b.gender
    from {{ ref('int_marts__attributed_lines') }} as l
    left join {{ ref('stg_exports__buyers') }} as b
        on b.buyer_id = l.buyer_id
    left join {{ ref('stg_exports__skus') }} as s
        on s.sku_id = l.sku_id
),

first_month as (
    select buyer_id, min(month) as first_month
    from lines
    group by buyer_id
),

{{ marts_buyer_marts_linked('lines', 'first_month', 'demographics') }}
