{#- promoter_earnings_daily's incremental refresh (docs/marts.md "promoter_earnings_daily").

    A row (activity_date D, promoter X) sums the estimates of the attributed lines of day D
    that X drove (level 1) or that X's invitees drove (level 2). A line's estimate depends
    on its attribution, its order line, its events so far, the rate in force at its own
    ordered_at (commission rules and the SKU's merchant, category and self-operation), the
    promoter's split (platform, inviter, inviter known, inviter loop) and the settlement
    configuration. A refresh recomputes:
      * every day from D0 = marts_refresh_from('activity_date', ['orders', 'clicks']): the
        first date the files it has not consumed can change an attribution or an order
        line (as int_marts__attributed_lines);
      * before D0, the rows of the lines whose estimate can have changed: lines of orders
        with an event in an order_events file it has not consumed (and of the orders a
        re-delivered event_id was ever on), of SKUs whose attributes differ from the last
        refresh's, of promoters whose split differs from the last refresh's, and, after a
        re-delivered commission rule, the lines ordered from the rule's first changed day.
        Each such line's rows are (D, its promoter), (D, its inviter then), (D, its inviter
        now); a promoter whose split changed also gets every row they already have;
      * everything, when the configuration differs from the last refresh's, the state below
        is missing (a first incremental run), or an order_events file was superseded.
    The split, the SKUs' attributes and the configuration's fingerprint the last refresh used
    are kept in schema <marts schema>_state (post-hook); the rows to recompute are written
    there by the pre-hook, which deletes them, and the select recomputes exactly them.
    Consumed files are recorded like every incremental mart's (macros/marts_incremental.sql). -#}

{#- The split a line's pool is divided by, per promoter (int_marts__promoter_split's SQL). -#}
{% macro promoter_split_select() -%}
with latest as (
    select promoter_id, platform, inviter_id
    from {{ ref('stg_exports__promoters') }}
    qualify row_number() over (partition by promoter_id order by updated_at desc, {{ delivered_last() }}) = 1
),

loops as (
    {{ inviter_loop_promoters('latest') }}
)

select
    promoter_id,
    platform,
    inviter_id,
    promoter_id in (select promoter_id from loops) as is_in_inviter_loop
from latest
{%- endmacro %}

{#- A state relation of the mart (schema <marts schema>_state, macros/marts_incremental.sql). -#}
{% macro earnings_state(name) -%}
    {{ return(marts_state(name)) }}
{%- endmacro %}

{#- What the estimate reads of a promoter: the split and whether the inviter is known
    (level 2 needs an inviter in the export). -#}
{% macro earnings_promoter_terms() -%}
    select
        s.promoter_id, s.platform, s.inviter_id, s.is_in_inviter_loop,
        coalesce(s.inviter_id in (select k.promoter_id from ({{ promoter_split_select() }}) as k), false)
            as inviter_is_known
    from ({{ promoter_split_select() }}) as s
{%- endmacro %}

{#- What the estimate reads of a SKU (macro estimated_line_earnings, rate_in_force). -#}
{% macro earnings_sku_terms() -%}
    select sku_id, merchant_id, category, coalesce(is_self_operated, false) as is_self_operated
    from {{ ref('stg_exports__skus') }}
{%- endmacro %}

{#- The settlement configuration the estimate reads (the platform fee, the split shares,
    the inviter chain's depth for loops), as one value: a change recomputes every row. The
    rest of the configuration (tiers, tax, cutoff) does not touch the estimate. -#}
{% macro earnings_config_fingerprint() -%}
    {%- set read = {} -%}
    {%- for key in ['platform_fee_rate', 'split_shares', 'inviter_chain_max_depth'] -%}
        {%- do read.update({key: cfg(key)}) -%}
    {%- endfor -%}
    {{ return(local_md5(tojson(read, sort_keys=true))) }}
{%- endmacro %}

{#- True when the state the last refresh kept exists and used this configuration. -#}
{% macro _earnings_state_current() -%}
    {%- for name in ['promoters', 'skus', 'config'] -%}
        {%- set rel = earnings_state(name) -%}
        {%- if adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) is none -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set rows = run_query('select fingerprint from ' ~ earnings_state('config')).rows -%}
    {{ return(rows | length == 1 and rows[0][0] == earnings_config_fingerprint()) }}
{%- endmacro %}

{#- What this run recomputes: {'from': none} for everything (first build, --full-refresh,
    unit tests), else {'from': 'YYYY-MM-DD' (D0), 'partial': whether rows before D0 are
    recomputed too (false: D0 is the first day, everything), 'rules_from': the first day a
    new or re-delivered rule changes (the day after the mart's last day when no rule file is
    new), 'new_events': order_events files not consumed}. -#}
{% macro earnings_refresh_scope() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return({'from': none}) }}
    {%- endif -%}
    {%- set d0 = marts_refresh_from('activity_date', ['orders', 'clicks']) -%}
    {%- if d0 is none -%}
        {{ return({'from': none}) }}
    {%- endif -%}
    {%- set manifest = ref('stg_exports__manifest') -%}
    {%- set new_events = consumed_new_files('order_events', manifest) -%}
    {%- if new_events is none or consumed_withdrawn_paths('order_events', manifest) | length > 0
        or not _earnings_state_current() -%}
        {%- set first = run_query('select cast(min(activity_date) as ' ~ dbt.type_string() ~ ') from ' ~ this).rows[0][0] -%}
        {{ return({'from': marts_refresh_everything(first), 'partial': false}) }}
    {%- endif -%}
    {#- not bounded by D0: a line ordered from D0 on can belong to an order of an earlier
        day, which the window (by order date) does not recompute -#}
    {%- set rules_from = marts_refresh_from('activity_date', ['rules']) -%}
    {{ return({'from': d0, 'partial': true, 'new_events': new_events | list,
        'rules_from': rules_from}) }}
{%- endmacro %}

{#- The rows (activity_date, promoter_id) before D0 whose lines can have changed (above). -#}
{% macro earnings_rows_to_refresh(scope) -%}
    {%- set d0 = marts_date_literal(scope['from']) -%}
    {%- set events = ref('stg_exports__order_events') -%}
    with split_now as (
        {{ earnings_promoter_terms() }}
    ),

    split_then as (
        select promoter_id, platform, inviter_id, is_in_inviter_loop, inviter_is_known
        from {{ earnings_state('promoters') }}
    ),

    changed_promoters as (
        select coalesce(n.promoter_id, t.promoter_id) as promoter_id
        from split_now as n
        full outer join split_then as t
            on t.promoter_id = n.promoter_id
        where n.promoter_id is null
            or t.promoter_id is null
            or not ({{ earnings_same('n', 't', ['platform', 'inviter_id', 'is_in_inviter_loop', 'inviter_is_known']) }})
    ),

    skus_now as (
        {{ earnings_sku_terms() }}
    ),

    changed_skus as (
        select coalesce(n.sku_id, t.sku_id) as sku_id
        from skus_now as n
        full outer join {{ earnings_state('skus') }} as t
            on t.sku_id = n.sku_id
        where n.sku_id is null
            or t.sku_id is null
            or not ({{ earnings_same('n', 't', ['merchant_id', 'category', 'is_self_operated']) }})
    ),

    event_orders as (
        {%- if scope.new_events %}
        select order_id from {{ events }}
        where {{ daily_attribution_staged_from(scope.new_events) }}
        union
        {{ daily_line_events_event_id_orders(scope.new_events) }}
        {%- else %}
        select order_id from {{ events }} where 1 = 0
        {%- endif %}
    ),

    affected as (
        select distinct a.order_date, a.promoter_id
        from {{ ref('int_marts__attributed_lines') }} as a
        where a.order_date < {{ d0 }}
            and (
                a.promoter_id in (select promoter_id from changed_promoters)
                or a.sku_id in (select sku_id from changed_skus)
                or a.order_id in (select order_id from event_orders)
                {%- if scope.rules_from %}
                -- an order with a line ordered from the rule's day (a line's own ordered_at
                -- can be later than its order's date); a range on the time-ordered staged
                -- orders, not a join of every line with its order (a new rule comes most days)
                or a.order_id in (
                    select o.order_id from {{ ref('stg_exports__orders') }} as o
                    where o.ordered_at >= cast({{ marts_date_literal(scope.rules_from) }} as timestamp)
                )
                {%- endif %}
            )
    )

    select distinct activity_date, promoter_id
    from (
        select order_date as activity_date, promoter_id from affected
        union all
        select f.order_date, t.inviter_id from affected as f
        inner join split_then as t on t.promoter_id = f.promoter_id
        union all
        select f.order_date, n.inviter_id from affected as f
        inner join split_now as n on n.promoter_id = f.promoter_id
        union all
        -- a changed promoter's rows from invitees' lines only (its platform is on them)
        select activity_date, promoter_id from {{ this }}
        where activity_date < {{ d0 }}
            and promoter_id in (select promoter_id from changed_promoters)
    ) as rows_of_changed_lines
    where promoter_id is not null
{%- endmacro %}

{#- `columns` equal between aliases `a` and `b`, nulls equal. -#}
{% macro earnings_same(a, b, columns) -%}
    {%- for c in columns -%}
        {{ a }}.{{ c }} is not distinct from {{ b }}.{{ c }}{{ " and " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- The upstream promoter_earnings_daily reads each export through (marts_upstream_merged). -#}
{% macro earnings_upstream_merged() -%}
    {{ marts_upstream_merged({
        'orders': 'int_marts__attributed_lines', 'clicks': 'int_marts__attributed_lines',
        'links': 'int_marts__attributed_lines', 'order_events': 'int_daily__line_events',
        'commission_rules': 'stg_exports__commission_rules',
    }) }}
{%- endmacro %}

{#- Pre-hook: check the upstream is current, write the rows to recompute before D0, and
    delete them and every day from D0. -#}
{% macro earnings_pre_hook() -%}
    {%- set scope = earnings_refresh_scope() -%}
    {%- if target.type == 'duckdb' -%}
        {{ earnings_upstream_merged() }};
    {%- endif %}
    {%- if scope['from'] is none -%}
        {{ marts_tests_window_open('activity_date') }}
    {%- elif not scope.partial -%}
        {{ marts_tests_window_open('activity_date', marts_date_literal(scope['from'])) }};
        delete from {{ this }} where activity_date >= {{ marts_date_literal(scope['from']) }}
    {%- else -%}
        {%- set rows = earnings_state('refresh') -%}
        {%- set d0 = marts_date_literal(scope['from']) -%}
        create schema if not exists {{ rows.schema }};
        create or replace table {{ rows }} as
        {{ earnings_rows_to_refresh(scope) }};
        {#- the first day written: D0 or the earliest row recomputed before it -#}
        {{ marts_tests_window_open('activity_date',
            '(select least(' ~ d0 ~ ', coalesce(min(activity_date), ' ~ d0 ~ ')) from ' ~ rows ~ ')') }};
        delete from {{ this }} as m
        where m.activity_date >= {{ marts_date_literal(scope['from']) }}
            or exists (
                select 1 from {{ rows }} as r
                where r.activity_date = m.activity_date and r.promoter_id = m.promoter_id
            )
    {%- endif -%}
{%- endmacro %}

{#- The select's filter on its rows (day `date_column` x `promoter_column`): every day from
    D0 and the pre-hook's rows before it. -#}
{% macro earnings_refresh_filter(scope, date_column, promoter_column) -%}
    {%- if scope['from'] is none -%}
        1 = 1
    {%- else -%}
        ({{ date_column }} >= {{ marts_date_literal(scope['from']) }}
        {%- if scope.partial %}
            or exists (
                select 1 from {{ earnings_state('refresh') }} as r
                where r.activity_date = {{ date_column }} and r.promoter_id = {{ promoter_column }}
            )
        {%- endif -%})
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: keep what this refresh used (split, SKUs, configuration) and record the
    files consumed. -#}
{% macro earnings_post_hook() -%}
    {%- if target.type != 'duckdb' -%}
        select 1 as not_tracked
    {%- else -%}
        {%- set schema = earnings_state('config').schema -%}
        create schema if not exists {{ schema }};
        create or replace table {{ earnings_state('promoters') }} as
        {{ earnings_promoter_terms() }};
        create or replace table {{ earnings_state('skus') }} as
        {{ earnings_sku_terms() }};
        create or replace table {{ earnings_state('config') }} as
        select '{{ earnings_config_fingerprint() }}' as fingerprint;
        drop table if exists {{ earnings_state('refresh') }};
        {{ marts_tests_window_check('activity_date') }};
        {{ consumed_record_files(['orders', 'clicks', 'links', 'order_events', 'commission_rules'],
            ref('stg_exports__manifest')) }}
    {%- endif -%}
{%- endmacro %}
