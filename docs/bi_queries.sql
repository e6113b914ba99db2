-- Example BI queries over the analytics marts (docs/bi.md). They run unchanged on the BI
-- catalog <warehouse>/bi/supernova_bi.duckdb (views marts.<table> over the Parquet copies),
-- which is where BI tools run them, and on the pipeline's own schema marts;
-- tests/test_marts.py runs every one of them.
-- Each query starts with a line "-- name: <name>".

-- name: female_buyer_share_by_month
-- Share of female buyers per month. Female buyers are summed over the visible (not
-- suppressed) cells, the month's buyers come from the total row, so a suppressed female
-- cell makes this a lower bound (flagged in has_suppressed_cells).
select
    month,
    sum(case when gender = 'F' and not is_total and not suppressed then buyers else 0 end) as female_buyers,
    max(case when is_total then buyers end) as buyers,
    round(cast(sum(case when gender = 'F' and not is_total and not suppressed then buyers else 0 end) as double)
          / max(case when is_total then buyers end), 4) as female_share,
    max(case when gender = 'F' and suppressed then 1 else 0 end) = 1 as has_suppressed_cells
from marts.buyer_demographics_monthly
group by month
order by month;

-- name: gmv_aov_by_city_tier
-- GMV and average order value by buyer city tier and month (visible cells only).
select
    month,
    city_tier,
    sum(gmv) as gmv,
    sum(orders) as orders,
    round(sum(gmv) / sum(orders), 2) as aov
from marts.buyer_demographics_monthly
where not is_total and not suppressed and city_tier is not null
group by month, city_tier
order by month, city_tier;

-- name: dead_group_rate_by_platform_and_owner_role
-- Dead-group (僵死群) rate on the latest day: dead groups / existing groups.
select
    platform,
    owner_role,
    sum(dead_groups) as dead_groups,
    sum(existing_groups) as existing_groups,
    round(cast(sum(dead_groups) as double) / sum(existing_groups), 4) as dead_group_rate
from marts.group_activity_summary
where activity_date = (select max(activity_date) from marts.group_activity_summary)
group by platform, owner_role
having sum(existing_groups) > 0
order by dead_group_rate desc, platform, owner_role;

-- name: orders_per_group_per_day
-- Attributed orders per existing group per day, all platforms.
select
    activity_date,
    sum(orders) as orders,
    sum(existing_groups) as existing_groups,
    round(cast(sum(orders) as double) / sum(existing_groups), 4) as orders_per_existing_group
from marts.group_activity_summary
group by activity_date
having sum(existing_groups) > 0
order by activity_date;

-- name: top_categories_by_city_tier
-- The three categories with the most GMV per buyer city tier in the latest month
-- (visible cells only).
select city_tier, category, gmv, category_rank
from (
    select
        city_tier,
        category,
        sum(gmv) as gmv,
        row_number() over (partition by city_tier order by sum(gmv) desc, category) as category_rank
    from marts.buyer_category_mix_monthly
    where not is_total and not suppressed and city_tier is not null
        and month = (select max(month) from marts.buyer_category_mix_monthly)
    group by city_tier, category
) as ranked
where category_rank <= 3
order by city_tier, category_rank;
