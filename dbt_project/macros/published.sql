{#- Published settlement tables (schema `settlement`) are written by the publish step
    (supernova/publish.py), never by dbt: they are the append-only ledger. Before the first
    publish they do not exist; models then read an empty relation with the same columns. -#}
{% macro published_or_empty(table, empty_select) -%}
    {%- set rel = adapter.get_relation(database=target.database, schema='settlement', identifier=table) if execute else none -%}
    {%- if rel is not none -%}
        {{ source('settlement_published', table) }}
    {%- else -%}
        ({{ empty_select }} where 1 = 0)
    {%- endif -%}
{%- endmacro %}
