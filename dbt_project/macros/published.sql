{#- Published settlement tables (schema `settlement`) are written by the publish step
    (supernova/publish.py), never by dbt: they are the append-only ledger. Before the first
    publish they do not exist; models then read an empty relation with the same columns.
    source() is called unconditionally so that parsing records the dependency (lineage,
    `source:settlement_published+`); only the existence check waits for execution. -#}
{% macro published_or_empty(table, empty_select) -%}
    {%- set published = source('settlement_published', table) -%}
    {%- set existing = adapter.get_relation(database=published.database, schema=published.schema, identifier=published.identifier) if execute else none -%}
    {%- if existing is not none -%}
        {{ published }}
    {%- else -%}
        ({{ empty_select }} where 1 = 0)
    {%- endif -%}
{%- endmacro %}
