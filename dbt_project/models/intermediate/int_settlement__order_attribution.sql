{{ config(materialized='view') }}
-- 跟单 (§1): each order goes to the last click by the order's buyer on any share link with
-- ordered_at - 15 days < clicked_at <= ordered_at; ties on clicked_at: the greatest
-- click_id. The order's buyer and time are its lowest line's.
-- Computed every day after staging (int_daily__order_attribution, macros/attribution.sql).
-- A view of every staged order's row under the close's names, not a filter to the new
-- lines' orders: each reader inner-joins its own lines (int_settlement__new_line_terms,
-- rpt_promoter_earnings_reconciliation), so the pick costs nothing extra. As a table it
-- copied 5.7M rows at `today` (7-8 s, 8 CPU-s) to be read twice; the semi-join to
-- int_settlement__new_lines inside a view cost its reader 4 CPU-s more than no filter
-- (docs/benchmarks.md).
select
    a.order_id,
    a.buyer_id as order_buyer_id,
    a.ordered_at as order_ordered_at,
    a.click_id,
    a.link_id,
    a.clicked_at,
    a.is_attributed
from {{ ref('int_daily__order_attribution') }} as a
