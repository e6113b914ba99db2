{#- The few generic tests dbt_utils would give us (the package hub is out of reach). -#}

{% test expression_is_true(model, expression, column_name=none, where_clause=none) %}
select *
from {{ model }}
where not ({{ expression }})
{%- if where_clause %} and ({{ where_clause }}){% endif %}
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns, new_files_of=none) %}
{#- NULLs compare equal here: a tier-bonus row's empty order/line/level is part of its key.
    `new_files_of` (an export, for the versions views): the keys of the files not staged
    yet, counted over every row (macros/staging_key_checks.sql). -#}
{%- if new_files_of is not none -%}
{{ staging_versions_key_collisions(model, combination_of_columns, new_files_of) }}
{%- else -%}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{%- endif %}
{% endtest %}
