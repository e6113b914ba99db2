{#- One row of settlement_checks: how many rows violate an invariant and up to five of
    their keys as examples, for the gate's report. -#}
{% macro invariant_check(name, description, violations_relation, key_expr) -%}
select
    '{{ name }}' as check_name,
    '{{ description | replace("'", "''") }}' as description,
    (select count(*) from {{ violations_relation }}) as violations,
    (
        select string_agg(example_key, '; ')
        from (
            select {{ key_expr }} as example_key
            from {{ violations_relation }}
            order by 1
            limit 5
        ) as ex
    ) as examples
{%- endmacro %}

{% macro line_key(prefix='') -%}
    {{ prefix }}order_id || '#' || cast({{ prefix }}line_no as {{ dbt.type_string() }})
{%- endmacro %}
