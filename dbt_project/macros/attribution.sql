{#- 跟单 (settlement-rules §1), shared by settlement and the marts: for each row of
    `order_heads` (order_id, buyer_id, ordered_at) the last click by that buyer with
    ordered_at - window < clicked_at <= ordered_at; ties on clicked_at: the greatest
    click_id as a string. `clicks` has click_id, link_id, buyer_id, clicked_at. Returns
    order_id, click_id, link_id, clicked_at for attributed orders only. -#}
{% macro last_click_attribution(order_heads, clicks) -%}
    select
        o.order_id,
        c.click_id,
        c.link_id,
        c.clicked_at
    from {{ order_heads }} as o
    inner join {{ clicks }} as c
        on c.buyer_id = o.buyer_id
        and c.clicked_at <= o.ordered_at
        and c.clicked_at > {{ dbt.dateadd('day', -1 * cfg('attribution_window_days'), 'o.ordered_at') }}
    qualify row_number() over (partition by o.order_id order by c.clicked_at desc, c.click_id desc) = 1
{%- endmacro %}
