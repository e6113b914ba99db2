{#- SQL that differs between the engines, behind adapter.dispatch (docs/spark.md). -#}

{#- A struct value from [(field name, expression), ...]; structs compare field by field
    in both engines, so max()/min() over one picks a whole "row" by a composite key. -#}
{% macro struct_of(fields) -%}
    {{ return(adapter.dispatch('struct_of')(fields)) }}
{%- endmacro %}

{% macro default__struct_of(fields) -%}
    struct_pack({%- for name, expr in fields %}{{ name }} := {{ expr }}{{ ", " if not loop.last }}{%- endfor %})
{%- endmacro %}

{% macro spark__struct_of(fields) -%}
    named_struct({%- for name, expr in fields %}'{{ name }}', {{ expr }}{{ ", " if not loop.last }}{%- endfor %})
{%- endmacro %}
