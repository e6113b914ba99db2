-- Balances carried into M: the previous month's published carried_out (§6).
select
    promoter_id,
    carried_out as carried_in
from {{ published_or_empty('payouts', "select
        cast(null as " ~ dbt.type_string() ~ ") as settlement_month,
        cast(null as " ~ dbt.type_string() ~ ") as promoter_id,
        cast(null as " ~ money_type() ~ ") as carried_out") }} as prev
where settlement_month = '{{ previous_settlement_month() }}'
    and carried_out <> 0
