{#- Per month x buyer city tier x gender (outputs.md), over the buyers of attributed orders
    (organic orders are not programme activity). Buyer attributes are the buyer profile's
    latest version; a buyer without a profile counts with an empty tier and gender.
    new_buyers: buyers whose first attributed order (in all loaded data) falls in the month.
    Cells with fewer than 10 buyers are suppressed, and more cells and the month's total
    row where arithmetic could otherwise recover one, also across
    buyer_category_mix_monthly (macros/marts_suppression.sql, marts_buyer_marts_linked:
    both models run the same macro over the measures of int_marts__buyer_cells, computed
    once for both). No buyer ids leave this model. -#}
with
{{ marts_buyer_marts_linked(ref('int_marts__buyer_cells'), 'demographics') }}
