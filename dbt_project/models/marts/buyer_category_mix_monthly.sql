{#- buyer_demographics_monthly per product category (outputs.md): per month x category x
    buyer city tier x gender. A buyer counts in every category they bought in that month;
    orders are the orders with at least one line of the category; gmv the category's lines.
    share_of_buyers / share_of_gmv are relative to the month's and category's total row.
    Suppression as in buyer_demographics_monthly, per month and category (a category's
    total row under 10 buyers is hidden too), linked with buyer_demographics_monthly
    because gmv adds up across categories (macros/marts_suppression.sql,
    marts_buyer_marts_linked; both models run the same macro over the measures of
    int_marts__buyer_cells). No buyer ids leave this model. -#}
with
{{ marts_buyer_marts_linked(ref('int_marts__buyer_cells'), 'category_mix') }}
