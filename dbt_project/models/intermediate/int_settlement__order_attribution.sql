-- 跟单 (§1): each order of a newly settled line goes to the last click by the order's
-- buyer on any share link with ordered_at - 15 days < clicked_at <= ordered_at; ties on
-- clicked_at: the greatest click_id. The order's buyer and time are its lowest line's.
with order_heads as (
    {{ order_heads(ref('stg_exports__orders'),
                   where="order_id in (select order_id from " ~ ref('int_settlement__new_lines') ~ ")") }}
),

last_click as (
    {{ last_click_attribution('order_heads', ref('stg_exports__clicks')) }}
)

select
    o.order_id,
    o.buyer_id as order_buyer_id,
    o.ordered_at as order_ordered_at,
    l.click_id,
    l.link_id,
    l.clicked_at,
    l.click_id is not null as is_attributed
from order_heads as o
left join last_click as l
    on l.order_id = o.order_id
