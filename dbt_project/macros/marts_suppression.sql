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

{{ marts_published_rows('flagged', 'totals_flagged', totals, partition_cols, dim_cols, dim_types, total_rows) }}
{%- endmacro %}

{#- The published rows of a buyer mart: `flagged` (cells with a boolean `suppressed`) and
    `totals_flagged` (one total per partition with `suppressed`), `totals` for the shares.
    A hidden row has every metric empty. -#}
{% macro marts_published_rows(flagged, totals_flagged, totals, partition_cols, dim_cols, dim_types, total_rows=true) -%}
{%- set on_part -%}
    {%- for c in partition_cols %}{% if not loop.first %} and {% endif %}c.{{ c }} = t.{{ c }}{% endfor -%}
{%- endset -%}

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
from {{ flagged }} as c
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
from {{ totals_flagged }} as t
{%- endif %}
{%- endmacro %}

{#- The buyer marts' measures at the four grains their linked suppression needs
    (int_marts__buyer_cells): buyers, new buyers (first attributed order in all loaded data
    falls in the month, from `first_month`), orders and gmv, with a `grain` column
    (category_cell: month x category x city_tier x gender, category_total: month x
    category, month_cell: month x city_tier x gender, month_total: month) and the columns
    a grain does not group by null. `lines`: month, category, order_id, buyer_id,
    paid_amount, city_tier, gender (a buyer's tier and gender are their profile's: one per
    buyer). Emits two CTEs for a `with` list (buyer_categories, buyer_months) and the final
    select.
    Each buyer's lines are summed per month and category (and per month) first: an order
    has one buyer and one month (int_marts__attributed_lines takes both from the order's
    one attribution row, docs/marts.md), so a cell's distinct buyers are its buyer rows and
    its distinct orders the sum of its buyers' distinct orders. No distinct count spans a
    cell (eight did, over every line, before 2026-12-06). -#}
{% macro marts_buyer_cells(lines, first_month) -%}
{%- set grains = {
    'category_cell': ['month', 'category', 'city_tier', 'gender'],
    'category_total': ['month', 'category'],
    'month_cell': ['month', 'city_tier', 'gender'],
    'month_total': ['month'],
} -%}
{%- set column_types = {'category': dbt.type_string(), 'city_tier': 'integer', 'gender': dbt.type_string()} -%}
{%- for name, keys in [('buyer_categories', ['month', 'category', 'city_tier', 'gender']),
                       ('buyer_months', ['month', 'city_tier', 'gender'])] %}
{{ name }} as (
    select
        {%- for c in keys %}
        l.{{ c }},
        {%- endfor %}
        l.buyer_id,
        f.first_month = l.month as is_new,
        count(distinct l.order_id) as orders,
        sum(l.paid_amount) as gmv
    from {{ lines }} as l
    inner join {{ first_month }} as f
        on f.buyer_id = l.buyer_id
    group by {% for c in keys %}l.{{ c }}, {% endfor %}l.buyer_id, f.first_month
){{ "," if loop.first }}
{% endfor %}
{%- for grain, group_by in grains.items() %}
select
    '{{ grain }}' as grain,
    month,
    {%- for column, column_type in column_types.items() %}
    {{ column if column in group_by else 'cast(null as ' ~ column_type ~ ') as ' ~ column }},
    {%- endfor %}
    count(*) as buyers,
    count(case when is_new then 1 end) as new_buyers,
    cast(sum(orders) as bigint) as orders,
    sum(gmv) as gmv
from {{ 'buyer_categories' if 'category' in group_by else 'buyer_months' }}
group by {{ group_by | join(', ') }}
{%- if not loop.last %}

union all
{% endif %}
{%- endfor %}
{%- endmacro %}

{#- int_marts__buyer_cells' inputs, as two CTEs: `lines` (month, category, order_id,
    buyer_id, paid_amount, city_tier, gender: the attributed lines of the months `scope`
    recomputes (macros/marts_months.sql, buyer_cells_scope; every line without it), with
    the buyer profile's latest version and the SKU's category, 'unknown' when missing) and
    `first_month` (buyer_id, first_month: the month of the buyer's first attributed order
    in all loaded data, for new_buyers; for the buyers of `lines` only). -#}
{% macro marts_buyer_lines(scope={'from': none}) -%}
lines as (
    {%- for filter in buyer_cells_line_filters(scope) %}
    select
        cast({{ dbt.date_trunc('month', 'l.order_date') }} as date) as month,
        coalesce(s.category, 'unknown') as category,
        l.order_id,
        l.buyer_id,
        l.paid_amount,
        b.city_tier,
        b.gender
    from {{ ref('int_marts__attributed_lines') }} as l
    left join {{ ref('stg_exports__buyers') }} as b
        on b.buyer_id = l.buyer_id
    left join {{ ref('stg_exports__skus') }} as s
        on s.sku_id = l.sku_id
    where {{ filter }}
    {%- if not loop.last %}

    union all
    {% endif %}
    {%- endfor %}
),

first_month as (
    {%- if scope['from'] is none %}
    select buyer_id, min(month) as first_month
    from lines
    group by buyer_id
    {%- else %}
    -- a buyer's first month can lie before the months recomputed
    select buyer_id, cast({{ dbt.date_trunc('month', 'min(order_date)') }} as date) as first_month
    from {{ ref('int_marts__attributed_lines') }}
    where buyer_id in (select buyer_id from lines)
    group by buyer_id
    {%- endif %}
)
{%- endmacro %}

{#- Both buyer marts from `cells` (int_marts__buyer_cells: the measures of the four grains,
    computed once for both) with suppression linked across them (docs/marts.md
    "Across the two marts"); `mart` = 'demographics' or 'category_mix' selects which one
    the final select returns. gmv is additive across categories: per month the
    demographics cell (tier, gender) is the sum of the category cells of that tier and
    gender, and the demographics total the sum of the category totals. On top of each
    mart's own suppression (marts_suppressed_cells), per month:
      categories : when the month hides a category total, at least two hidden category
                   totals have a non-zero gmv: else the smallest other categories with a
                   non-zero gmv (by buyers, then name) are hidden whole (total and cells);
      rectangles : every hidden category cell not yet a corner of a rectangle of hidden
                   cells (two opposite corners non-zero) gets one, in one pass, from the
                   category that needs the fewest newly hidden cells;
      check      : the proof's conditions are checked below (failed_months); a month
                   failing one is hidden whole in both marts. No iteration: the fallback
                   is over-suppression, never a leak.
    The demographics mart hides only what its own rule hides. -#}
{% macro marts_buyer_marts_linked(cells, mart, min_buyers=10) -%}
{%- set dims = ['city_tier', 'gender'] -%}
{%- set dim_types = ['integer', dbt.type_string()] -%}
{#- the keyed cells' columns but their hidden flag (named, not `* exclude`: portable SQL) -#}
{%- set measures = ['buyers', 'new_buyers', 'orders', 'gmv'] -%}
{%- set mix_columns = ['month', 'category'] + dims + measures + ['col_key'] -%}
{%- set demo_columns = ['month'] + dims + measures + ['col_key'] -%}
{%- set grains = {
    'mix_cells': ('category_cell', ['month', 'category', 'city_tier', 'gender']),
    'mix_totals': ('category_total', ['month', 'category']),
    'demo_cells': ('month_cell', ['month', 'city_tier', 'gender']),
    'demo_totals': ('month_total', ['month']),
} -%}
{%- for name, (grain, group_by) in grains.items() %}
{{ name }} as (
    select {{ group_by | join(', ') }}, buyers, new_buyers, orders, gmv
    from {{ cells }}
    where grain = '{{ grain }}'
),
{% endfor %}
mix_own as (
    with {{ marts_suppressed_cells('mix_cells', 'mix_totals', ['month', 'category'], dims, dim_types, min_buyers) }}
),

demo_own as (
    with {{ marts_suppressed_cells('demo_cells', 'demo_totals', ['month'], dims, dim_types, min_buyers) }}
),

own_hidden_categories as (
    select t.month, t.category, t.gmv
    from mix_totals as t
    inner join mix_own as o
        on o.month = t.month and o.category = t.category and o.is_total
    where o.suppressed
),

hidden_category_counts as (
    select
        m.month,
        count(h.category) as n_hidden,
        count(case when h.gmv <> 0 then 1 end) as n_hidden_gmv
    from (select distinct month from mix_totals) as m
    left join own_hidden_categories as h
        on h.month = m.month
    group by m.month
),

-- a single hidden category total (gmv) would be month total - the visible ones
added_hidden_categories as (
    select r.month, r.category
    from (
        select
            t.month,
            t.category,
            row_number() over (partition by t.month order by t.buyers, t.category) as size_rank
        from mix_totals as t
        where t.gmv <> 0
            and not exists (
                select 1 from own_hidden_categories as h
                where h.month = t.month and h.category = t.category)
    ) as r
    inner join hidden_category_counts as n
        on n.month = r.month
    where n.n_hidden >= 1 and r.size_rank <= 2 - n.n_hidden_gmv
),

hidden_categories as (
    select month, category from own_hidden_categories
    union all
    select month, category from added_hidden_categories
),

-- a (tier, gender) key without nulls, for the joins below
mix_keyed as (
    select
        c.*,
        coalesce(cast(c.city_tier as {{ dbt.type_string() }}), '-') || '|' || coalesce(cast(c.gender as {{ dbt.type_string() }}), '-') as col_key,
        (o.suppressed
            or exists (
                select 1 from hidden_categories as h
                where h.month = c.month and h.category = c.category)) as seed_hidden
    from mix_cells as c
    inner join mix_own as o
        on not o.is_total
        and o.month = c.month
        and o.category = c.category
        and o.city_tier is not distinct from c.city_tier
        and o.gender is not distinct from c.gender
),

demo_keyed as (
    select
        c.*,
        coalesce(cast(c.city_tier as {{ dbt.type_string() }}), '-') || '|' || coalesce(cast(c.gender as {{ dbt.type_string() }}), '-') as col_key,
        o.suppressed
    from demo_cells as c
    inner join demo_own as o
        on not o.is_total
        and o.month = c.month
        and o.city_tier is not distinct from c.city_tier
        and o.gender is not distinct from c.gender
),

-- rectangles: a hidden cell is protected when it is a corner of a rectangle of hidden
-- cells (two opposite corners non-zero). Each seed-hidden cell without one gets one: with
-- another hidden cell of its category (column k2) and the category that needs the fewest
-- newly hidden cells in (k, k2) (then fewest buyers, then name); those are hidden
demo_hidden_columns as (
    select distinct month, col_key from demo_keyed where suppressed
),

seed_hidden_cells as (
    select month, category, col_key, gmv from mix_keyed where seed_hidden
),

unprotected_cells as (
    select h.*
    from seed_hidden_cells as h
    where not exists (
        select 1
        from seed_hidden_cells as a
        inner join seed_hidden_cells as b
            on b.month = a.month
        inner join seed_hidden_cells as d
            on d.month = a.month and d.category = b.category and d.col_key = a.col_key
        where a.month = h.month and a.category = h.category and a.col_key <> h.col_key
            and b.col_key = h.col_key and b.category <> h.category
            and ((a.gmv <> 0 and b.gmv <> 0) or (h.gmv <> 0 and d.gmv <> 0)))
),

rectangle_candidates as (
    select
        u.month,
        u.category,
        u.col_key,
        p.category as partner,
        a.col_key as col_key2,
        row_number() over (
            partition by u.month, u.category, u.col_key
            order by
                (case when b.seed_hidden then 0 else 1 end) + (case when d.seed_hidden then 0 else 1 end),
                (case when b.seed_hidden then 0 else b.buyers end) + (case when d.seed_hidden then 0 else d.buyers end),
                p.category,
                a.col_key) as choice
    from unprotected_cells as u
    inner join seed_hidden_cells as a
        on a.month = u.month and a.category = u.category and a.col_key <> u.col_key
    inner join (select distinct month, category from mix_keyed) as p
        on p.month = u.month and p.category <> u.category
    inner join mix_keyed as b
        on b.month = u.month and b.category = p.category and b.col_key = u.col_key
    inner join mix_keyed as d
        on d.month = u.month and d.category = p.category and d.col_key = a.col_key
    where (a.gmv <> 0 and b.gmv <> 0) or (u.gmv <> 0 and d.gmv <> 0)
),

added_hidden_cells as (
    select month, partner as category, col_key from rectangle_candidates where choice = 1
    union
    select month, partner as category, col_key2 as col_key from rectangle_candidates where choice = 1
),

mix_linked_cells as (
    select
        {%- for column in mix_columns %}
        c.{{ column }},
        {%- endfor %}
        (c.seed_hidden
            or exists (
                select 1 from added_hidden_cells as x
                where x.month = c.month and x.category = c.category and x.col_key = c.col_key)) as suppressed
    from mix_keyed as c
),

demo_linked_cells as (
    select * from demo_keyed
),

-- the proof's conditions (docs/marts.md), per month; a month failing one is hidden whole
mix_hidden_cells as (
    select month, category, col_key, gmv from mix_linked_cells where suppressed
),

mix_rows_hidden as (
    select
        month,
        category,
        count(case when suppressed then 1 end) as n_hidden,
        count(case when suppressed and gmv <> 0 then 1 end) as n_hidden_gmv,
        coalesce(sum(case when suppressed then buyers end), 0) as hidden_buyers,
        count(case when not suppressed then 1 end) as n_visible
    from mix_linked_cells
    group by month, category
),

failed_months as (
    -- a category whose total is shown hides 0 cells or >= 2 with a non-zero gmv and >= min_buyers buyers
    select r.month
    from mix_rows_hidden as r
    where r.n_hidden >= 1
        and (r.n_hidden_gmv < 2 or r.hidden_buyers < {{ min_buyers }})
        and not exists (
            select 1 from hidden_categories as h
            where h.month = r.month and h.category = r.category)
    union all
    -- a hidden category total has every cell hidden (else a visible share gives it away)
    select r.month
    from mix_rows_hidden as r
    inner join hidden_categories as h
        on h.month = r.month and h.category = r.category
    where r.n_visible > 0
    union all
    -- hidden category totals: none, or >= 2 with a non-zero gmv
    select h.month
    from hidden_categories as h
    inner join mix_totals as t
        on t.month = h.month and t.category = h.category
    group by h.month
    having count(case when t.gmv <> 0 then 1 end) < 2
    union all
    -- every hidden category cell is a corner of a rectangle of hidden cells (two opposite
    -- corners non-zero), or its category's total is hidden and another hidden category
    -- has a cell in its column (one of the two non-zero)
    select h.month
    from mix_hidden_cells as h
    where not exists (
            select 1
            from mix_hidden_cells as a
            inner join mix_hidden_cells as b
                on b.month = a.month
            inner join mix_hidden_cells as d
                on d.month = a.month and d.category = b.category and d.col_key = a.col_key
            where a.month = h.month and a.category = h.category and a.col_key <> h.col_key
                and b.col_key = h.col_key and b.category <> h.category
                and ((a.gmv <> 0 and b.gmv <> 0) or (h.gmv <> 0 and d.gmv <> 0)))
        and not exists (
            select 1
            from mix_hidden_cells as b
            inner join hidden_categories as hc1
                on hc1.month = h.month and hc1.category = h.category
            inner join hidden_categories as hc2
                on hc2.month = b.month and hc2.category = b.category
            where b.month = h.month and b.col_key = h.col_key and b.category <> h.category
                and (h.gmv <> 0 or b.gmv <> 0))
    union all
    -- a shown demographics cell whose column hides category cells: >= 2 of them non-zero
    -- (else its gmv - the visible ones would be the one non-zero hidden cell's)
    select h.month
    from mix_hidden_cells as h
    inner join demo_linked_cells as d
        on d.month = h.month and d.col_key = h.col_key and not d.suppressed
    group by h.month, h.col_key
    having count(case when h.gmv <> 0 then 1 end) < 2
    union all
    -- every hidden category total shares a column with another hidden category (one of
    -- the two cells non-zero)
    select h.month
    from hidden_categories as h
    where not exists (
        select 1
        from mix_hidden_cells as a
        inner join mix_hidden_cells as b
            on b.month = a.month and b.col_key = a.col_key and b.category <> a.category
        inner join hidden_categories as h2
            on h2.month = b.month and h2.category = b.category
        where a.month = h.month and a.category = h.category
            and (a.gmv <> 0 or b.gmv <> 0))
    union all
    -- every hidden demographics cell shares a category with another hidden demographics
    -- cell, both category cells hidden (one of the two non-zero)
    select d.month
    from demo_linked_cells as d
    where d.suppressed
        and not exists (
            select 1
            from demo_linked_cells as d2
            inner join mix_hidden_cells as a
                on a.month = d.month and a.col_key = d.col_key
            inner join mix_hidden_cells as b
                on b.month = a.month and b.category = a.category and b.col_key = d2.col_key
            where d2.month = d.month and d2.suppressed and d2.col_key <> d.col_key
                and (a.gmv <> 0 or b.gmv <> 0))
    union all
    -- a hidden month total: everything of the month hidden
    select o.month
    from demo_own as o
    where o.is_total and o.suppressed
),
{%- if mart == 'demographics' %}

demo_final_cells as (
    select
        {%- for column in demo_columns %}
        c.{{ column }},
        {%- endfor %}
        (c.suppressed or c.month in (select month from failed_months)) as suppressed
    from demo_linked_cells as c
),

demo_final_totals as (
    select
        t.*,
        (t.month in (select month from failed_months)) as suppressed
    from demo_totals as t
)

{{ marts_published_rows('demo_final_cells', 'demo_final_totals', 'demo_totals', ['month'], dims, dim_types) }}
{%- else %}

mix_final_cells as (
    select
        {%- for column in mix_columns %}
        c.{{ column }},
        {%- endfor %}
        (c.suppressed or c.month in (select month from failed_months)) as suppressed
    from mix_linked_cells as c
),

mix_final_totals as (
    select
        t.*,
        (t.month in (select month from failed_months)
            or exists (
                select 1 from hidden_categories as h
                where h.month = t.month and h.category = t.category)) as suppressed
    from mix_totals as t
)

{{ marts_published_rows('mix_final_cells', 'mix_final_totals', 'mix_totals', ['month', 'category'], dims, dim_types) }}
{%- endif %}
{%- endmacro %}
