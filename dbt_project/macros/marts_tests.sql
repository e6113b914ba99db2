{#- Generic data tests of the marts' layer. (Not in generic_tests.sql: that file counts in
    the staging code's fingerprint, supernova/staging.py, and a change there rebuilds staging.) -#}

{#- Every row of one `key` value has the same value of each of `columns` (a null counts as
    a value: nulls mixed with values fail too). The marts sum per-day and per-buyer figures
    that are only exact when an order has one date, buyer and promoter
    (int_marts__attributed_lines; docs/marts.md "Trailing windows"). -#}
{% test one_value_per_key(model, key, columns) %}
select {{ key }}
from {{ model }}
group by {{ key }}
having
    {%- for c in columns %}
    {{ "or " if not loop.first }}min({{ c }}) <> max({{ c }})
    or count({{ c }}) not in (0, count(*))
    {%- endfor %}
{% endtest %}
