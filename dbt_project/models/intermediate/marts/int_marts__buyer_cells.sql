{#- The buyer marts' measures (buyers, new buyers, orders, gmv), computed once for both
    marts: buyer_demographics_monthly and buyer_category_mix_monthly are suppressed
    together (macros/marts_suppression.sql, marts_buyer_marts_linked), so both need all
    four grains: computed here once, not by each mart from every attributed line. One row
    per grain and cell:
      category_cell  : month x category x city_tier x gender
      category_total : month x category
      month_cell     : month x city_tier x gender
      month_total    : month
    Columns a grain does not group by are null (macros/marts_suppression.sql,
    marts_buyer_cells). Aggregates only: no buyer ids.
    Incremental by month: a refresh recomputes whole the months the files it has not
    consumed can change, not every month of history (macros/marts_months.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ buyer_cells_pre_hook() }}",
    post_hook="{{ buyer_cells_post_hook() }}",
) }}
{%- set scope = buyer_cells_scope() %}
with
{{ marts_buyer_lines(scope) }},

{{ marts_buyer_cells('lines', 'first_month') }}
