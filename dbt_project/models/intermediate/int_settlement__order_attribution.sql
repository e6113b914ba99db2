-- 跟单 (§1): each order of a newly settled line goes to the last click by the order's
-- buyer on any share link with ordered_at - 15 days < clicked_at <= ordered_at; ties on
-- clicked_at: the greatest click_id. The order's buyer and time are its lowest line's.
-- Computed every day after staging (int_daily__order_attribution, macros/attribution.sql);
-- the close only picks the orders of its new lines.
select
    a.order_id,
    a.buyer_id as order_buyer_id,
    a.ordered_at as order_ordered_at,
    a.click_id,
    a.link_id,
    a.clicked_at,
    a.is_attributed
from {{ ref('int_daily__order_attribution') }} as a
where a.order_id in (select n.order_id from {{ ref('int_settlement__new_lines') }} as n)
