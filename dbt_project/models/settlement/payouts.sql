-- One row per promoter with a posting in M or a balance carried into M (§6):
-- gross due = carried in + postings; status (as of the cutoff, in this order):
-- forfeited (terminated), held (suspended), debt (< 0), below_threshold (< 10.00), paid;
-- 劳务报酬 tax on paid amounts; carried in + postings = net paid + tax + carried out + forfeited.
with postings as (
    select
        beneficiary_id as promoter_id,
        sum(case when kind = 'accrual' and level = 1 then amount else 0 end) as level1_amount,
        sum(case when kind = 'accrual' and level = 2 then amount else 0 end) as level2_amount,
        sum(case when kind = 'tier_bonus' then amount else 0 end) as tier_bonus,
        sum(case when kind = 'clawback' then amount else 0 end) as clawback_amount,
        sum(case when kind = 'adjustment' then amount else 0 end) as adjustment_amount,
        sum(amount) as postings_amount
    from {{ ref('payout_lines') }}
    group by beneficiary_id
),

carried as (
    select promoter_id, carried_in from {{ ref('int_settlement__carried_in') }}
),

people as (
    select promoter_id from postings
    union
    select promoter_id from carried
),

gross as (
    select
        people.promoter_id,
        pr.platform,
        pr.status as promoter_status,
        coalesce(t.tier, 'T1') as tier,
        cast(coalesce(po.level1_amount, 0) as {{ money_type() }}) as level1_amount,
        cast(coalesce(po.level2_amount, 0) as {{ money_type() }}) as level2_amount,
        cast(coalesce(po.tier_bonus, 0) as {{ money_type() }}) as tier_bonus,
        cast(coalesce(po.clawback_amount, 0) as {{ money_type() }}) as clawback_amount,
        cast(coalesce(po.adjustment_amount, 0) as {{ money_type() }}) as adjustment_amount,
        cast(coalesce(c.carried_in, 0) as {{ money_type() }}) as carried_in,
        cast(coalesce(c.carried_in, 0) + coalesce(po.postings_amount, 0) as {{ money_type() }}) as gross_due
    from people
    left join postings as po on po.promoter_id = people.promoter_id
    left join carried as c on c.promoter_id = people.promoter_id
    left join {{ ref('int_settlement__promoter_tiers') }} as t on t.promoter_id = people.promoter_id
    left join {{ ref('int_settlement__promoters_as_of_cutoff') }} as pr on pr.promoter_id = people.promoter_id
),

with_status as (
    select
        *,
        case
            when promoter_status = 'terminated' then 'forfeited'
            -- unknown as of the cutoff cannot happen for a beneficiary (such lines go to
            -- suspense); if it ever did, nothing is paid and the balance is kept.
            when promoter_status = 'suspended' or promoter_status is null then 'held'
            when gross_due < 0 then 'debt'
            when gross_due < {{ dec(cfg('payout_threshold'), 18, 2) }} then 'below_threshold'
            else 'paid'
        end as status
    from gross
),

with_tax as (
    select
        *,
        case when status = 'paid' then {{ withholding_tax('gross_due') }}
             else cast(0 as {{ money_type() }}) end as tax_withheld
    from with_status
)

select
    '{{ settlement_month() }}' as settlement_month,
    promoter_id,
    platform,
    tier,
    level1_amount,
    level2_amount,
    tier_bonus,
    clawback_amount,
    adjustment_amount,
    carried_in,
    gross_due,
    cast(tax_withheld as {{ money_type() }}) as tax_withheld,
    cast(case when status = 'paid' then gross_due - tax_withheld else 0 end as {{ money_type() }}) as net_paid,
    cast(case when status in ('held', 'debt', 'below_threshold') then gross_due else 0 end as {{ money_type() }}) as carried_out,
    cast(case when status = 'forfeited' then gross_due else 0 end as {{ money_type() }}) as forfeited_amount,
    status,
    '{{ var("run_id") }}' as run_id
from with_tax
