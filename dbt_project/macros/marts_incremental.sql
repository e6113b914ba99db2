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

{#- The first date an incremental mart must recompute, or none for "everything" (first
    build, --full-refresh, empty table). Watermark W = the greatest date already in the
    model. Every row delivered on or after W (a superset of what arrived since the last
    build, since W is at most the last delivered day of that build) may change the model
    from some date on:
      orders : the earliest ordered_at date over all versions of the re-delivered orders;
      clicks : the earliest clicked_at over all versions of re-delivered clicks and over
               all clicks on re-delivered links (attribution looks 15 days forward from a
               click, so its date is a safe start);
      groups : the new snapshots' dates, any dissolution date of a re-delivered group, and
               the creation date of a group first seen (or whose created_at changed);
      skus   : the delivery date (sku attributes are taken as delivered by that day);
      rules  : for a re-delivered commission rule, the first day its versions differ.
    The result is the earliest of those and W + 1 (new days). Attributes joined as "current"
    (a group's owner, a promoter's platform and role) are not restated by an incremental run;
    a --full-refresh restates them (docs/marts.md).
    The versions are read from the staging versions models (stg_exports__*_versions), and
    only those of `parts` (clicks: also links): the model's lineage shows what it reads. -#}
{% macro marts_refresh_from(date_column, parts) -%}
    {%- set src = marts_versions(parts) -%}
    {#- `this` is empty while a dbt unit test compiles the model: a full build -#}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set w_row = run_query('select cast(max(' ~ date_column ~ ') as ' ~ dbt.type_string() ~ ') from ' ~ this).rows[0] -%}
    {%- if w_row[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set w = marts_date_literal(w_row[0]) -%}
    {%- set sql -%}
        select cast(min(d) as {{ dbt.type_string() }}) from (
            select cast({{ dbt.dateadd('day', 1, w) }} as date) as d
            {%- if 'orders' in parts %}
            union all
            select cast(ordered_at as date) as d
            from {{ src.orders }}
            where order_id in (select order_id from {{ src.orders }} where _delivery_date >= {{ w }})
            {%- endif %}
            {%- if 'clicks' in parts %}
            union all
            select cast(clicked_at as date) as d
            from {{ src.clicks }}
            where click_id in (select click_id from {{ src.clicks }} where _delivery_date >= {{ w }})
                or link_id in (select link_id from {{ src.links }} where _delivery_date >= {{ w }})
            {%- endif %}
            {%- if 'groups' in parts %}
            union all
            -- a new snapshot changes the member count from its date, a dissolution the
            -- status from the dissolution date
            select least(snapshot_date, coalesce(cast(dissolved_at as date), snapshot_date)) as d
            from {{ src.groups }}
            where _delivery_date >= {{ w }}
            union all
            -- a dissolution that an earlier version recorded (and a new one may undo)
            select cast(dissolved_at as date) as d
            from {{ src.groups }}
            where dissolved_at is not null
                and group_id in (select group_id from {{ src.groups }} where _delivery_date >= {{ w }})
            union all
            -- a group seen for the first time, or whose created_at changed: from its creation
            select min(cast(created_at as date)) as d
            from {{ src.groups }}
            where group_id in (select group_id from {{ src.groups }} where _delivery_date >= {{ w }})
            group by group_id
            having count(distinct created_at) > 1 or min(_delivery_date) >= {{ w }}
            {%- endif %}
            {%- if 'skus' in parts %}
            union all
            select _delivery_date as d
            from {{ src.skus }}
            where _delivery_date >= {{ w }}
            {%- endif %}
            {%- if 'rules' in parts %}
            union all
            -- a re-delivered rule changes the rate in force from the first point where its
            -- versions differ: its validity start when rate, key or start changed, else the
            -- earlier of the old and new validity ends (one day earlier: the rate "at the
            -- end of a day" looks at the next midnight)
            select cast({{ dbt.dateadd('day', -1, "case
                    when prev_valid_from is null then valid_from
                    when prev_rate <> rate or prev_scope <> scope
                        or coalesce(prev_key, '') <> coalesce(rule_key, '')
                        or prev_valid_from <> valid_from
                        then least(valid_from, prev_valid_from)
                    else least(coalesce(valid_to, prev_valid_to), coalesce(prev_valid_to, valid_to))
                end") }} as date) as d
            from (
                select
                    rate, scope, valid_from, valid_to, _delivery_date,
                    coalesce(sku_id, merchant_id, category) as rule_key,
                    lag(rate) over w as prev_rate,
                    lag(scope) over w as prev_scope,
                    lag(coalesce(sku_id, merchant_id, category)) over w as prev_key,
                    lag(valid_from) over w as prev_valid_from,
                    lag(valid_to) over w as prev_valid_to
                from {{ src.rules }}
                window w as (partition by rule_id order by {{ delivered_last() | replace(' desc', '') }})
            ) as versions
            where _delivery_date >= {{ w }}
            {%- endif %}
        ) as changed
    {%- endset -%}
    {%- set d = run_query(sql).rows[0][0] -%}
    {{ return(d | string) }}
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
        pre_hook="{{ marts_delete_from('" ~ date_column ~ "', " ~ parts ~ ") }}",
    ) }}
    {{ return(marts_refresh_from(date_column, parts)) }}
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
