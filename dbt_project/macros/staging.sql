{#- Incremental staging (docs/architecture.md, "Staging is incremental").

    A staging model keeps one row per key of its export: the version delivered last (§0).
    A newly delivered file can only change the keys it contains, so on DuckDB each
    staging model is an incremental model (delete+insert on its key) that recomputes
    exactly those keys from their staged row and their new versions, and replaces them
    (staging_input). The result is the same as deduplicating the whole history
    (tests/test_staging.py proves it row for row), but a run reads one delivery instead
    of every row ever delivered.

    Which files are new is recorded per model in `<staging schema>.staged_files`
    (model, sha256): a post-hook adds every loaded file of the export once the model is
    built, in the same transaction (a failed build records nothing; a full build records
    everything it read). A file recorded but whose rows all lost to later versions is
    never looked at again, so a daily snapshot export stays O(one day). Re-staging a
    file is always harmless: the keys it touches are recomputed from raw.

    On Spark (file_format parquet has no delete) the staging models are plain tables,
    rebuilt every run: same SQL, `is_incremental()` is never true there. -#}

{#- The record table lives in the staging schema (generate_schema_name: 'staging'). -#}
{% macro staged_files_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=generate_schema_name('staging', none), identifier='staged_files')) }}
{%- endmacro %}

{#- The loaded files of `export` not yet staged into this model, as rows
    (sha256, delivery_date 'YYYY-MM-DD'); none when this warehouse keeps no record yet
    (a staging table built before staging was incremental): then every key is recomputed,
    which is slow once and still exact. -#}
{% macro staging_new_files(export) -%}
    {%- set rel = staged_files_relation() -%}
    {%- set tracked = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {%- if tracked is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select m.sha256, cast(m.delivery_date as {{ dbt.type_string() }}) as delivery_date
        from {{ source('exports', 'manifest') }} as m
        where m.export = '{{ export }}'
            and m.status = 'loaded'
            and not exists (
                select 1 from {{ tracked }} as s
                where s.model = '{{ this.identifier }}' and s.sha256 = m.sha256
            )
        order by 2, 1
    {%- endset -%}
    {{ return(run_query(sql).rows) }}
{%- endmacro %}

{#- The rows a staging model deduplicates, as a relation for its FROM clause. A full build:
    every raw version. An incremental build: the rows of the new files, plus the rows this
    model holds for the keys those files touch. The row a key keeps is the greatest of its
    versions in a total order (delivered last, §0), so the greatest of (what is staged,
    the new versions) is the greatest of all versions: the same winner a full rebuild
    picks, reading one delivery instead of the history. `keys`: the key columns, or a
    macro giving the key expression for a table alias; `narrow_by`: a plain column every
    version of a key shares, joined first so that a computed key is built for few rows. -#}
{% macro staging_input(export, keys, narrow_by=none) -%}
    {%- set src = source('exports', export) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ src }}
    {%- else -%}
        {%- set new = staging_new_files(export) -%}
        {%- if new is none -%}
            {#- this warehouse keeps no record of what was staged: recompute every key -#}
            {{ src }}
        {%- elif new | length == 0 -%}
            (select * from {{ src }} where 1 = 0)
        {%- else -%}
            {%- set src_cols = adapter.get_columns_in_relation(src) | map(attribute='name') | list -%}
            {%- set cols = [] -%}
            {%- for c in adapter.get_columns_in_relation(this) | map(attribute='name') -%}
                {%- if c in src_cols %}{% do cols.append(c) %}{% endif -%}
            {%- endfor -%}
            {%- set col_list = cols | join(', ') -%}
            {%- set key_cols = keys if (keys is iterable and keys is not string) else none -%}
            (
                select {{ col_list }}
                from {{ src }} as delivered
                where {{ _staging_new_rows('delivered', new) }}
                union all
                select {{ col_list }}
                from {{ this }} as staged
                where
                {%- if narrow_by is not none %}
                    staged.{{ narrow_by }} in (
                        select n.{{ narrow_by }} from {{ src }} as n where {{ _staging_new_rows('n', new) }}
                    ) and
                {%- endif %}
                    exists (
                        select 1
                        from {{ src }} as n
                        where {{ _staging_new_rows('n', new) }}
                        {%- if key_cols is not none %}
                        {%- for k in key_cols %}
                            and n.{{ k }} = staged.{{ k }}
                        {%- endfor %}
                        {%- else %}
                            and {{ keys('n') }} = {{ keys('staged') }}
                        {%- endif %}
                    )
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The rows of the new files; the literal lower bound on the delivery date lets the
    Parquet scan skip every older file by its statistics. -#}
{% macro _staging_new_rows(alias, new) -%}
    {{ alias }}._delivery_date >= cast('{{ new | map(attribute=1) | min }}' as date)
    and {{ alias }}._file_sha256 in (
        {%- for r in new %}'{{ r[0] }}'{{ ", " if not loop.last }}{% endfor -%}
    )
{%- endmacro %}

{#- on-run-start: the record table exists before any staging model runs (once, not per
    model: models build on parallel threads and DuckDB refuses concurrent creates). -#}
{% macro staging_track_files() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set rel = staged_files_relation() -%}
        create schema if not exists {{ rel.without_identifier() }};
        create table if not exists {{ rel }} (
            model {{ dbt.type_string() }},
            sha256 {{ dbt.type_string() }}
        )
    {%- endif -%}
{%- endmacro %}

{#- Post-hook (inside the model's transaction): record every loaded file of the export
    as staged into this model. Nothing writes the raw layer during a dbt invocation, so
    these are exactly the files the model's select saw. -#}
{% macro staging_record_files(export) -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set rel = staged_files_relation() -%}
        insert into {{ rel }} (model, sha256)
        select '{{ this.identifier }}', m.sha256
        from {{ source('exports', 'manifest') }} as m
        where m.export = '{{ export }}'
            and m.status = 'loaded'
            and not exists (
                select 1 from {{ rel }} as s
                where s.model = '{{ this.identifier }}' and s.sha256 = m.sha256
            )
    {%- endif -%}
{%- endmacro %}

{#- The identity of an order event (§0), as one string so that it can be a unique key:
    event_id when upstream provides one, otherwise the whole parsed row. Text fields are
    length-prefixed, so two different events never map to the same string. -#}
{% macro order_event_key(alias) -%}
    case
        when {{ alias }}.event_id is not null
            then {{ dbt.concat(["'i'", "cast(length(" ~ alias ~ ".event_id) as " ~ dbt.type_string() ~ ")", "':'", alias ~ ".event_id"]) }}
        else {{ dbt.concat([
            "'r'",
            "cast(length(" ~ alias ~ ".order_id) as " ~ dbt.type_string() ~ ")", "':'", alias ~ ".order_id",
            "'|'", "cast(" ~ alias ~ ".line_no as " ~ dbt.type_string() ~ ")",
            "'|'", alias ~ ".event",
            "'|'", "cast(" ~ alias ~ ".event_at as " ~ dbt.type_string() ~ ")",
            "'|'", "coalesce(cast(" ~ alias ~ ".amount as " ~ dbt.type_string() ~ "), '~')"]) }}
    end
{%- endmacro %}
