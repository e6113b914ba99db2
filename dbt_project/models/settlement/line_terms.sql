-- Terms of the lines this run settles for the first time. Published with the month and
-- frozen from then on (§3): rate, shares, beneficiaries and group of the first posting.
-- A table, though a filter of int_settlement__new_line_terms: publish inserts and counts
-- it, and int_settlement__line_entitlements, the reconciliation and 13 tests read it; as a
-- view those reads cost about as much as writing it (7 of 9 CPU-s at `today`) and publish
-- would read a view of intermediate tables (docs/benchmarks.md).
select
    order_id,
    line_no,
    '{{ settlement_month() }}' as first_settlement_month,
    '{{ var("run_id") }}' as first_run_id,
    click_id,
    link_id,
    group_id,
    promoter_id,
    platform,
    level2_beneficiary_id,
    rule_id,
    rule_scope,
    rate,
    platform_fee_rate,
    level1_share,
    level2_share
from {{ ref('int_settlement__new_line_terms') }}
where suspense_reason is null
