{#- Small-cell suppression for the buyer marts (outputs.md; docs/marts.md "Suppression").
    `cells` has the partition columns, the dimension columns and the additive metrics
    buyers, new_buyers, orders, gmv; `totals` has one row per partition with the same
    metrics over all buyers of the partition (distinct buyers, not a sum of cells).
    Output: the cells plus (total_rows) one total row per partition (is_total = true,
    dimension columns empty), with aov, share_of_buyers, share_of_gmv and `suppressed`.
    The rule, so that no suppressed figure can be computed as total - sum(visible cells):
      primary       : a cell with fewer than `min_buyers` buyers is hidden;
      complementary : when a partition hides any cell, its hidden cells must be at least
                      two, at least two of them with a non-zero gmv (or the residual
                      would be one cell's gmv), and together at least `min_buyers`
                      buyers; otherwise the smallest other cells (by buyers, then the
                      dimension columns) are hidden one by one until that holds;
      total         : the total row is hidden when it has fewer than `min_buyers` buyers,
                      or when even hiding every cell cannot satisfy the rule above.
    A hidden row has every metric empty and suppressed = true. -#}
{% macro marts_suppressed_cells(cells, totals, partition_cols, dim_cols, dim_types, min_buyers=10, total_rows=true) -%}
{%- set part = partition_cols | join(', ') -%}
{%- set on_part -%}
    {%- for c in partition_cols %}{% if not loop.first %} and {% endif %}c.{{ c }} = t.{{ c }}{% endfor -%}
{%- endset -%}
{%- set on_part_s -%}
    {%- for c in partition_cols %}{% if not loop.first %} and {% endif %}s.{{ c }} = t.{{ c }}{% endfor -%}
{%- endset -%}
primary_flags as (
    select
        c.*,
        case when c.buyers < {{ min_buyers }} then 1 else 0 end as is_primary
    from {{ cells }} as c
),

partition_flags as (
    select
        f.*,
        sum(is_primary) over (partition by {{ part }}) as n_primary,
        sum(case when is_primary = 1 and gmv <> 0 then 1 else 0 end) over (partition by {{ part }}) as n_primary_gmv,
        sum(case when is_primary = 1 then buyers else 0 end) over (partition by {{ part }}) as primary_buyers,
        -- among the other cells, smallest first: what the cells before this one add
        coalesce(count(*) over (
            partition by {{ part }}, is_primary order by buyers, {{ dim_cols | join(', ') }}
            rows between unbounded preceding and 1 preceding), 0) as cells_before,
        coalesce(sum(case when gmv <> 0 then 1 else 0 end) over (
            partition by {{ part }}, is_primary order by buyers, {{ dim_cols | join(', ') }}
            rows between unbounded preceding and 1 preceding), 0) as gmv_cells_before,
        coalesce(sum(buyers) over (
            partition by {{ part }}, is_primary order by buyers, {{ dim_cols | join(', ') }}
            rows between unbounded preceding and 1 preceding), 0) as buyers_before
    from primary_flags as f
),

flagged as (
    select
        f.*,
        (is_primary = 1
            or (n_primary >= 1
                and (n_primary + cells_before < 2
                     or n_primary_gmv + gmv_cells_before < 2
                     or primary_buyers + buyers_before < {{ min_buyers }}))) as suppressed
    from partition_flags as f
),

hidden_per_partition as (
    select
        {{ part }},
        sum(case when suppressed then 1 else 0 end) as hidden_cells,
        sum(case when suppressed and gmv <> 0 then 1 else 0 end) as hidden_gmv_cells,
        sum(case when suppressed then buyers else 0 end) as hidden_buyers
    from flagged
    group by {{ part }}
),

totals_flagged as (
    select
        t.*,
        (t.buyers < {{ min_buyers }}
            or (s.hidden_cells >= 1
                and (s.hidden_cells < 2 or s.hidden_gmv_cells < 2 or s.hidden_buyers < {{ min_buyers }}))) as suppressed
    from {{ totals }} as t
    inner join hidden_per_partition as s
        on {{ on_part_s }}
)

select
    {%- for c in partition_cols %}
    c.{{ c }},
    {%- endfor %}
    {%- for c in dim_cols %}
    c.{{ c }},
    {%- endfor %}
    {%- if total_rows %}
    false as is_total,
    {%- endif %}
    cast(case when not c.suppressed then c.buyers end as integer) as buyers,
    cast(case when not c.suppressed then c.new_buyers end as integer) as new_buyers,
    cast(case when not c.suppressed then c.orders end as integer) as orders,
    cast(case when not c.suppressed then c.gmv end as {{ money_type() }}) as gmv,
    case when not c.suppressed then {{ marts_money_ratio('c.gmv', 'c.orders') }} end as aov,
    case when not c.suppressed then {{ marts_share('c.buyers', 't.buyers') }} end as share_of_buyers,
    case when not c.suppressed then {{ marts_share('c.gmv', 't.gmv') }} end as share_of_gmv,
    c.suppressed
from flagged as c
inner join {{ totals }} as t
    on {{ on_part }}
{%- if total_rows %}

union all

select
    {%- for c in partition_cols %}
    t.{{ c }},
    {%- endfor %}
    {%- for c in dim_cols %}
    cast(null as {{ dim_types[loop.index0] }}) as {{ c }},
    {%- endfor %}
    true as is_total,
    cast(case when not t.suppressed then t.buyers end as integer) as buyers,
    cast(case when not t.suppressed then t.new_buyers end as integer) as new_buyers,
    cast(case when not t.suppressed then t.orders end as integer) as orders,
    cast(case when not t.suppressed then t.gmv end as {{ money_type() }}) as gmv,
    case when not t.suppressed then {{ marts_money_ratio('t.gmv', 't.orders') }} end as aov,
    cast(case when not t.suppressed then 1 end as decimal(9,6)) as share_of_buyers,
    cast(case when not t.suppressed and t.gmv <> 0 then 1 end as decimal(9,6)) as share_of_gmv,
    t.suppressed
from totals_flagged as t
{%- endif %}
{%- endmacro %}

{#- The buyer marts' measures per group of `group_by` columns over `lines` (month,
    order_id, buyer_id, paid_amount, ...): buyers, new buyers (first attributed order in
    all loaded data falls in the month, from `first_month`), orders, GMV. One definition
    for the cells and the total rows of buyer_demographics_monthly and
    buyer_category_mix_monthly. -#}
{% macro marts_buyer_measures(lines, first_month, group_by) -%}
    select
        {%- for c in group_by %}
        l.{{ c }},
        {%- endfor %}
        count(distinct l.buyer_id) as buyers,
        count(distinct case when f.first_month = l.month then l.buyer_id end) as new_buyers,
        count(distinct l.order_id) as orders,
        sum(l.paid_amount) as gmv
    from {{ lines }} as l
    inner join {{ first_month }} as f
        on f.buyer_id = l.buyer_id
    group by {% for c in group_by %}l.{{ c }}{{ ", " if not loop.last }}{% endfor %}
{%- endmacro %}
