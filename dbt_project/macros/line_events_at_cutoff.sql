{#- The month close's side of the lines' event state (docs/settlement.md, "Continuous
    settlement"): the cutoff applied to the daily summary of macros/line_events.sql. Kept
    apart from it so that a change here does not change staging's fingerprint. -#}

{#- The lines' event state as of `cutoff` (an SQL timestamp) from a `summary` (line_event_summary) and
    the staged `events`: one row per line with an event before the cutoff, with the columns
    the close aggregated from every event before (completed_at, has_cancel,
    has_full_refund, refunded_amount), equal to that aggregate. Only the lines with a
    partial refund at or after the cutoff read events, their refunds before it. One
    select (no CTE), so that it can stand as a subquery. -#}
{% macro line_events_at_cutoff(summary, events, cutoff) -%}
    select
        s.order_id,
        s.line_no,
        case when s.completed_at < {{ cutoff }} then s.completed_at end as completed_at,
        case when s.cancelled_at < {{ cutoff }} then 1 else 0 end as has_cancel,
        case when s.fully_refunded_at < {{ cutoff }} then 1 else 0 end as has_full_refund,
        case
            when s.last_partial_refund_at >= {{ cutoff }} then coalesce(r.refunded_amount, 0)
            else s.refunded_amount
        end as refunded_amount
    from {{ summary }} as s
    left join (
        -- the refunds before the cutoff of lines with a partial refund at or after it
        select
            e.order_id,
            e.line_no,
            sum(e.amount) as refunded_amount
        from {{ events }} as e
        inner join {{ summary }} as recount
            on recount.order_id = e.order_id
            and recount.line_no = e.line_no
            and recount.first_event_at < {{ cutoff }}
            and recount.last_partial_refund_at >= {{ cutoff }}
        where e.event = 'refunded'
            and e.event_at < {{ cutoff }}
        group by e.order_id, e.line_no
    ) as r
        on r.order_id = s.order_id and r.line_no = s.line_no
    where s.first_event_at < {{ cutoff }}
{%- endmacro %}

{#- What the close's models read for the lines' event state as of M's cutoff: the table
    int_settlement__line_events_at_cutoff. While a dbt unit test compiles a close model its
    inputs are the staged events only (the tests predate the daily summary and stay as they
    are): the summary is then the daily model's full build over those events, inline, and
    the same cutoff rule is applied to it. -#}
{% macro settlement_line_events() -%}
    {%- if model is defined and model.resource_type == 'unit_test' -%}
        (
        {{ line_events_at_cutoff(
            '(' ~ line_event_summary(ref('stg_exports__order_events')) ~ ')',
            ref('stg_exports__order_events'),
            cutoff_ts()) }}
        )
    {%- else -%}
        {{ ref('int_settlement__line_events_at_cutoff') }}
    {%- endif -%}
{%- endmacro %}
