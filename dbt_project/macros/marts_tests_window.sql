{#- The incremental marts' data tests check the rows written since their last passing test
    run, not the whole table every day (docs/marts.md "Data tests of the incremental marts").

    An incremental mart rewrites only the days from its refresh start X (its pre-hook
    deletes them, its select recomputes them); every row before X is a row an earlier run
    wrote. Each of its data tests is row by row (a key with the date in it, not_null,
    accepted values, a per-row expression), so a test over the rows from U, the earliest X
    since the model's tests last all passed, sees every row not yet verified:
      * the pre-hook records X: U = least(U, X) (marts_tests_window_open), and the number of
        rows before X;
      * the post-hook fails the model when the rows before X are not what they were
        (marts_tests_window_check): the refresh may only rewrite days from X;
      * every data test of the mart filters on `<date column> >= U` (the `where` config
        `__unverified__` set for the marts folder in dbt_project.yml; get_where_subquery,
        in macros/staging_tests_window.sql, replaces it with marts_unverified_rows);
      * an on-run-end hook sets U to null (all verified) for a mart all of whose data tests
        ran and passed in the invocation (marts_tests_window_close). A failed or skipped
        test leaves U, so the next run tests from U again.
    A mart with no record (its first run after this was deployed, or the record lost) is
    tested whole; so is every mart with `--vars '{marts_verify_all: true}'`, and after a
    --full-refresh (X is the first day). int_marts__attributed_lines (key order_id,
    line_no: no date in it) is tested by whole orders: every line of an order with a line
    from U (`group_column`), so a line duplicated across U is seen. The record:
    <schema>_state.tests_unverified (model, date_column, group_column, unverified_from,
    guard_from, guard_rows) for the marts and intermediate schemas. DuckDB only. -#}

{% macro marts_tests_state(schema) -%}
    {{ return(api.Relation.create(database=target.database, schema=schema ~ '_state',
        identifier='tests_unverified')) }}
{%- endmacro %}

{#- The schemas whose models keep a record: the marts and int_marts__attributed_lines'. -#}
{% macro marts_tests_schemas() -%}
    {{ return([generate_schema_name('marts', none), generate_schema_name('intermediate', none)]) }}
{%- endmacro %}

{#- on-run-start: the records' tables, created before any model runs (two marts' pre-hooks
    creating one side by side conflict in DuckDB's catalog). -#}
{% macro marts_tests_state_create() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- for schema in marts_tests_schemas() -%}
        {%- set state = marts_tests_state(schema) %}
        create schema if not exists {{ state.schema }};
        create table if not exists {{ state }} (
            model {{ dbt.type_string() }},
            date_column {{ dbt.type_string() }},
            group_column {{ dbt.type_string() }},
            unverified_from date,
            guard_from date,
            guard_rows bigint
        ){{ ";" if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook part: record the refresh start `first_written` (a SQL date expression; none:
    the whole table is written) for the model's tests; `group_column`: test whole groups
    of rows (every row of a group with a row from U). -#}
{% macro marts_tests_window_open(date_column, first_written=none, group_column=none) -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set state = marts_tests_state(this.schema) -%}
        {%- set x = first_written if first_written else "cast('0001-01-01' as date)" -%}
        -- no record yet: every row unverified (written before the record existed)
        insert into {{ state }}
        select '{{ this.identifier }}', '{{ date_column }}', null, cast('0001-01-01' as date), null, null
        where not exists (select 1 from {{ state }} where model = '{{ this.identifier }}');
        update {{ state }}
        set date_column = '{{ date_column }}',
            group_column = {{ "'" ~ group_column ~ "'" if group_column else 'null' }},
            unverified_from = least(coalesce(unverified_from, {{ x }}), {{ x }}),
            guard_from = {{ x }},
            guard_rows = {{ "(select count(*) from " ~ this ~ " where " ~ date_column ~ " < " ~ x ~ ")" if first_written else 0 }}
        where model = '{{ this.identifier }}'
    {%- endif -%}
{%- endmacro %}

{#- Post-hook part: the rows before the refresh start are the ones the pre-hook counted. -#}
{% macro marts_tests_window_check(date_column) -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set state = marts_tests_state(this.schema) -%}
        select case when s.guard_rows <> (
                select count(*) from {{ this }} as m where m.{{ date_column }} < s.guard_from)
            then error('{{ this.identifier }}: the refresh changed rows before its refresh start '
                || cast(s.guard_from as {{ dbt.type_string() }})
                || ': only the days it recomputes may be rewritten (macros/marts_tests_window.sql)')
        end as rows_before_unchanged
        from {{ state }} as s
        where s.model = '{{ this.identifier }}'
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` a data test checks ('__unverified__' in its `where`). -#}
{% macro marts_unverified_rows(relation) -%}
    {%- if not execute or var('marts_verify_all', false) or target.type != 'duckdb' -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set state = marts_tests_state(relation.schema) -%}
    {%- if adapter.get_relation(database=state.database, schema=state.schema, identifier=state.identifier) is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set rows = run_query("select date_column, group_column, cast(unverified_from as " ~ dbt.type_string()
        ~ ") from " ~ state ~ " where model = '" ~ relation.identifier ~ "'").rows -%}
    {%- if rows | length == 0 -%}
        {{ return('1 = 1') }}
    {%- elif rows[0][2] is none -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    {%- set date_column, group_column, unverified_from = rows[0] -%}
    {%- set recent = date_column ~ ' >= ' ~ marts_date_literal(unverified_from) -%}
    {%- if group_column -%}
        {{ return(group_column ~ ' in (select ' ~ group_column ~ ' from ' ~ relation ~ ' where ' ~ recent ~ ')') }}
    {%- endif -%}
    {{ return(recent) }}
{%- endmacro %}

{#- on-run-end: a mart all of whose data tests ran and passed in this invocation is
    verified up to now (unverified_from null). The tables exist (on-run-start created
    them); asking dbt whether they do (adapter.get_relation) would open a transaction that
    dbt rolls back after the hook, with its update. -#}
{% macro marts_tests_window_close(results) -%}
    {%- set statements = [] -%}
    {%- if execute and target.type == 'duckdb' -%}
        {%- for schema in marts_tests_schemas() -%}
            {%- set state = marts_tests_state(schema) -%}
            {%- set verified = marts_tests_verified(state, results) -%}
            {%- if verified -%}
                {%- do statements.append('update ' ~ state ~ ' set unverified_from = null where model in ('
                    ~ _staging_quote_list(verified) ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ statements | join('; ') if statements else 'select 1 as nothing_verified' }}
{%- endmacro %}

{#- The models of `state` not yet verified all of whose data tests passed in `results`. -#}
{% macro marts_tests_verified(state, results) -%}
    {%- set passed = [] -%}
    {%- for r in results if r.node.resource_type == 'test' and r.status == 'pass' -%}
        {%- do passed.append(r.node.unique_id) -%}
    {%- endfor -%}
    {%- set verified = [] -%}
    {%- for row in run_query('select model from ' ~ state ~ ' where unverified_from is not null').rows -%}
        {%- set tests = [] -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'test' -%}
            {%- if node.depends_on.nodes | select('equalto', 'model.' ~ project_name ~ '.' ~ row[0]) | list -%}
                {%- do tests.append(node.unique_id) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if tests and tests | reject('in', passed) | list | length == 0 -%}
            {%- do verified.append(row[0]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(verified) }}
{%- endmacro %}
