{{ config(materialized='view') }}
-- Settled lines (int_settlement__line_state) that have no frozen terms yet: first
-- settled by this run, or released from suspense, or delivered late.
-- A view, read by int_settlement__new_line_terms (every column) and findings (order_id
-- only): as a table it copied line_state (7.2M rows at `today`, 6-8 s) to be read back;
-- inside its readers the anti-join costs them less than the copy did (docs/benchmarks.md).
select s.*
from {{ ref('int_settlement__line_state') }} as s
left join {{ ref('int_settlement__published_line_terms') }} as t
    on t.order_id = s.order_id and t.line_no = s.line_no
where t.order_id is null
