{#- 跟单 (settlement-rules §1), shared by settlement and the marts: for each row of
    `order_heads` (order_id, buyer_id, ordered_at) the last click by that buyer with
    ordered_at - window < clicked_at <= ordered_at; ties on clicked_at: the greatest
    click_id as a string. `clicks` (any relation with click_id, link_id, buyer_id,
    clicked_at) is narrowed here to the buyers of `order_heads`. Returns
    order_id, click_id, link_id, clicked_at for attributed orders only.

    The last click is max((clicked_at, click_id, link_id)) per order: structs compare
    field by field, so this is "latest clicked_at, then greatest click_id" (click_id is
    unique, link_id never decides). A hash aggregate over the candidate pairs instead of
    row_number() over (partition by order ... order by ...): no sort of the pairs, which
    was the largest single cost of the settlement build (docs/benchmarks.md). -#}
{% macro last_click_attribution(order_heads, clicks) -%}
    select
        attributed.order_id,
        attributed.last_click.click_id as click_id,
        attributed.last_click.link_id as link_id,
        attributed.last_click.clicked_at as clicked_at
    from (
        select
            o.order_id,
            max({{ struct_of([('clicked_at', 'c.clicked_at'), ('click_id', 'c.click_id'), ('link_id', 'c.link_id')]) }}) as last_click
        from {{ order_heads }} as o
        inner join (
            -- only the clicks of buyers who ordered, only the columns needed: this keeps
            -- the range join small
            select click_id, link_id, buyer_id, clicked_at
            from {{ clicks }}
            where buyer_id in (select buyer_id from {{ order_heads }})
        ) as c
            on c.buyer_id = o.buyer_id
            and c.clicked_at <= o.ordered_at
            and c.clicked_at > {{ dbt.dateadd('day', -1 * cfg('attribution_window_days'), 'o.ordered_at') }}
        group by o.order_id
    ) as attributed
{%- endmacro %}

{#- The heads of orders (§1): an order's buyer and time are its lowest line's. One row per
    order (order_id, buyer_id, ordered_at, line_no: the head line) of `orders`
    (stg_exports__orders or a relation of the same shape); `where` narrows the orders
    before the ranking. -#}
{% macro order_heads(orders, where=none) -%}
    select
        order_id,
        line_no,
        buyer_id,
        ordered_at
    from {{ orders }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    qualify row_number() over (partition by order_id order by line_no) = 1
{%- endmacro %}

{#- What a run of the precomputed attribution (models/daily/int_daily__order_attribution)
    recomputes: {'incremental': false} for everything (first build, --full-refresh, Spark,
    nothing recorded yet, or a superseded clicks file pending), else {'incremental': true,
    'new_orders' / 'new_clicks': rows (file_path, delivery_date) of the files of that
    export the model has not consumed, 'orders_withdrawn': whether a superseded orders
    file is pending}. -#}
{% macro daily_attribution_scope() -%}
    {#- `this` is empty while a dbt unit test compiles the model: a full build -#}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {%- set manifest = ref('stg_exports__manifest') -%}
    {%- set new_orders = consumed_new_files('orders', manifest) -%}
    {%- set new_clicks = consumed_new_files('clicks', manifest) -%}
    {%- if new_orders is none or new_clicks is none
        or consumed_withdrawn_paths('clicks', manifest) | length > 0 -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {{ return({
        'incremental': true,
        'new_orders': new_orders | list,
        'new_clicks': new_clicks | list,
        'orders_withdrawn': consumed_withdrawn_paths('orders', manifest) | length > 0,
    }) }}
{%- endmacro %}

{#- Post-hook of the precomputed attribution (inside its transaction): after a superseded
    orders file, the orders with no staged line left are deleted (nothing recomputes
    them); then the consumed files are recorded (macros/staging.sql). -#}
{% macro daily_attribution_post_hook() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set manifest = ref('stg_exports__manifest') -%}
        {%- if execute and consumed_withdrawn_paths('orders', manifest) | length > 0 %}
        delete from {{ this }} as gone
        where not exists (
            select 1 from {{ ref('stg_exports__orders') }} as o
            where o.order_id = gone.order_id
        );
        {%- endif %}
        {{ consumed_record_files(['orders', 'clicks'], manifest) }}
    {%- endif -%}
{%- endmacro %}
