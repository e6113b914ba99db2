-- Terms frozen by earlier months' first postings (§3: later postings use them even if
-- rules, platform or inviter changed). Terms first posted in M itself are excluded, so
-- a reopened month is recomputed from the same starting point.
select *
from {{ published_or_empty('line_terms', "select
        cast(null as " ~ dbt.type_string() ~ ") as order_id,
        cast(null as integer) as line_no,
        cast(null as " ~ dbt.type_string() ~ ") as first_settlement_month,
        cast(null as " ~ dbt.type_string() ~ ") as first_run_id,
        cast(null as " ~ dbt.type_string() ~ ") as click_id,
        cast(null as " ~ dbt.type_string() ~ ") as link_id,
        cast(null as " ~ dbt.type_string() ~ ") as group_id,
        cast(null as " ~ dbt.type_string() ~ ") as promoter_id,
        cast(null as " ~ dbt.type_string() ~ ") as platform,
        cast(null as " ~ dbt.type_string() ~ ") as level2_beneficiary_id,
        cast(null as " ~ dbt.type_string() ~ ") as rule_id,
        cast(null as " ~ dbt.type_string() ~ ") as rule_scope,
        cast(null as " ~ rate_type() ~ ") as rate,
        cast(null as " ~ rate_type() ~ ") as platform_fee_rate,
        cast(null as " ~ rate_type() ~ ") as level1_share,
        cast(null as " ~ rate_type() ~ ") as level2_share") }} as t
where first_settlement_month < '{{ settlement_month() }}'
