-- Everything already posted per line, beneficiary and level by months before M (the
-- published, append-only ledger). Postings of M itself are excluded so that a reopened
-- month is recomputed from the same starting point.
select
    order_id,
    line_no,
    beneficiary_id,
    level,
    cast(sum(base_amount) as {{ money_type() }}) as base_amount,
    cast(sum(line_commission) as {{ money_type() }}) as line_commission,
    cast(sum(amount) as {{ money_type() }}) as amount
from {{ published_or_empty('payout_lines', "select
        cast(null as " ~ dbt.type_string() ~ ") as settlement_month,
        cast(null as " ~ dbt.type_string() ~ ") as order_id,
        cast(null as integer) as line_no,
        cast(null as " ~ dbt.type_string() ~ ") as beneficiary_id,
        cast(null as integer) as level,
        cast(null as " ~ dbt.type_string() ~ ") as kind,
        cast(null as " ~ money_type() ~ ") as base_amount,
        cast(null as " ~ money_type() ~ ") as line_commission,
        cast(null as " ~ money_type() ~ ") as amount") }} as pl
where settlement_month < '{{ settlement_month() }}'
    and kind in ('accrual', 'clawback', 'adjustment')
group by order_id, line_no, beneficiary_id, level
