{#- 跟单 (settlement-rules §1), shared by settlement and the marts: for each row of
    `order_heads` (order_id, buyer_id, ordered_at) the last click by that buyer with
    ordered_at - window < clicked_at <= ordered_at; ties on clicked_at: the greatest
    click_id as a string. `clicks` (any relation with click_id, link_id, buyer_id,
    clicked_at) is narrowed here to the buyers of `order_heads`. Returns
    order_id, click_id, link_id, clicked_at for attributed orders only. `clicks_after`
    (optional, an SQL timestamp literal) narrows the clicks further to those after it: only
    pass a bound that is <= every ordered_at of `order_heads` minus the window.

    The last click is max((clicked_at, click_id, link_id)) per order: structs compare
    field by field, so this is "latest clicked_at, then greatest click_id" (click_id is
    unique, link_id never decides). A hash aggregate over the candidate pairs instead of
    row_number() over (partition by order ... order by ...): no sort of the pairs, which
    was the largest single cost of the settlement build (docs/benchmarks.md). -#}
{% macro last_click_attribution(order_heads, clicks, clicks_after=none) -%}
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
            {%- if clicks_after is not none %}
                -- a literal bound (no order of order_heads is older than the window after
                -- it): the scan skips older row groups by their statistics
                and clicked_at > {{ clicks_after }}
            {%- endif %}
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
    file is pending, and the literal time bounds of its scans (SQL timestamp literals, or
    none when there is nothing to bound)}:
      * 'new_clicks_from': the earliest newly staged click; the orders a new click can win
        are ordered at or after it;
      * 'orders_from': no changed order's head is older. A changed order's head is a line
        of a new orders file or the head recorded in the table (lines only leave staging
        through a superseded orders file, and then there is no bound); the recorded one is
        looked up unless the order's line 1 is new (line_no >= 1: then it is the head). The
        orders a new click can win are not older than the click; an order whose recorded
        click changed has its recorded head. A correction filed today for an old order
        widens the bound to that order's time: still exact;
      * 'clicks_after': orders_from minus the window: no click at or before it can be the
        last click of a changed order.
    The bounds are literals so that DuckDB compares them with each row group's statistics
    and skips the older ones (docs/settlement.md, "Continuous settlement"). -#}
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
    {%- set scope = {
        'incremental': true,
        'new_orders': new_orders | list,
        'new_clicks': new_clicks | list,
        'orders_withdrawn': consumed_withdrawn_paths('orders', manifest) | length > 0,
    } -%}
    {%- set bounds = _daily_attribution_bounds(scope) -%}
    {%- do scope.update(bounds) -%}
    {{ return(scope) }}
{%- endmacro %}

{#- A staging model's rows staged from `files` (rows file_path, delivery_date of the
    scope), with a literal lower bound on the delivery date first. -#}
{% macro daily_attribution_staged_from(files) -%}
    _delivery_date >= cast('{{ files | map(attribute=1) | min }}' as date)
        and _file_name in ({{ _staging_quote_list(files | map(attribute=0) | list) }})
{%- endmacro %}

{#- The scope's time bounds ('new_clicks_from', 'orders_from', 'clicks_after'), queried
    once when the model compiles (staging has already merged the new files). -#}
{% macro _daily_attribution_bounds(scope) -%}
    {%- set window = cfg('attribution_window_days') -%}
    {%- set bounds_sql -%}
        with new_clicks as (
            {%- if scope.new_clicks %}
            select click_id, clicked_at from {{ ref('stg_exports__clicks') }}
            where {{ daily_attribution_staged_from(scope.new_clicks) }}
            {%- else %}
            select click_id, clicked_at from {{ ref('stg_exports__clicks') }} where 1 = 0
            {%- endif %}
        ),
        new_order_lines as (
            {%- if scope.new_orders %}
            select order_id, line_no, ordered_at from {{ ref('stg_exports__orders') }}
            where {{ daily_attribution_staged_from(scope.new_orders) }}
            {%- else %}
            select order_id, line_no, ordered_at from {{ ref('stg_exports__orders') }} where 1 = 0
            {%- endif %}
        ),
        recorded_head_may_stay as (
            -- line_no >= 1 (contract): an order with a new line 1 has it as its head, so
            -- only the others need their recorded head looked up (none on most days: the
            -- lookup, a scan of the whole table, is then skipped)
            select order_id from new_order_lines group by order_id having min(line_no) > 1
        ),
        heads as (
            -- least() skips nulls: null only when nothing is new
            select
                (select min(clicked_at) from new_clicks) as new_clicks_from,
                least(
                    (select min(clicked_at) from new_clicks),
                    (select min(ordered_at) from new_order_lines),
                    (select min(a.ordered_at) from {{ this }} as a
                        where a.order_id in (select order_id from recorded_head_may_stay)),
                    (select min(a.ordered_at) from {{ this }} as a
                        where a.click_id in (select click_id from new_clicks))
                ) as orders_from
        )
        select
            cast(new_clicks_from as {{ dbt.type_string() }}),
            cast(orders_from as {{ dbt.type_string() }}),
            cast({{ dbt.dateadd('day', -1 * window, 'orders_from') }} as {{ dbt.type_string() }})
        from heads
    {%- endset -%}
    {%- set row = run_query(bounds_sql).rows[0] -%}
    {%- set names = ['new_clicks_from', 'orders_from', 'clicks_after'] -%}
    {%- set bounds = {} -%}
    {%- for name in names -%}
        {%- set value = row[loop.index0] -%}
        {%- do bounds.update({name: (none if value is none else "cast('" ~ value ~ "' as timestamp)")}) -%}
    {%- endfor -%}
    {%- if scope.orders_withdrawn -%}
        {#- a superseded orders file can bring back an older version of a line: no bound -#}
        {%- do bounds.update({'orders_from': none, 'clicks_after': none}) -%}
    {%- endif -%}
    {{ return(bounds) }}
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
