{{ config(materialized='view') }}
-- A view: a plain union read once, by line_entitlements; as a table it copied every
-- settled line's terms (≈ 7M rows at today's volume, 6.5 s) only to be read back.
-- The terms every settled line is paid on as of month M: frozen terms from earlier
-- months, plus the terms of lines first settled now (not in suspense).
select
    order_id, line_no, first_settlement_month, first_run_id, click_id, link_id, group_id,
    promoter_id, platform, level2_beneficiary_id, rule_id, rule_scope, rate,
    platform_fee_rate, level1_share, level2_share
from {{ ref('int_settlement__published_line_terms') }}

union all

select
    order_id, line_no, first_settlement_month, first_run_id, click_id, link_id, group_id,
    promoter_id, platform, level2_beneficiary_id, rule_id, rule_scope, rate,
    platform_fee_rate, level1_share, level2_share
from {{ ref('line_terms') }}
