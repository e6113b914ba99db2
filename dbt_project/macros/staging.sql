{#- Incremental staging (docs/architecture.md, "Staging is incremental").

    A staging model keeps one row per key of its export: the version delivered last (§0).
    A newly delivered file can only change the keys it contains, so on DuckDB each
    staging model is an incremental model (delete+insert on its key) that recomputes
    exactly those keys from *all* their raw versions, old and new, and replaces them.
    The result is the same as deduplicating the whole history (tests/test_staging.py
    proves it row for row), but a run reads one delivery's worth of keys instead of every
    row ever delivered.

    Which files are new is recorded per model in `<staging schema>.staged_files`
    (model, file_path, sha256, ingest_run_id: the manifest row of the load, not the bytes
    alone): a post-hook adds every loaded file of the export once the model is built, in
    the same transaction (a failed build records nothing; a full build records everything
    it read). Not sha256 alone: the same bytes can be loaded again under another path (a
    re-sent copy, first a `duplicate`, is read when the file it duplicated is changed in
    place), with a later delivery date that can make its rows win; a record by bytes
    would call that load staged and never read it. A file recorded but whose rows all lost to later versions is
    never looked at again, so a daily snapshot export stays O(one day). Re-staging a
    file is always harmless: the keys it touches are recomputed from raw.

    A landing file changed in place supersedes its earlier load (docs/ingestion.md): the
    earlier rows leave the raw view (manifest status `superseded`). The keys they touched
    are recomputed too: on an incremental run, every key whose staged row came from the
    superseded file's path (`_file_name`; a row that lost to another version is not in
    staging and its removal changes nothing), and the post-hook deletes the staged rows of
    that path whose key no longer exists in raw at all (e.g. an event_id that was cut
    short in a half-written file). Handled supersessions are recorded per model in
    `<staging schema>.withdrawn_files` (model, file_path, sha256, ingest_run_id: the
    superseded manifest row), so each is handled once.

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
        {{ _staging_unrecorded_files(export, tracked) }}
        order by 2, 1
    {%- endset -%}
    {{ return(run_query(sql).rows) }}
{%- endmacro %}

{#- FROM/WHERE of the manifest rows (alias m) of `export`'s loaded files that `tracked`
    does not record for this model. `manifest`: the relation to read it from (a model
    downstream of staging passes ref('stg_exports__manifest')). -#}
{% macro _staging_unrecorded_files(export, tracked, manifest=none) -%}
    from {{ manifest if manifest is not none else source('exports', 'manifest') }} as m
        where m.export = '{{ export }}'
            and m.status = 'loaded'
            and not exists (
                select 1 from {{ tracked }} as s
                where s.model = '{{ this.identifier }}' and {{ staging_same_load('s', 'm') }}
            )
{%- endmacro %}

{#- Two rows naming the same load of a landing file (a manifest row's identity). -#}
{% macro staging_same_load(left, right) -%}
    {{ left }}.file_path = {{ right }}.file_path and {{ left }}.sha256 = {{ right }}.sha256
                    and {{ left }}.ingest_run_id = {{ right }}.ingest_run_id
{%- endmacro %}

{% macro withdrawn_files_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=generate_schema_name('staging', none), identifier='withdrawn_files')) }}
{%- endmacro %}

{#- FROM/WHERE of the manifest rows (alias m) of `export`'s superseded files whose
    withdrawal this model has not handled yet. -#}
{% macro _staging_unhandled_withdrawals(export, withdrawn, manifest=none) -%}
    from {{ manifest if manifest is not none else source('exports', 'manifest') }} as m
        where m.export = '{{ export }}'
            and m.status = 'superseded'
            and not exists (
                select 1 from {{ withdrawn }} as w
                where w.model = '{{ this.identifier }}' and {{ staging_same_load('w', 'm') }}
            )
{%- endmacro %}

{#- The landing paths whose earlier load was superseded since this model last handled it
    (a list of strings; empty when nothing is pending or no record table exists). -#}
{% macro staging_withdrawn_paths(export, manifest=none) -%}
    {%- set rel = withdrawn_files_relation() -%}
    {%- set tracked = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {%- if tracked is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set sql -%}
        select distinct m.file_path {{ _staging_unhandled_withdrawals(export, tracked, manifest) }} order by 1
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values() | list) }}
{%- endmacro %}

{#- `keys` as an SQL condition between two aliases: a list of key columns, or a macro
    computing the key from an alias (order_event_key). -#}
{% macro _staging_keys_equal(keys, left, right) -%}
    {%- if keys is iterable and keys is not string -%}
        {%- for k in keys %}{{ " and " if not loop.first }}{{ left }}.{{ k }} = {{ right }}.{{ k }}{% endfor -%}
    {%- else -%}
        {{ keys(left) }} = {{ keys(right) }}
    {%- endif -%}
{%- endmacro %}

{%- macro _staging_quote_list(values) -%}
    {%- for v in values %}'{{ v | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}

{#- The where-clause of a staging model's select over `from_relation as alias`: on an
    incremental run, only the rows whose key occurs in a new file (all their versions, so
    the dedup that follows picks the same winner a full rebuild would), or whose staged
    row came from a superseded file. Empty otherwise. -#}
{% macro staging_redelivered_only(export, keys, alias, from_relation=none, narrow_by=none) -%}
    {%- if execute and is_incremental() -%}
        {%- set new = staging_new_files(export) -%}
        {%- set withdrawn = staging_withdrawn_paths(export) -%}
        {%- set rel = from_relation if from_relation is not none else source('exports', export) -%}
        {%- if new is none -%}
            {#- nothing recorded: recompute every key -#}
        {%- elif new | length == 0 and withdrawn | length == 0 -%}
            where 1 = 0
        {%- elif new | length == 0 -%}
            where {{ _staging_withdrawn_keys(keys, alias, withdrawn) }}
        {%- else -%}
            {%- set key_cols = keys if (keys is iterable and keys is not string) else none -%}
            {%- set new_files -%}
                redelivered._delivery_date >= cast('{{ new | map(attribute=1) | min }}' as date)
                    and redelivered._file_sha256 in (
                        {%- for r in new %}'{{ r[0] }}'{{ ", " if not loop.last }}{% endfor -%}
                    )
            {%- endset %}
            where
            {%- if narrow_by is not none %}
                -- plain columns of which every version of a key shares one (a list: any of
                -- them): cheap hash semi-joins first, so the computed key is only built for
                -- the rows that can match
                {%- set narrow_columns = [narrow_by] if narrow_by is string else narrow_by %}
                (
                {%- for c in narrow_columns %}
                {{ "or " if not loop.first }}{{ alias }}.{{ c }} in (
                    select redelivered.{{ c }} from {{ rel }} as redelivered
                    where {{ new_files }} and redelivered.{{ c }} is not null
                )
                {%- endfor %}
                ) and
            {%- endif %}
            exists (
                select 1
                from {{ rel }} as redelivered
                -- a literal lower bound lets the Parquet scan skip older files by statistics
                where {{ new_files }}
                    {%- if key_cols is not none %}
                    {%- for k in key_cols %}
                    and redelivered.{{ k }} = {{ alias }}.{{ k }}
                    {%- endfor %}
                    {%- else %}
                    and {{ keys('redelivered') }} = {{ keys(alias) }}
                    {%- endif %}
            )
            {%- if withdrawn | length > 0 %}
            or {{ _staging_withdrawn_keys(keys, alias, withdrawn) }}
            {%- endif %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Rows of `alias` whose key is staged from one of the `paths` (superseded files). -#}
{% macro _staging_withdrawn_keys(keys, alias, paths) -%}
    exists (
                select 1 from {{ this }} as withdrawn
                where withdrawn._file_name in ({{ _staging_quote_list(paths) }})
                    and {{ _staging_keys_equal(keys, 'withdrawn', alias) }}
            )
{%- endmacro %}

{#- on-run-start: the record table exists before any staging model runs (once, not per
    model: models build on parallel threads and DuckDB refuses concurrent creates).
    A record written before it named the load (model, sha256 only) cannot be trusted (a
    re-sent copy may be recorded under its twin's bytes), so it is dropped: with no record
    every staging model recomputes every key and every daily model everything (exact,
    slow once); and since this code differs from the code that built staging, the
    supernova build is a full refresh anyway, logged with that reason
    (supernova/staging.py). -#}
{% macro staging_track_files() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set rel = staged_files_relation() -%}
        {%- set existing = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) if execute else none -%}
        {%- set by_sha_alone = existing is not none and 'ingest_run_id' not in (adapter.get_columns_in_relation(existing) | map(attribute='name') | list) -%}
        {#- (the column query opened a transaction, which the runner rolls back after the
            hook: close it, so that the statements below commit as hooks do) -#}
        {%- if existing is not none %}{% do adapter.commit() %}{% endif -%}
        {%- if by_sha_alone %}
        drop table {{ rel }};
        {%- endif %}
        create schema if not exists {{ rel.without_identifier() }};
        create table if not exists {{ rel }} (
            model {{ dbt.type_string() }},
            file_path {{ dbt.type_string() }},
            sha256 {{ dbt.type_string() }},
            ingest_run_id {{ dbt.type_string() }}
        );
        create table if not exists {{ withdrawn_files_relation() }} (
            model {{ dbt.type_string() }},
            file_path {{ dbt.type_string() }},
            sha256 {{ dbt.type_string() }},
            ingest_run_id {{ dbt.type_string() }}
        )
    {%- endif -%}
{%- endmacro %}

{#- Post-hook (inside the model's transaction): record every loaded file of the export
    as staged into this model. Nothing writes the raw layer during a dbt invocation, so
    these are exactly the files the model's select saw. Then the superseded files: the
    staged rows of their paths whose key no longer exists in raw (the select could not
    replace them: nothing is left to recompute them from) are deleted, and the
    supersessions are recorded as handled. `keys` as for staging_redelivered_only. -#}
{% macro staging_record_files(export, keys=none) -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set rel = staged_files_relation() -%}
        {%- set withdrawn_rel = withdrawn_files_relation() -%}
        {%- set paths = staging_withdrawn_paths(export) if execute else [] -%}
        {%- if paths | length > 0 and keys is not none %}
        delete from {{ this }} as stale
        where stale._file_name in ({{ _staging_quote_list(paths) }})
            and not exists (
                select 1 from {{ source('exports', export) }} as current_raw
                where {{ _staging_keys_equal(keys, 'current_raw', 'stale') }}
            );
        {%- endif %}
        {%- if paths | length > 0 %}
        delete from {{ rel }} as done
        where done.model = '{{ this.identifier }}'
            and exists (
                select 1 {{ _staging_unhandled_withdrawals(export, withdrawn_rel) }}
                    and {{ staging_same_load('done', 'm') }}
            );
        {%- endif %}
        insert into {{ withdrawn_rel }} (model, file_path, sha256, ingest_run_id)
        select '{{ this.identifier }}', m.file_path, m.sha256, m.ingest_run_id
        {{ _staging_unhandled_withdrawals(export, withdrawn_rel) }};
        insert into {{ rel }} (model, file_path, sha256, ingest_run_id)
        select '{{ this.identifier }}', m.file_path, m.sha256, m.ingest_run_id
        {{ _staging_unrecorded_files(export, rel) }}
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

{#- Models downstream of staging that are kept incrementally (models/daily/) track the
    files they consumed the same way, in the same tables under their own model name, but
    read the manifest through ref('stg_exports__manifest') (no source() outside staging).
    `manifest` below is that relation. -#}

{#- The loaded files of `export` this model has not consumed yet, as rows
    (file_path, delivery_date 'YYYY-MM-DD'); none when this model has recorded nothing
    (never built incrementally): then it recomputes everything. -#}
{% macro consumed_new_files(export, manifest) -%}
    {%- set rel = staged_files_relation() -%}
    {%- set tracked = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {%- if tracked is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set recorded = run_query("select count(*) from " ~ tracked ~ " where model = '" ~ this.identifier ~ "'").rows[0][0] -%}
    {%- if recorded == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select distinct m.file_path, cast(m.delivery_date as {{ dbt.type_string() }}) as delivery_date
        {{ _staging_unrecorded_files(export, tracked, manifest) }}
        order by 2, 1
    {%- endset -%}
    {{ return(run_query(sql).rows) }}
{%- endmacro %}

{#- The landing paths of `export` whose earlier load was superseded and whose withdrawal
    this model has not handled yet (a list of strings). -#}
{% macro consumed_withdrawn_paths(export, manifest) -%}
    {{ return(staging_withdrawn_paths(export, manifest)) }}
{%- endmacro %}

{#- Post-hook (inside the model's transaction): record every loaded file of `exports` as
    consumed by this model and every pending supersession as handled. -#}
{% macro consumed_record_files(exports, manifest) -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set rel = staged_files_relation() -%}
        {%- set withdrawn_rel = withdrawn_files_relation() -%}
        {%- for export in exports %}
        delete from {{ rel }} as done
        where done.model = '{{ this.identifier }}'
            and exists (
                select 1 {{ _staging_unhandled_withdrawals(export, withdrawn_rel, manifest) }}
                    and {{ staging_same_load('done', 'm') }}
            );
        insert into {{ withdrawn_rel }} (model, file_path, sha256, ingest_run_id)
        select '{{ this.identifier }}', m.file_path, m.sha256, m.ingest_run_id
        {{ _staging_unhandled_withdrawals(export, withdrawn_rel, manifest) }};
        insert into {{ rel }} (model, file_path, sha256, ingest_run_id)
        select '{{ this.identifier }}', m.file_path, m.sha256, m.ingest_run_id
        {{ _staging_unrecorded_files(export, rel, manifest) }}{{ ";" if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}


{#- A full build of a large staging table is written in time order, as the daily merges
    append it: the daily precompute reads only recent rows by literal time bounds
    (int_daily__order_attribution), and DuckDB skips row groups by their min/max only when
    the rows are stored roughly in time order (a full build otherwise writes them in hash
    order, every row group spanning the whole history). Incremental merges append in
    delivery order already; Spark rebuilds without it. -#}
{% macro staging_time_order(time_column) -%}
    {%- if target.type == 'duckdb' and not is_incremental() %}
order by {{ time_column }}
    {%- endif %}
{%- endmacro %}
