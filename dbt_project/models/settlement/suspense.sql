-- Lines that cannot be settled as of M (§7): unknown link, SKU, promoter or inviter.
-- Recomputed by every run, so a line leaves suspense as soon as its data arrives and
-- then accrues in the month whose run first settles it.
select
    '{{ settlement_month() }}' as settlement_month,
    order_id,
    line_no,
    suspense_reason as reason,
    sku_id,
    click_id,
    link_id,
    promoter_id,
    inviter_id,
    completed_at,
    paid_amount,
    base_amount,
    '{{ var("run_id") }}' as run_id
from {{ ref('int_settlement__new_line_terms') }}
where suspense_reason is not null
