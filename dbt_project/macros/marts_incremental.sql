{#- Analytics marts (docs/marts.md): the data's date range and the incremental refresh
    window. Both are computed at execution time with run_query, so they become literals in
    the compiled SQL and in the delete pre-hook of the same model: the two always agree,
    because the model is compiled before its pre-hook runs and nothing writes the raw
    layer during a dbt invocation. -#}

{#- The marts' calendar: from the first order day to the last delivered day (the greatest
    delivery date of the orders export), over every delivered version of the orders
    (stg_exports__order_versions). Returns {'first_day': 'YYYY-MM-DD' | none,
    'last_day': 'YYYY-MM-DD' | none}; none when nothing is loaded yet. -#}
{% macro marts_bounds() -%}
    {%- set orders = ref('stg_exports__order_versions') -%}
    {%- if not execute -%}
        {{ return({'first_day': none, 'last_day': none}) }}
    {%- endif -%}
    {%- set sql -%}
        select
            cast(min(cast(ordered_at as date)) as {{ dbt.type_string() }}) as first_day,
            cast(max(_delivery_date) as {{ dbt.type_string() }}) as last_day
        from {{ orders }}
    {%- endset -%}
    {%- set row = run_query(sql).rows[0] -%}
    {{ return({'first_day': row[0], 'last_day': row[1]}) }}
{%- endmacro %}

{% macro marts_date_literal(value) -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#- The first date an incremental mart must recompute, or none for "everything" on a
    first build, --full-refresh or an empty table. Like the daily models, each incremental
    mart records the files it consumed (staging.staged_files / withdrawn_files under its
    own name, macros/staging.sql consumed_*; post-hook marts_record_consumed), so a run
    sees exactly the files delivered since it last ran, whatever their delivery date (a
    correction filed under an old date folder, a second part of an old folder):
      orders : the earliest ordered_at date over all versions of the orders in new files
               (an order's old and new date are both versions of its lines);
      clicks : the earliest clicked_at over all versions of the clicks in new files and of
               the clicks on links in new files (attribution looks 15 days forward from a
               click, so its date is a safe start);
      groups : the new snapshots' dates, any dissolution date of a re-delivered group, and
               the creation date of a group first seen (or whose created_at changed);
      skus   : the delivery date of the new files' rows (sku attributes are taken as
               delivered by that day);
      rules  : for a re-delivered commission rule, the first day its versions differ.
    The result is the earliest of those and W + 1 (W = the greatest date already in the
    model: a new delivered day extends the calendar even without rows of its own).
    A file of those exports changed in place (withdrawn: its earlier rows have left raw,
    so their dates are unknown), or a model that has recorded nothing yet (built before
    the record), recomputes everything (marts_refresh_everything): rare, and exact.
    Attributes joined as "current" (a group's owner, a promoter's platform and role) are
    not restated by an incremental run; a --full-refresh restates them (docs/marts.md).
    The versions are read from the staging versions models (stg_exports__*_versions), and
    only those of `parts` (clicks: also links): the model's lineage shows what it reads. -#}
{% macro marts_refresh_from(date_column, parts) -%}
    {%- set src = marts_versions(parts) -%}
    {%- set manifest = ref('stg_exports__manifest') -%}
    {#- `this` is empty while a dbt unit test compiles the model: a full build -#}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set w_row = run_query('select cast(max(' ~ date_column ~ ') as ' ~ dbt.type_string() ~ '), cast(min('
        ~ date_column ~ ') as ' ~ dbt.type_string() ~ ') from ' ~ this).rows[0] -%}
    {%- if w_row[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set new = {} -%}
    {%- for export in marts_exports(parts) -%}
        {%- set files = consumed_new_files(export, manifest) -%}
        {%- if files is none or consumed_withdrawn_paths(export, manifest) | length > 0 -%}
            {{ return(marts_refresh_everything(w_row[1])) }}
        {%- endif -%}
        {%- do new.update({export: marts_in_files(files)}) -%}
    {%- endfor -%}
    {#- W + 1: a new delivered day extends the calendar even without rows of its own -#}
    {%- set firsts = [(modules.datetime.date.fromisoformat(w_row[0] | string) + modules.datetime.timedelta(days=1)).isoformat()] -%}
    {%- set part_sql = {} -%}
    {%- if 'orders' in parts -%}
    {%- set sql -%}
            select cast(ordered_at as date) as d
            from {{ src.orders }}
            where order_id in (select order_id from {{ src.orders }} where {{ new.orders }})
    {%- endset -%}
    {%- do part_sql.update({'orders': sql}) -%}
    {%- endif -%}
    {%- if 'clicks' in parts -%}
    {%- set sql -%}
            select cast(clicked_at as date) as d
            from {{ src.clicks }}
            where click_id in (select click_id from {{ src.clicks }} where {{ new.clicks }})
            union all
            -- a second select, not an `or` in the first: DuckDB evaluates an `or` of two
            -- semi joins row by row (6-7 s against 1.4 s over the 26M click versions at `today`)
            select cast(clicked_at as date) as d
            from {{ src.clicks }}
            where link_id in (select link_id from {{ src.links }} where {{ new.links }})
    {%- endset -%}
    {%- do part_sql.update({'clicks': sql}) -%}
    {%- endif -%}
    {%- if 'groups' in parts -%}
    {%- set sql -%}
            -- a new snapshot changes the member count from its date, a dissolution the
            -- status from the dissolution date
            select least(snapshot_date, coalesce(cast(dissolved_at as date), snapshot_date)) as d
            from {{ src.groups }}
            where {{ new.groups }}
            union all
            -- a dissolution that an earlier version recorded (and a new one may undo)
            select cast(dissolved_at as date) as d
            from {{ src.groups }}
            where dissolved_at is not null
                and group_id in (select group_id from {{ src.groups }} where {{ new.groups }})
            union all
            -- a group seen for the first time, or whose created_at changed: from its creation
            select min(cast(created_at as date)) as d
            from {{ src.groups }}
            where group_id in (select group_id from {{ src.groups }} where {{ new.groups }})
            group by group_id
            having count(distinct created_at) > 1
                or count(case when not ({{ new.groups }}) then 1 end) = 0
    {%- endset -%}
    {%- do part_sql.update({'groups': sql}) -%}
    {%- endif -%}
    {%- if 'skus' in parts -%}
    {%- set sql -%}
            select _delivery_date as d
            from {{ src.skus }}
            where {{ new.skus }}
    {%- endset -%}
    {%- do part_sql.update({'skus': sql}) -%}
    {%- endif -%}
    {%- if 'rules' in parts -%}
    {%- set sql -%}
            -- a re-delivered rule changes the rate in force from the first point where its
            -- versions differ: its validity start when rate, key or start changed, else the
            -- earlier of the old and new validity ends (one day earlier: the rate "at the
            -- end of a day" looks at the next midnight)
            -- (each key column compared on its own, nulls equal: a rule may carry another
            -- scope's column, which a coalesce of the keys would compare instead of its own)
            select cast({{ dbt.dateadd('day', -1, "case
                    when is_first_version then valid_from
                    when prev_rate is distinct from rate or prev_scope is distinct from scope
                        or prev_sku_id is distinct from sku_id
                        or prev_merchant_id is distinct from merchant_id
                        or prev_category is distinct from category
                        or prev_valid_from is distinct from valid_from
                        then least(valid_from, prev_valid_from)
                    else least(coalesce(valid_to, prev_valid_to), coalesce(prev_valid_to, valid_to))
                end") }} as date) as d
            from (
                select
                    rate, scope, sku_id, merchant_id, category, valid_from, valid_to,
                    _delivery_date, _file_name,
                    row_number() over w = 1 as is_first_version,
                    lag(rate) over w as prev_rate,
                    lag(scope) over w as prev_scope,
                    lag(sku_id) over w as prev_sku_id,
                    lag(merchant_id) over w as prev_merchant_id,
                    lag(category) over w as prev_category,
                    lag(valid_from) over w as prev_valid_from,
                    lag(valid_to) over w as prev_valid_to
                from {{ src.rules }}
                window w as (partition by rule_id order by {{ delivered_last() | replace(' desc', '') }})
            ) as versions
            where {{ new.commission_rules }}
    {%- endset -%}
    {%- do part_sql.update({'rules': sql}) -%}
    {%- endif -%}
    {%- for part in parts -%}
        {%- set d = marts_first_changed_day(part_sql[part]) -%}
        {%- if d is not none -%}
            {%- do firsts.append(d | string) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(firsts | min) }}
{%- endmacro %}

{#- The first date `changed` (a select of dates `d`) holds, as 'YYYY-MM-DD', or none when
    it holds none. Each part of every incremental mart's refresh window is asked at least
    twice per invocation (when the model is compiled and in its delete pre-hook), and most
    marts ask the same parts over the same new files: the answer is computed once per dbt
    invocation and kept in staging.marts_refresh_cache under the invocation id and the
    query's md5 (the same query gives the same answer within an invocation: nothing
    writes the raw layer during it, and the query names the new files and W). At `today`
    each mart's parts took 2-12 s, twice per incremental mart: ~97 s of SQL a day before. -#}
{% macro marts_first_changed_day(changed) -%}
    {%- set query = 'select cast(min(d) as ' ~ dbt.type_string() ~ ') from (' ~ changed ~ '\n) as changed' -%}
    {%- set cache = marts_refresh_cache_relation() -%}
    {%- set key = local_md5(query) -%}
    {%- set hit = run_query("select first_day from " ~ cache ~ " where invocation_id = '" ~ invocation_id
        ~ "' and query_md5 = '" ~ key ~ "' limit 1").rows -%}
    {%- if hit | length > 0 -%}
        {{ return(hit[0][0]) }}
    {%- endif -%}
    {%- set d = run_query(query).rows[0][0] -%}
    {%- do run_query("insert into " ~ cache ~ " values ('" ~ invocation_id ~ "', '" ~ key ~ "', "
        ~ ("null" if d is none else "'" ~ d ~ "'") ~ ")") -%}
    {{ return(d) }}
{%- endmacro %}

{% macro marts_refresh_cache_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=generate_schema_name('staging', none), identifier='marts_refresh_cache')) }}
{%- endmacro %}

{#- on-run-start: the cache of marts_first_changed_day, emptied of earlier invocations'
    answers (only the current invocation's are valid). DuckDB only, like the file records. -#}
{% macro marts_refresh_cache_reset() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as no_cache
    {%- else -%}
        {%- set cache = marts_refresh_cache_relation() -%}
        create schema if not exists {{ cache.without_identifier() }};
        create table if not exists {{ cache }} (
            invocation_id {{ dbt.type_string() }},
            query_md5 {{ dbt.type_string() }},
            first_day {{ dbt.type_string() }}
        );
        delete from {{ cache }} where invocation_id <> '{{ invocation_id }}'
    {%- endif -%}
{%- endmacro %}

{#- The exports a mart reading `parts` consumes (clicks: also links). -#}
{% macro marts_exports(parts) -%}
    {%- set exports = {
        'orders': ['orders'], 'clicks': ['clicks', 'links'], 'groups': ['groups'],
        'skus': ['skus'], 'rules': ['commission_rules'],
    } -%}
    {%- set out = [] -%}
    {%- for part in parts -%}
        {%- do out.extend(exports[part]) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- A condition on a versions model's lineage: the row was delivered in one of `files`
    (consumed_new_files rows: file_path, delivery_date). The literal lower bound on the
    delivery date lets the Parquet scan skip older files by their statistics. -#}
{% macro marts_in_files(files) -%}
    {%- if files | length == 0 -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    {%- set paths = files | map(attribute=0) | unique | list -%}
    {{ return("_delivery_date >= " ~ marts_date_literal(files | map(attribute=1) | min)
        ~ " and _file_name in (" ~ _staging_quote_list(paths) ~ ")") }}
{%- endmacro %}

{#- "Everything" on an incremental run: the earliest date in the model or the marts'
    first day, whichever is earlier, so that the pre-hook deletes every row and the
    select recomputes all of them (a calendar mart starts its days at the first day). -#}
{% macro marts_refresh_everything(model_first_day) -%}
    {%- set first_day = marts_bounds().first_day -%}
    {%- set days = [model_first_day | string] + ([first_day | string] if first_day else []) -%}
    {{ return(days | min) }}
{%- endmacro %}

{#- Post-hook of an incremental mart: record the files of `parts`' exports it consumed
    (and the withdrawals it handled), as the daily models do. -#}
{% macro marts_record_consumed(parts) -%}
    {{ consumed_record_files(marts_exports(parts), ref('stg_exports__manifest')) }}
{%- endmacro %}

{#- The staging versions models of `parts` (orders, clicks, groups, skus, rules; clicks
    brings links), as {part: relation}. Only these are ref()'d, so that parsing records
    exactly the parents a mart reads. -#}
{% macro marts_versions(parts) -%}
    {%- set models = {
        'orders': 'stg_exports__order_versions',
        'clicks': 'stg_exports__click_versions',
        'links': 'stg_exports__link_versions',
        'groups': 'stg_exports__group_versions',
        'skus': 'stg_exports__sku_versions',
        'rules': 'stg_exports__commission_rule_versions',
    } -%}
    {%- set unknown = parts | reject('in', models) | list -%}
    {%- if unknown -%}
        {{ exceptions.raise_compiler_error('marts_refresh_from: unknown parts ' ~ unknown) }}
    {%- endif -%}
    {%- set wanted = parts + (['links'] if 'clicks' in parts else []) -%}
    {%- set relations = {} -%}
    {%- for part in wanted -%}
        {%- do relations.update({part: ref(models[part])}) -%}
    {%- endfor -%}
    {{ return(relations) }}
{%- endmacro %}

{#- The head of an incremental mart: appended by `date_column`, its pre-hook deleting the
    days the run recomputes (marts_delete_from); returns the first of them
    (marts_refresh_from), or none for "everything". A model starts with
    `{%- set refresh_from = marts_incremental(date_column, parts) %}`. -#}
{% macro marts_incremental(date_column, parts) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ marts_tests_window_pre('" ~ date_column ~ "', " ~ parts ~ ") }}",
            "{{ marts_delete_from('" ~ date_column ~ "', " ~ parts ~ ") }}",
        ],
        post_hook=[
            "{{ marts_record_consumed(" ~ parts ~ ") }}",
            "{{ marts_tests_window_check('" ~ date_column ~ "') }}",
        ],
    ) }}
    {{ return(marts_refresh_from(date_column, parts)) }}
{%- endmacro %}

{#- Pre-hook of an incremental mart: its data tests check the rows from the refresh start
    on (macros/marts_tests_window.sql). -#}
{% macro marts_tests_window_pre(date_column, parts, group_column=none) -%}
    {%- set refresh_from = marts_refresh_from(date_column, parts) -%}
    {{ marts_tests_window_open(date_column, marts_date_literal(refresh_from) if refresh_from else none, group_column) }}
{%- endmacro %}

{#- Pre-hook of an incremental mart: remove the days that are recomputed. -#}
{% macro marts_delete_from(date_column, parts) -%}
    {%- set refresh_from = marts_refresh_from(date_column, parts) -%}
    {%- if refresh_from -%}
        delete from {{ this }} where {{ date_column }} >= {{ marts_date_literal(refresh_from) }}
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#- The filter an incremental mart's select ends with. -#}
{% macro marts_refresh_filter(column_expr, refresh_from) -%}
    {%- if refresh_from -%}
        {{ column_expr }} >= {{ marts_date_literal(refresh_from) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- A calendar of days [first_day, last_day] as a relation with one column `day`. -#}
{% macro marts_days(first_day, last_day) -%}
    {%- if first_day and last_day -%}
        select cast(date_day as date) as day
        from (
            {{ dbt.date_spine('day', marts_date_literal(first_day), dbt.dateadd('day', 1, marts_date_literal(last_day))) }}
        ) as spine
    {%- else -%}
        select cast(null as date) as day where 1 = 0
    {%- endif -%}
{%- endmacro %}

{#- An incremental mart records as consumed every loaded file of the exports it follows
    (post-hook), so the models it reads them through (`upstream`: {export: model}) must
    have merged them all: run alone right after an ingest (`dbt run --select <mart>`), it
    would record files its upstream merges only later, and never recompute what they
    change. This statement fails the run, before anything is deleted, naming up to five
    such files; `supernova marts` (one `dbt build` of the marts with their upstream) never
    meets it. DuckDB only, like the file records. -#}
{% macro marts_upstream_merged(upstream) -%}
    select case when count(*) > 0 then error(
            '{{ this.identifier }}: its upstream has not merged every loaded file yet ('
            || string_agg(file_path, ', ' order by file_path) || (case when count(*) = 5 then ', ...' else '' end)
            || '): run the marts with their upstream (supernova marts), not this model alone')
        end as upstream_merged
    from (
        select m.export || ' ' || m.file_path as file_path
        from {{ ref('stg_exports__manifest') }} as m
        where m.status = 'loaded'
            and (
                {%- for export, model in upstream.items() %}
                (m.export = '{{ export }}' and not exists (
                    select 1 from {{ staged_files_relation() }} as s
                    where s.model = '{{ model }}' and {{ staging_same_load('s', 'm') }}
                )){{ " or" if not loop.last }}
                {%- endfor %}
            )
        order by 1
        limit 5
    ) as unmerged
{%- endmacro %}

{#- A state relation of the model being built: `<its identifier>__<name>` in schema
    `<its schema>_state` (what an incremental mart keeps between refreshes, or hands from
    its pre-hook to its select). -#}
{% macro marts_state(name) -%}
    {{ return(api.Relation.create(database=this.database, schema=this.schema ~ '_state',
        identifier=this.identifier ~ '__' ~ name)) }}
{%- endmacro %}
