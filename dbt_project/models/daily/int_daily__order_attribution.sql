{#- 跟单 (settlement-rules §1), precomputed every day after staging: one row per staged
    order with its head (lowest line: buyer and time) and its last click by that buyer
    with ordered_at - 15 days < clicked_at <= ordered_at (macros/attribution.sql); organic
    orders too, with is_attributed false. The month close and the marts read it instead
    of recomputing attribution over every click (docs/settlement.md, "Continuous
    settlement").

    Incremental on DuckDB (delete+insert on order_id): a run recomputes only the orders
    that the files it has not consumed yet can change, from *all* staged orders and clicks,
    so the result is the full recompute's (tests/test_daily_precompute.py):
      * orders with a staged line from a new orders file;
      * orders of a buyer with a staged click from a new clicks file whose ordered_at is in
        [clicked_at, clicked_at + window): a late click may now be the last one;
      * orders whose recorded click is such a click: a corrected click may have changed
        buyer or time and no longer win;
      * after a superseded orders file (a landing file changed in place): orders whose
        recorded head line is no longer staged as recorded; orders with no staged line
        left are deleted (post-hook);
      * after a superseded clicks file: every order. Its earlier clicks may have gone or
        fallen back to an older version, and staging no longer says which they were; this
        is rare (upstream rewrote a file) and costs one full recompute.
    Its scans are bounded by literal times (daily_attribution_scope): the staged lines of
    orders ordered at or after the earliest head a changed order can have, the clicks after
    that time minus the window; a correction of an old order widens them.
    Consumed files are recorded like staging's, in staging.staged_files / withdrawn_files
    under this model's name (macros/staging.sql, consumed_*). On Spark it is a plain
    table: same SQL, is_incremental() is never true there. -#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'table'),
    schema='intermediate',
    incremental_strategy='delete+insert',
    unique_key='order_id',
    on_schema_change='fail',
    tags=['pii'],
    post_hook="{{ daily_attribution_post_hook() }}",
) }}
-- depends_on: {{ ref('stg_exports__manifest') }}
{%- set scope = daily_attribution_scope() %}

with
{%- if scope.incremental %}
new_clicks as (
    {%- if scope.new_clicks %}
    select click_id, buyer_id, clicked_at
    from {{ ref('stg_exports__clicks') }}
    where {{ daily_attribution_staged_from(scope.new_clicks) }}
    {%- else %}
    select click_id, buyer_id, clicked_at from {{ ref('stg_exports__clicks') }} where 1 = 0
    {%- endif %}
),

changed_orders as (
    {%- if scope.new_orders %}
    -- a new orders file: its orders
    select order_id
    from {{ ref('stg_exports__orders') }}
    where {{ daily_attribution_staged_from(scope.new_orders) }}
    union
    {%- endif %}
    -- a new or corrected click: the orders of its buyer in its window (late clicks too).
    -- The recorded head is the order's head unless a new orders file has a line of it
    -- (those orders are above) or an orders file was superseded (below).
    select a.order_id
    from {{ this }} as a
    inner join new_clicks as c
        on c.buyer_id = a.buyer_id
        and a.ordered_at >= c.clicked_at
        and a.ordered_at < {{ dbt.dateadd('day', cfg('attribution_window_days'), 'c.clicked_at') }}
    {%- if scope.new_clicks_from %}
    where a.ordered_at >= {{ scope.new_clicks_from }}
    {%- endif %}
    union
    -- an order attributed to a click that changed (buyer or time) may lose it
    select a.order_id
    from {{ this }} as a
    where a.click_id in (select click_id from new_clicks)
    {%- if scope.orders_withdrawn %}
    union
    -- a superseded orders file: the recorded head line is gone or changed
    select a.order_id
    from {{ this }} as a
    where not exists (
        select 1 from {{ ref('stg_exports__orders') }} as o
        where o.order_id = a.order_id
            and o.line_no = a.line_no
            and o.buyer_id is not distinct from a.buyer_id
            and o.ordered_at is not distinct from a.ordered_at
    )
    {%- endif %}
),

{%- set changed = "order_id in (select order_id from changed_orders)" %}
order_heads as (
    {#- no changed order's head is older than orders_from (daily_attribution_scope): the
        lines left out are not heads, so the lowest line_no kept is the head -#}
    {{ order_heads(ref('stg_exports__orders'),
        where=(("ordered_at >= " ~ scope.orders_from ~ " and " ~ changed) if scope.orders_from else changed)) }}
),
{%- else %}

order_heads as (
    {{ order_heads(ref('stg_exports__orders')) }}
),
{%- endif %}

last_click as (
    {{ last_click_attribution('order_heads', ref('stg_exports__clicks'), clicks_after=scope.get('clicks_after')) }}
)

select
    o.order_id,
    o.line_no,
    o.buyer_id,
    o.ordered_at,
    l.click_id,
    l.link_id,
    l.clicked_at,
    l.click_id is not null as is_attributed,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from order_heads as o
left join last_click as l
    on l.order_id = o.order_id
{%- if target.type == 'duckdb' and not scope.incremental %}
-- a full build is written in time order (runs append theirs at the end): the scans of the
-- table by ordered_at and click_id then skip older row groups by their statistics
order by o.ordered_at
{%- endif %}
