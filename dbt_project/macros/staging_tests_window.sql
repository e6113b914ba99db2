{#- The data tests of staging and of the daily precompute check the rows written since
    their tests last all passed, not every row ever staged (docs/architecture.md, "Staging
    is incremental").

    Each of these models is incremental, delete+insert on its key (`unique_key`): a run
    replaces every row of the keys it recomputes and leaves the other rows as they were.
    Every row carries `_staged_at`, the stamp of the run that wrote it (staging_stamp: the
    dbt var `staging_stamp`, which supernova/staging.py sets for every invocation that
    builds staging). When a build that included staging succeeded, every data test of it
    passed, and supernova/staging.py records its stamp as `verified_through`
    (staging.staging_code). The next invocation passes that as the var
    `staging_verified_through`, V, and each data test of these models reads:
      * every row written after V (a run that failed its tests leaves V, so its rows are
        read again by the next run, until one passes), and
      * every row whose key (the model's first `unique_key` column) is the key of such a
        row: a key check then sees a new row beside the old row it duplicates.
    So a unique key is unique over the whole table iff it is unique over these rows (two
    old rows sharing a key were read together when the later of them was new), and a row
    check (not_null, accepted values, an expression) reads every row not yet verified.
    The tests of these models are all of those kinds; a singular test reads what it reads.

    Every row is read when there is no V (a first build, the first run after this was
    deployed, a dbt invocation by hand), on --full-refresh (a rebuild stamps every row),
    with `--vars '{staging_verify_all: true}'`, and on Spark. What the daily tests do not
    read: a row changed by hand, outside dbt, in a key no run has written since; a full
    refresh or staging_verify_all reads it. DuckDB only. -#}

{#- The stamp of this invocation's rows: a timestamp literal (UTC). -#}
{% macro staging_stamp() -%}
    cast('{{ var("staging_stamp", run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f")) }}' as timestamp)
{%- endmacro %}

{#- The rows of `relation` a data test checks ('__staging_unverified__' in its `where`). -#}
{% macro staging_unverified_rows(relation) -%}
    {%- set through = var('staging_verified_through', none) -%}
    {%- if not execute or target.type != 'duckdb' or flags.FULL_REFRESH
            or var('staging_verify_all', false) or not through -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set key = _staging_stamped_key(relation) -%}
    {%- if key is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set recent = "_staged_at > cast('" ~ through ~ "' as timestamp)" -%}
    {{ return('(' ~ recent ~ ' or ' ~ key ~ ' in (select ' ~ key ~ ' from ' ~ relation ~ ' where ' ~ recent ~ '))') }}
{%- endmacro %}

{#- The first unique_key column of the incremental model stored as `relation`, or none
    (a view, a model without a key: its tests read every row). -#}
{% macro _staging_stamped_key(relation) -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.materialized == 'incremental'
            and node.config.unique_key -%}
        {%- if (node.alias or node.name) | lower == relation.identifier | lower
                and node.schema | lower == relation.schema | lower -%}
            {%- set key = node.config.unique_key -%}
            {{ return(key if key is string else key[0]) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- dbt's get_where_subquery (the relation a data test reads, filtered by its `where`
    config), with '__unverified__' replaced by the marts' rows not yet verified
    (macros/marts_tests_window.sql) and '__staging_unverified__' by staging's (above). A test that
    reads every row ('1 = 1') reads the relation itself: the versions views' key checks
    give it an alias of their own. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__staging_unverified__' in where -%}
        {%- set where = where | replace('__staging_unverified__', staging_unverified_rows(relation)) -%}
    {%- endif -%}
    {%- if where and '__unverified__' in where -%}
        {%- set where = where | replace('__unverified__', marts_unverified_rows(relation)) -%}
    {%- endif -%}
    {%- if where and where != '1 = 1' -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
