{#- Every order line of every programme (attributed) order, with the order's attribution.
    settlement-rules §1 over ALL orders, not only the lines settled in a month: an order is
    attributed by its lowest line's buyer and ordered_at to the last click in the window,
    as precomputed every day (int_daily__order_attribution, the rows settlement reads).
    Organic orders (no click) are not here; neither are orders whose last click's link is
    unknown (settlement puts them in suspense; the marts cannot place them). All lines of
    an order carry the order's date (its lowest line's ordered_at). Holds buyer ids:
    tagged pii, never BI-facing. Incremental: a daily refresh recomputes only the order
    dates that the files it has not consumed yet can change, whatever their delivery date
    (macros/marts_incremental.sql); its data tests read the orders with a line written
    since they last passed (macros/marts_tests_window.sql). -#}
{%- set parts = ['orders', 'clicks'] -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    tags=['pii'],
    pre_hook=[
        "{{ marts_tests_window_pre('order_date', " ~ parts ~ ", 'order_id') }}",
        "{{ marts_delete_from('order_date', " ~ parts ~ ") }}",
    ],
    post_hook=[
        "{{ marts_record_consumed(" ~ parts ~ ") }}",
        "{{ marts_tests_window_check('order_date') }}",
    ],
) }}
{%- set refresh_from = marts_refresh_from('order_date', parts) %}

with attributed as (
    select order_id, buyer_id, ordered_at, click_id, link_id
    from {{ ref('int_daily__order_attribution') }}
    where is_attributed
        and {{ marts_refresh_filter('cast(ordered_at as date)', refresh_from) }}
)

select
    cast(a.ordered_at as date) as order_date,
    l.order_id,
    l.line_no,
    a.ordered_at,
    a.buyer_id,
    l.sku_id,
    l.quantity,
    l.paid_amount,
    a.click_id,
    a.link_id,
    k.promoter_id,
    k.group_id
from attributed as a
inner join {{ ref('stg_exports__links') }} as k
    on k.link_id = a.link_id
inner join {{ ref('stg_exports__orders') }} as l
    on l.order_id = a.order_id
