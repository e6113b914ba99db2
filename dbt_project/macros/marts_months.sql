{#- int_marts__buyer_cells' incremental refresh by month (docs/marts.md "The buyer marts by
    month"). A month's cells depend on the month's attributed lines, their buyers' latest
    profile (tier, gender), their SKUs' latest category, and each buyer's first attributed
    month (new buyers). A refresh recomputes, whole:
      * every month from the month of D0 = marts_refresh_from('month', ['orders', 'clicks']),
        the first date the files it has not consumed can change an attributed line (as
        int_marts__attributed_lines, which changes no line before D0). A buyer's first
        month moves only through a line that changes, so only in months from D0 on;
      * before it, the months with a line of a buyer whose current profile, or of a SKU
        whose current attributes, come from a buyers or skus file it has not consumed: a
        staging row's winner changes only through a new file (the earlier files' rows are
        what the last refresh read), so these are every buyer and SKU that can have
        changed;
      * everything on a first build, --full-refresh, when nothing is recorded yet (the
        first run after the model became incremental), or when a buyers or skus file was
        changed in place (its earlier rows have left staging unseen).
    The months before D0 to recompute are written by the pre-hook to schema
    <intermediate schema>_state, which then deletes them and every month from D0; the select
    recomputes exactly them. Consumed files are recorded like every incremental mart's. -#}

{% macro buyer_cells_exports() -%}
    {{ return(['orders', 'clicks', 'links', 'buyers', 'skus']) }}
{%- endmacro %}

{#- The month (first day, 'YYYY-MM-DD') of a 'YYYY-MM-DD' date. -#}
{% macro marts_month_of(day) -%}
    {{ return((day | string)[:8] ~ '01') }}
{%- endmacro %}

{#- What this run recomputes: {'from': none} for everything (first build, --full-refresh,
    unit tests), else {'from': the first month recomputed whole and every month after it,
    'partial': whether months before it are recomputed too, 'files': {'buyers': [...],
    'skus': [...]}, the files of those exports not consumed yet}. -#}
{% macro buyer_cells_scope() -%}
    {#- none on a first build, --full-refresh, a unit test or while parsing (after the
        ref()s it makes, which record the model's parents) -#}
    {%- set d0 = marts_refresh_from('month', ['orders', 'clicks']) -%}
    {%- set manifest = ref('stg_exports__manifest') -%}
    {%- if d0 is none -%}
        {{ return({'from': none}) }}
    {%- endif -%}
    {%- set files = {} -%}
    {%- for export in ['buyers', 'skus'] -%}
        {%- set new = consumed_new_files(export, manifest) -%}
        {%- if new is none or consumed_withdrawn_paths(export, manifest) | length > 0 -%}
            {%- set first = run_query('select cast(min(month) as ' ~ dbt.type_string() ~ ') from ' ~ this).rows[0][0] -%}
            {{ return({'from': marts_month_of(marts_refresh_everything(first)), 'partial': false}) }}
        {%- endif -%}
        {%- do files.update({export: new | list}) -%}
    {%- endfor -%}
    {{ return({'from': marts_month_of(d0), 'partial': true, 'files': files}) }}
{%- endmacro %}

{#- The months before scope['from'] with a line of a buyer or SKU whose current row comes
    from a file not consumed yet (one column, month). Two selects, not an `or` of two semi
    joins (DuckDB evaluates that row by row). -#}
{% macro buyer_cells_months_to_restate(scope) -%}
    {%- set lines = ref('int_marts__attributed_lines') -%}
    {%- set attributes = [] -%}
    {%- for key, rows, files in [('buyer_id', ref('stg_exports__buyers'), scope.files.buyers),
                                 ('sku_id', ref('stg_exports__skus'), scope.files.skus)] -%}
        {%- if files | length > 0 -%}
            {%- do attributes.append((key, rows, files)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if attributes | length == 0 %}
    select cast(null as date) as month where 1 = 0
    {%- else %}
    select distinct cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month
    from (
        {%- for key, rows, files in attributes %}
        select order_date
        from {{ lines }}
        where order_date < {{ marts_date_literal(scope['from']) }}
            and {{ key }} in (select {{ key }} from {{ rows }} where {{ marts_in_files(files) }})
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as changed
    {%- endif %}
{%- endmacro %}

{#- Pre-hook: check the upstream is current, write the months before scope['from'] to
    recompute, and delete them and every month from scope['from']. -#}
{% macro buyer_cells_pre_hook() -%}
    {%- set scope = buyer_cells_scope() -%}
    {%- if target.type == 'duckdb' -%}
        {{ marts_upstream_merged({
            'orders': 'int_marts__attributed_lines', 'clicks': 'int_marts__attributed_lines',
            'links': 'int_marts__attributed_lines', 'buyers': 'stg_exports__buyers',
            'skus': 'stg_exports__skus',
        }) }};
    {%- endif %}
    {%- if scope['from'] is none -%}
        select 1 as nothing_to_delete
    {%- elif not scope.partial -%}
        delete from {{ this }} where month >= {{ marts_date_literal(scope['from']) }}
    {%- else -%}
        {%- set months = marts_state('refresh') -%}
        create schema if not exists {{ months.schema }};
        create or replace table {{ months }} as
        {{ buyer_cells_months_to_restate(scope) }};
        delete from {{ this }}
        where month >= {{ marts_date_literal(scope['from']) }}
            or month in (select month from {{ months }})
    {%- endif -%}
{%- endmacro %}

{#- The attributed lines the select recomputes, as `order_date` conditions on alias `l`
    (a list of disjoint selections: the caller unions them). -#}
{% macro buyer_cells_line_filters(scope) -%}
    {%- if scope['from'] is none -%}
        {{ return(['1 = 1']) }}
    {%- endif -%}
    {%- set first = marts_date_literal(scope['from']) -%}
    {%- set filters = ['l.order_date >= ' ~ first] -%}
    {%- if scope.partial -%}
        {%- do filters.append('l.order_date < ' ~ first ~ ' and cast(' ~ dbt.date_trunc('month', 'l.order_date')
            ~ ' as date) in (select month from ' ~ marts_state('refresh') ~ ')') -%}
    {%- endif -%}
    {{ return(filters) }}
{%- endmacro %}

{#- Post-hook: drop the pre-hook's months and record the files consumed. -#}
{% macro buyer_cells_post_hook() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        drop table if exists {{ marts_state('refresh') }};
        {{ consumed_record_files(buyer_cells_exports(), ref('stg_exports__manifest')) }}
    {%- endif -%}
{%- endmacro %}
