"""The tables the pipeline publishes and serves: the settlement's published tables and the
analytics marts, with how their Parquet copies are partitioned and sorted. Read by the
writers (publish, marts) and by the BI catalog (serving), which therefore need not import
each other."""

# published table -> (month column, sort key); the month column names its Parquet partition
PUBLISHED_TABLES = {
    "payouts": ("settlement_month", "promoter_id"),
    "payout_lines": ("settlement_month", "kind, order_id, line_no, level, beneficiary_id"),
    "suspense": ("settlement_month", "order_id, line_no"),
    "findings": ("settlement_month", "kind, row_key"),
    "line_terms": ("first_settlement_month", "order_id, line_no"),
}

# mart -> sort key of its Parquet copy (rows are written sorted, so the same table
# always gives the same file contents)
MART_TABLES = {
    "group_daily_activity": "activity_date, group_id",
    "group_status": "as_of_date, group_id",
    "group_activity_summary": "activity_date, platform, owner_role",
    "buyer_demographics_monthly": "month, is_total, city_tier, gender",
    "buyer_category_mix_monthly": "month, category, is_total, city_tier, gender",
    "promoter_performance_monthly": "month, platform, role, city_tier",
    "sku_ranking": "ranking_date, sku_rank",
    "promoter_category_affinity": "as_of_date, promoter_id, platform, category",
    "promoter_earnings_daily": "activity_date, promoter_id",
}
