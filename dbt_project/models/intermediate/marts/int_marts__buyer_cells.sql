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
    marts_buyer_cells). Aggregates only: no buyer ids. -#}
with
{{ marts_buyer_lines() }},

{{ marts_buyer_cells('lines', 'first_month') }}
