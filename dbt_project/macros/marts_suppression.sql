{#- Small-cell suppression for the buyer marts (outputs.md; docs/marts.md).
    `cells` has the partition columns, the dimension columns and the additive metrics
    buyers, new_buyers, orders, gmv; `totals` has one row per partition with the same
    metrics computed over all buyers of the partition (distinct buyers, not a sum of
    cells). Output: the cells plus one total row per partition (is_total = true,
    dimension columns empty), with aov, share_of_buyers, share_of_gmv and `suppressed`.
    Primary suppression: a cell with fewer than `min_buyers` buyers. Complementary
    suppression: because the total row is published, one hidden cell (or hidden cells
    adding up to fewer than `min_buyers` buyers) could be recovered by subtraction; then
    the smallest visible cell of the partition is hidden as well. Total rows are never
    suppressed, so totals stay exact. -#}
{% macro marts_suppressed_cells(cells, totals, partition_cols, dim_cols, dim_types, min_buyers=10) -%}
{%- set part = partition_cols | join(', ') -%}
{%- set on_part -%}
    {%- for c in partition_cols %}{% if not loop.first %} and {% endif %}c.{{ c }} = t.{{ c }}{% endfor -%}
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
        sum(case when is_primary = 1 then buyers else 0 end) over (partition by {{ part }}) as primary_buyers,
        row_number() over (
            partition by {{ part }}, is_primary
            order by buyers, {{ dim_cols | join(', ') }}
        ) as rank_in_class
    from primary_flags as f
),

flagged as (
    select
        f.*,
        (is_primary = 1
            or (is_primary = 0 and rank_in_class = 1 and n_primary >= 1
                and (n_primary = 1 or primary_buyers < {{ min_buyers }}))) as suppressed
    from partition_flags as f
)

select
    {%- for c in partition_cols %}
    c.{{ c }},
    {%- endfor %}
    {%- for c in dim_cols %}
    c.{{ c }},
    {%- endfor %}
    false as is_total,
    cast(case when not c.suppressed then c.buyers end as integer) as buyers,
    cast(case when not c.suppressed then c.new_buyers end as integer) as new_buyers,
    cast(case when not c.suppressed then c.orders end as integer) as orders,
    cast(case when not c.suppressed then c.gmv end as {{ money_type() }}) as gmv,
    cast(case when not c.suppressed and c.orders > 0 then round(c.gmv / c.orders, 2) end as {{ money_type() }}) as aov,
    cast(case when not c.suppressed then cast(c.buyers as decimal(18,6)) / t.buyers end as decimal(9,6)) as share_of_buyers,
    cast(case when not c.suppressed and t.gmv > 0 then c.gmv / t.gmv end as decimal(9,6)) as share_of_gmv,
    c.suppressed
from flagged as c
inner join {{ totals }} as t
    on {{ on_part }}

union all

select
    {%- for c in partition_cols %}
    t.{{ c }},
    {%- endfor %}
    {%- for c in dim_cols %}
    cast(null as {{ dim_types[loop.index0] }}) as {{ c }},
    {%- endfor %}
    true as is_total,
    cast(t.buyers as integer) as buyers,
    cast(t.new_buyers as integer) as new_buyers,
    cast(t.orders as integer) as orders,
    cast(t.gmv as {{ money_type() }}) as gmv,
    cast(case when t.orders > 0 then round(t.gmv / t.orders, 2) end as {{ money_type() }}) as aov,
    cast(1 as decimal(9,6)) as share_of_buyers,
    cast(case when t.gmv > 0 then 1 end as decimal(9,6)) as share_of_gmv,
    false as suppressed
from {{ totals }} as t
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
