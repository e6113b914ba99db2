-- The event state as of M's cutoff of every order line with an event before it (§2, §4):
-- earliest completion, cancel, full refund and refunds before the cutoff, as the close
-- used to aggregate them from every staged event. Read from the daily summary
-- (int_daily__line_events, current: the close verifies staging and the daily precompute
-- are); only the lines with a partial refund at or after the cutoff are recounted from the
-- staged events (macros/line_events.sql). Read by int_settlement__line_state,
-- int_settlement__orphan_events and rpt_settlement_run_funnel: a table, built once.
{{ line_events_at_cutoff(ref('int_daily__line_events'), ref('stg_exports__order_events'), cutoff_ts()) }}
