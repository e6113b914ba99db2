{#- The order-event state of every staged order line (§2, §4), kept every day after
    staging: first and last event, earliest completion, cancel and full refund, the sum of
    the partial refunds and the latest of them (macros/line_events.sql). The month close
    applies its cutoff to it (int_settlement__line_events_at_cutoff) instead of
    aggregating every staged event (docs/settlement.md, "Continuous settlement").

    Incremental on DuckDB (delete+insert on order_id): a run recomputes, from *all* their
    staged events, the orders with a staged event from an order_events file it has not
    consumed yet, and every order that a version of one of those files' event_ids was ever
    delivered on (upstream re-delivering an event_id on another order moves the event: the
    order it left changes too). An event that moved to another line of the order is
    handled, since the whole order is recomputed; an order left with no event is deleted
    by the post-hook. After a superseded order_events file (a landing file changed in
    place) a run recomputes every line: the withdrawn events may have left staging or
    fallen back to older versions, and nothing staged says which lines they were on; the
    post-hook deletes the orders with no event left. Upstream rewriting a file is rare;
    it costs one full recompute (the aggregate the close used to do every month).
    Consumed files are recorded in staging.staged_files / withdrawn_files under this
    model's name (macros/staging.sql, consumed_*). On Spark it is a plain table: same SQL,
    is_incremental() is never true there. -#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'table'),
    schema='intermediate',
    incremental_strategy='delete+insert',
    unique_key='order_id',
    on_schema_change='fail',
    post_hook="{{ daily_line_events_post_hook() }}",
) }}
-- depends_on: {{ ref('stg_exports__manifest') }}
{%- set scope = daily_line_events_scope() %}
{%- if scope.incremental and scope.new_events %}
{{ line_event_summary(
    ref('stg_exports__order_events'),
    where="(order_id in (select order_id from " ~ ref('stg_exports__order_events')
        ~ " where " ~ daily_attribution_staged_from(scope.new_events) ~ ")"
        ~ " or order_id in (" ~ daily_line_events_event_id_orders(scope.new_events) ~ "))", stamped=true) }}
{%- elif scope.incremental %}
{{ line_event_summary(ref('stg_exports__order_events'), where="1 = 0", stamped=true) }}
{%- else %}
{{ line_event_summary(ref('stg_exports__order_events'), stamped=true) }}
{%- endif %}
