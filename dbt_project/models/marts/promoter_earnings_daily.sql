{#- Estimated earnings (预估佣金, outputs.md promoter_earnings_daily), per Shanghai order
    date of the attributed lines x promoter: the promoter's attributed orders, lines and
    GMV of the day, and what the day's lines would earn them at today's state
    (estimated_line_earnings: base = paid - refunds so far, 0 once cancelled, from the daily
    event summary; rate in force at the line's ordered_at by §2 precedence; §3 fee and split at the promoter's latest platform and
    inviter, int_marts__promoter_split, shared with the close's reconciliation; each step
    rounded half up to 0.01).
    A promoter's row holds their own earnings: level 1 on the lines they drove, level 2 on
    the lines their invitees drove (as the level-2 beneficiary), so a row can have level-2
    money and no orders of its own (docs/marts.md).
    Incremental (append; the pre-hook deletes what is recomputed): every day from the first
    date new orders, clicks or links can change, and before it the rows of the lines whose
    estimate an event, a SKU's attributes, a promoter's split or a re-delivered rule can
    have changed (macros/earnings_incremental.sql); everything after a configuration change.
    Equal to a full refresh after every batch (tests/test_marts_late_files.py d-h). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ earnings_pre_hook() }}",
    post_hook="{{ earnings_post_hook() }}",
) }}
-- depends_on: {{ ref('stg_exports__manifest') }}
-- depends_on: {{ ref('stg_exports__order_events') }}
-- depends_on: {{ ref('stg_exports__promoters') }}
-- the versions the refresh window compares (macros/marts_incremental.sql)
-- depends_on: {{ ref('stg_exports__order_versions') }}
-- depends_on: {{ ref('stg_exports__click_versions') }}
-- depends_on: {{ ref('stg_exports__link_versions') }}
-- depends_on: {{ ref('stg_exports__commission_rule_versions') }}
{%- set scope = earnings_refresh_scope() %}

with loops as (
    select promoter_id from {{ ref('int_marts__promoter_split') }} where is_in_inviter_loop
),

{%- if scope.partial %}
lines_wanted as (
    select activity_date, promoter_id from {{ earnings_state('refresh') }}
    union
    select r.activity_date, s.promoter_id
    from {{ earnings_state('refresh') }} as r
    inner join {{ ref('int_marts__promoter_split') }} as s
        on s.inviter_id = r.promoter_id
),
{%- endif %}

-- the lines recomputed: every line from D0 and, before it, the lines of the pre-hook's
-- rows with their invitees' lines (level 2); two disjoint selections, so that only the
-- chosen lines meet their order lines below (an OR with the semi join was evaluated after
-- joining every attributed line: 5 of the refresh's 13 s at `today`)
chosen as (
    select a.order_date, a.order_id, a.line_no, a.sku_id, a.paid_amount, a.promoter_id
    from {{ ref('int_marts__attributed_lines') }} as a
    {%- if scope['from'] %}
    where a.order_date >= {{ marts_date_literal(scope['from']) }}
    {%- endif %}
    {%- if scope.partial %}
    union all
    select a.order_date, a.order_id, a.line_no, a.sku_id, a.paid_amount, a.promoter_id
    from {{ ref('int_marts__attributed_lines') }} as a
    inner join lines_wanted as w
        on w.activity_date = a.order_date and w.promoter_id = a.promoter_id
    where a.order_date < {{ marts_date_literal(scope['from']) }}
    {%- endif %}
),

-- the order's date (its head line's), but each line's own ordered_at: the rate in force
-- then is the one the close applies (§2), even when a line was ordered after a rule change
lines as (
    select c.order_date, c.order_id, c.line_no, o.ordered_at, c.sku_id, c.paid_amount, c.promoter_id
    from chosen as c
    inner join {{ ref('stg_exports__orders') }} as o
        on o.order_id = c.order_id and o.line_no = c.line_no
),

estimates as (
    {{ estimated_line_earnings('lines', ref('int_marts__promoter_split'), 'loops') }}
),

per_beneficiary as (
    -- level 1: the direct promoter's row, with the orders, lines and GMV
    select
        l.order_date as activity_date,
        e.promoter_id,
        e.order_id,
        e.paid_amount as gmv,
        e.level1_at_paid,
        e.level1_at_base,
        case when e.is_completed then e.level1_at_base else 0 end as level1_on_completed,
        cast(0 as {{ money_type() }}) as level2_at_paid,
        cast(0 as {{ money_type() }}) as level2_at_base,
        cast(0 as {{ money_type() }}) as level2_on_completed
    from estimates as e
    inner join lines as l
        on l.order_id = e.order_id and l.line_no = e.line_no
    union all
    -- level 2: the inviter's row, money only
    select
        l.order_date as activity_date,
        e.level2_beneficiary_id as promoter_id,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ money_type() }}) as gmv,
        0, 0, 0,
        e.level2_at_paid,
        e.level2_at_base,
        case when e.is_completed then e.level2_at_base else 0 end
    from estimates as e
    inner join lines as l
        on l.order_id = e.order_id and l.line_no = e.line_no
    where e.level2_beneficiary_id is not null
),

daily as (
    select
        activity_date,
        promoter_id,
        count(distinct order_id) as orders,
        count(order_id) as order_lines,
        coalesce(sum(gmv), 0) as gmv,
        sum(level1_at_paid) as level1_at_paid,
        sum(level1_at_base) as level1_at_base,
        sum(level1_on_completed) as level1_on_completed,
        sum(level2_at_paid) as level2_at_paid,
        sum(level2_at_base) as level2_at_base,
        sum(level2_on_completed) as level2_on_completed
    from per_beneficiary
    group by activity_date, promoter_id
)

select
    d.activity_date,
    d.promoter_id,
    coalesce(p.platform, 'unknown') as platform,
    cast(d.orders as integer) as orders,
    cast(d.order_lines as integer) as order_lines,
    cast(d.gmv as {{ money_type() }}) as gmv,
    cast(d.level1_at_base as {{ money_type() }}) as level1_estimated,
    cast(d.level1_on_completed as {{ money_type() }}) as level1_on_completed,
    cast(d.level1_at_base - d.level1_on_completed as {{ money_type() }}) as level1_on_pending,
    cast(d.level1_at_paid - d.level1_at_base as {{ money_type() }}) as level1_lost_to_refunds_cancels,
    cast(d.level2_at_base as {{ money_type() }}) as level2_estimated,
    cast(d.level2_on_completed as {{ money_type() }}) as level2_on_completed,
    cast(d.level2_at_base - d.level2_on_completed as {{ money_type() }}) as level2_on_pending,
    cast(d.level2_at_paid - d.level2_at_base as {{ money_type() }}) as level2_lost_to_refunds_cancels
from daily as d
left join {{ ref('int_marts__promoter_split') }} as p
    on p.promoter_id = d.promoter_id
where {{ earnings_refresh_filter(scope, 'd.activity_date', 'd.promoter_id') }}
