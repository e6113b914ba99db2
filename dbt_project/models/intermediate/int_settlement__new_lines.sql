-- Settled lines (int_settlement__line_state) that have no frozen terms yet: first
-- settled by this run, or released from suspense, or delivered late.
select s.*
from {{ ref('int_settlement__line_state') }} as s
left join {{ ref('int_settlement__published_line_terms') }} as t
    on t.order_id = s.order_id and t.line_no = s.line_no
where t.order_id is null
