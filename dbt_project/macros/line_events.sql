{#- Order-event state per order line (§2, §4), kept every day by
    models/daily/int_daily__line_events and applied to a month's cutoff by
    models/intermediate/int_settlement__line_events_at_cutoff (docs/settlement.md,
    "Continuous settlement").

    The summary keeps, per (order_id, line_no) with staged events, what lets any cutoff C
    be applied exactly without reading the events again:
      * first_event_at: the line has an event before C iff first_event_at < C;
      * completed_at, cancelled_at, fully_refunded_at: the earliest of each (a minimum:
        the earliest before C is it when it is before C, else there is none);
      * refunded_amount: the sum of all partial refunds, and last_partial_refund_at, the
        latest of them: when it is before C the sum is the sum before C; otherwise (a
        partial refund at or after C) the close recounts that line's refunds from the
        staged events, for those lines only.
    Events without event_at are left out, as the close's `event_at < cutoff` did.
    stamped=true adds `_staged_at`, the run that wrote the row (the daily model's; macros/staging_tests_window.sql). -#}
{% macro line_event_summary(events, where=none, stamped=false) -%}
    select
        order_id,
        line_no,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        min(case when event = 'completed' then event_at end) as completed_at,
        min(case when event = 'cancelled' then event_at end) as cancelled_at,
        min(case when event = 'refunded' and amount is null then event_at end) as fully_refunded_at,
        max(case when event = 'refunded' and amount is not null then event_at end) as last_partial_refund_at,
        coalesce(sum(case when event = 'refunded' then amount end), 0) as refunded_amount
        {%- if stamped %},
        {{ staging_stamp() }} as _staged_at
        {%- endif %}
    from {{ events }}
    where event_at is not null
    {%- if where %}
        and {{ where }}
    {%- endif %}
    group by order_id, line_no
{%- endmacro %}

{#- What a run of the daily summary recomputes: {'incremental': false} for everything
    (first build, --full-refresh, Spark, nothing recorded yet, or a superseded order_events
    file pending: its events may have left staging or fallen back to older versions, and
    nothing staged says which lines they were on), else {'incremental': true,
    'new_events': rows (file_path, delivery_date) of the order_events files the model has
    not consumed}. -#}
{% macro daily_line_events_scope() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {%- set manifest = ref('stg_exports__manifest') -%}
    {%- set new_events = consumed_new_files('order_events', manifest) -%}
    {%- if new_events is none or consumed_withdrawn_paths('order_events', manifest) | length > 0 -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {{ return({'incremental': true, 'new_events': new_events | list}) }}
{%- endmacro %}

{#- The orders a version of an event_id of the `files` (rows file_path, delivery_date) was
    ever delivered on, from the raw layer: upstream re-delivering an event_id on another
    order moves the event (§0), so the order it left changes too.
    Finding them scans every raw event (4.6 CPU-s at `today`, docs/benchmarks.md), and a
    day asks three times for the same files: the daily summary's select and its post-hook,
    and the estimated-earnings mart. On DuckDB the answer is kept in one table,
    staging.event_id_orders_cache, under a fingerprint of the question (the files, and the
    raw view's text, which lists every raw file, each named by the hash of the landing file
    it was loaded from): asked again with the same fingerprint it is read back, asked
    anything else it is recomputed. A landing file changed in place is a supersession,
    after which nothing asks (every line is recomputed). A new raw file under an unchanged
    question changes the answer: tests/test_event_id_cache.py. -#}
{% macro daily_line_events_event_id_orders(files) -%}
    {%- set raw_events = source('exports', 'order_events') -%}
    {%- set query -%}
    select order_id from {{ raw_events }}
    where event_id in (
        select event_id from {{ raw_events }}
        where {{ daily_attribution_staged_from(files) }} and event_id is not null
    )
    {%- endset -%}
    {%- if execute and target.type == 'duckdb' -%}
        {%- set cached = _event_id_orders_cached(query, raw_events) -%}
        {#- the read names the fingerprint too: SQL replayed later (bench/floor.py) or run
            beside another question never reads another question's answer -#}
        select order_id from {{ cached.relation }}
        where fingerprint = '{{ cached.fingerprint }}' and order_id is not null
    {%- else -%}
        {{ query }}
    {%- endif -%}
{%- endmacro %}

{#- The cache table holding `query`'s orders, (re)built when its fingerprint differs; one
    extra row with a null order_id carries the fingerprint of an empty answer. Returns
    {'relation', 'fingerprint'}. -#}
{% macro _event_id_orders_cached(query, raw_events) -%}
    {%- set cache = api.Relation.create(database=target.database,
        schema=generate_schema_name('staging', none), identifier='event_id_orders_cache') -%}
    {%- set raw_files = run_query("select sql from duckdb_views() where schema_name = '"
        ~ raw_events.schema ~ "' and view_name = '" ~ raw_events.identifier ~ "'").rows -%}
    {%- set fingerprint = local_md5(query ~ '|' ~ (raw_files | map(attribute=0) | join('|'))) -%}
    {#- information_schema, not adapter.get_relation: dbt's relation cache does not see a
        table created by run_query in this invocation -#}
    {%- set exists = run_query("select count(*) from information_schema.tables where table_catalog = '"
        ~ cache.database ~ "' and table_schema = '" ~ cache.schema ~ "' and table_name = '"
        ~ cache.identifier ~ "'").rows[0][0] == 1 -%}
    {%- set current = exists and run_query("select count(*) from " ~ cache
        ~ " where fingerprint = '" ~ fingerprint ~ "' and order_id is null").rows[0][0] == 1 -%}
    {%- if not current -%}
        {%- do run_query("create or replace table " ~ cache ~ " as select '" ~ fingerprint
            ~ "' as fingerprint, cast(null as " ~ dbt.type_string() ~ ") as order_id union all select distinct '"
            ~ fingerprint ~ "', order_id from (" ~ query ~ ") as q where order_id is not null") -%}
    {%- endif -%}
    {{ return({'relation': cache, 'fingerprint': fingerprint}) }}
{%- endmacro %}

{#- Post-hook of the daily summary (inside its transaction): the orders with no staged event
    left are deleted (the delete+insert only replaces the orders the select returns): after
    a superseded order_events file (a full recompute) any order, else the orders new files'
    event_ids were ever delivered on (every event of an order re-delivered on another
    leaves it with none). Then the consumed files are recorded (macros/staging.sql). -#}
{% macro daily_line_events_post_hook() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set manifest = ref('stg_exports__manifest') -%}
        {%- set withdrawn = consumed_withdrawn_paths('order_events', manifest) if execute else [] -%}
        {%- set new_events = consumed_new_files('order_events', manifest) if execute else none -%}
        {%- if withdrawn | length > 0 or new_events %}
        delete from {{ this }} as gone
        where not exists (
            select 1 from {{ ref('stg_exports__order_events') }} as e
            where e.order_id = gone.order_id and e.event_at is not null
        )
        {%- if withdrawn | length == 0 %}
            and gone.order_id in ({{ daily_line_events_event_id_orders(new_events | list) }})
        {%- endif %};
        {%- endif %}
        {{ consumed_record_files(['order_events'], manifest) }}
    {%- endif -%}
{%- endmacro %}
