-- §2: overlapping validity for the same scope and key stops the run with an error
-- listing the rules. Touching intervals (valid_to = next valid_from) do not overlap.
select
    a.rule_id,
    b.rule_id as overlapping_rule_id,
    a.scope,
    case a.scope when 'sku' then a.sku_id when 'merchant' then a.merchant_id else a.category end as scope_key,
    a.valid_from,
    a.valid_to,
    b.valid_from as overlapping_valid_from,
    b.valid_to as overlapping_valid_to
from {{ ref('stg_exports__commission_rules') }} as a
inner join {{ ref('stg_exports__commission_rules') }} as b
    on a.scope = b.scope
    and case a.scope when 'sku' then a.sku_id when 'merchant' then a.merchant_id else a.category end
        = case b.scope when 'sku' then b.sku_id when 'merchant' then b.merchant_id else b.category end
    and a.rule_id < b.rule_id
    and a.valid_from < coalesce(b.valid_to, cast('9999-12-31 00:00:00' as timestamp))
    and b.valid_from < coalesce(a.valid_to, cast('9999-12-31 00:00:00' as timestamp))
