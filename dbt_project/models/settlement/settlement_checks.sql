{{ config(materialized='view') }}
-- A view, not a table: the gate evaluates the invariants against the candidate tables as
-- they are when it runs, right before publishing, not as they were when dbt built them.
-- Every invariant of settlement-rules §8, proven in exact DECIMAL SQL before anything is
-- published. One row per check: violations (0 = holds) and example keys. The quality
-- gate (supernova/gate.py, expectations/settlement_checks.json) fails the run unless
-- every row has 0 violations.
with entitled as (
    select * from {{ ref('int_settlement__line_entitlements') }}
),

ledger as (
    select * from {{ ref('payout_lines') }}
),

payouts as (
    select * from {{ ref('payouts') }}
),

published_lines as (
    select order_id, line_no, beneficiary_id, level, base_amount, line_commission, amount
    from {{ ref('int_settlement__posted_before') }}
),

previous_payouts as (
    select promoter_id, carried_in as carried_out from {{ ref('int_settlement__carried_in') }}
),

-- per line: F + L1 + L2 + R = C; 0 <= rate <= max; 0 <= base <= paid_amount
v_line_split as (
    select * from entitled
    where platform_fee + level1_amount + level2_amount + operator_retained <> line_commission
),
v_line_rate as (
    select * from entitled
    where rate < 0 or rate > {{ dec(cfg('max_commission_rate'), 9, 6) }}
),
v_line_base as (
    select * from entitled
    -- paid_amount is empty for a settled line whose order row is gone: its base must be 0
    where base_amount < 0 or base_amount > coalesce(paid_amount, 0)
),

-- the ledger reconciles to the entitlement of every settled line and beneficiary
entitled_by_beneficiary as (
    select order_id, line_no, promoter_id as beneficiary_id, 1 as level,
           base_amount, line_commission, level1_amount as amount
    from entitled
    union all
    select order_id, line_no, level2_beneficiary_id, 2, base_amount, line_commission, level2_amount
    from entitled
    where level2_beneficiary_id is not null
),
posted_to_date as (
    select order_id, line_no, beneficiary_id, level,
           sum(base_amount) as base_amount, sum(line_commission) as line_commission, sum(amount) as amount
    from (
        select order_id, line_no, beneficiary_id, level, base_amount, line_commission, amount
        from published_lines
        union all
        select order_id, line_no, beneficiary_id, level, base_amount, line_commission, amount
        from ledger where kind <> 'tier_bonus'
    ) as all_postings
    group by order_id, line_no, beneficiary_id, level
),
v_ledger_entitlement as (
    select
        coalesce(e.order_id, p.order_id) as order_id,
        coalesce(e.line_no, p.line_no) as line_no
    from entitled_by_beneficiary as e
    full outer join posted_to_date as p
        on p.order_id = e.order_id and p.line_no = e.line_no
        and p.beneficiary_id = e.beneficiary_id and p.level = e.level
    where e.order_id is null
        or p.order_id is null
        or e.amount <> p.amount
    -- amounts only: a posting is made when a beneficiary's amount changes (§4), so a base
    -- change that leaves the amount unchanged (e.g. a refund on a zero-rate line) posts
    -- nothing and the posted base deltas need not add up to today's base.
),

-- every accrual / clawback / adjustment references a settled order line
v_ledger_reference as (
    select l.*
    from ledger as l
    left join entitled as e
        on e.order_id = l.order_id and e.line_no = l.line_no
    where l.kind <> 'tier_bonus' and e.order_id is null
),

-- never more than 2 levels; bonus rows carry no level, line rows level 1 or 2
v_ledger_levels as (
    select * from ledger
    where (kind <> 'tier_bonus' and (level is null or level not in (1, 2)))
        or (kind = 'tier_bonus' and level is not null)
),

-- kinds and their signs
v_ledger_kinds as (
    select * from ledger
    where kind not in ('accrual', 'clawback', 'adjustment', 'tier_bonus')
        or (kind = 'accrual' and amount < 0)
        or (kind = 'clawback' and amount >= 0)
        or (kind = 'adjustment' and amount <= 0)
        or (kind = 'tier_bonus' and amount <= 0)
),

-- ledger key (month, order, line, beneficiary, level, kind) unique
v_ledger_key as (
    select settlement_month, order_id, line_no, beneficiary_id, level, kind
    from ledger
    group by settlement_month, order_id, line_no, beneficiary_id, level, kind
    having count(*) > 1
),

-- every tier bonus (and tier) equals its rule applied to the promoter's accruals
tiers as (
    {{ tiers_relation() }}
),
accrual_base as (
    select beneficiary_id as promoter_id, sum(base_amount) as tier_base, sum(amount) as accrual_amount
    from ledger
    where level = 1 and kind = 'accrual'
    group by beneficiary_id
),
expected_bonus as (
    select a.promoter_id, t.tier, {{ round_money('a.accrual_amount * t.bonus_rate') }} as bonus
    from accrual_base as a
    inner join tiers as t
        on a.tier_base >= t.min_base and (t.max_base is null or a.tier_base < t.max_base)
),
posted_bonus as (
    select beneficiary_id as promoter_id, sum(amount) as bonus, count(*) as n
    from ledger where kind = 'tier_bonus'
    group by beneficiary_id
),
v_tier_bonus as (
    select coalesce(e.promoter_id, b.promoter_id) as promoter_id
    from expected_bonus as e
    full outer join posted_bonus as b on b.promoter_id = e.promoter_id
    where coalesce(e.bonus, 0) <> coalesce(b.bonus, 0) or coalesce(b.n, 1) <> 1
    union all
    select p.promoter_id
    from payouts as p
    left join expected_bonus as e on e.promoter_id = p.promoter_id
    where p.tier <> coalesce(e.tier, 'T1')
),

-- §6 identity on every payout row, and gross due = carried in + postings
v_payout_identity as (
    select * from payouts
    where carried_in + level1_amount + level2_amount + tier_bonus + clawback_amount + adjustment_amount
            <> net_paid + tax_withheld + carried_out + forfeited_amount
        or gross_due <> carried_in + level1_amount + level2_amount + tier_bonus + clawback_amount + adjustment_amount
),

-- payouts carry exactly the ledger's postings per promoter
ledger_by_promoter as (
    select
        beneficiary_id as promoter_id,
        sum(case when kind = 'accrual' and level = 1 then amount else 0 end) as level1_amount,
        sum(case when kind = 'accrual' and level = 2 then amount else 0 end) as level2_amount,
        sum(case when kind = 'tier_bonus' then amount else 0 end) as tier_bonus,
        sum(case when kind = 'clawback' then amount else 0 end) as clawback_amount,
        sum(case when kind = 'adjustment' then amount else 0 end) as adjustment_amount
    from ledger
    group by beneficiary_id
),
v_payout_ledger as (
    select coalesce(p.promoter_id, l.promoter_id) as promoter_id
    from payouts as p
    full outer join ledger_by_promoter as l on l.promoter_id = p.promoter_id
    where l.promoter_id is null and (p.level1_amount <> 0 or p.level2_amount <> 0 or p.tier_bonus <> 0
                                      or p.clawback_amount <> 0 or p.adjustment_amount <> 0)
        or p.promoter_id is null
        or p.level1_amount <> l.level1_amount
        or p.level2_amount <> l.level2_amount
        or p.tier_bonus <> l.tier_bonus
        or p.clawback_amount <> l.clawback_amount
        or p.adjustment_amount <> l.adjustment_amount
),

-- each payout's carried in equals the previous month's carried out
v_carried_chain as (
    select coalesce(p.promoter_id, prev.promoter_id) as promoter_id
    from payouts as p
    full outer join previous_payouts as prev
        on prev.promoter_id = p.promoter_id
    where p.promoter_id is null
        or p.carried_in <> coalesce(prev.carried_out, 0)
),

-- net paid >= 0, tax >= 0, net paid = 0 unless paid, status rules and the tax formula
v_payout_rules as (
    select * from payouts
    where net_paid < 0
        or tax_withheld < 0
        or (status <> 'paid' and (net_paid <> 0 or tax_withheld <> 0))
        or status not in ('paid', 'below_threshold', 'held', 'debt', 'forfeited')
        or (status = 'paid' and (gross_due < {{ dec(cfg('payout_threshold'), 18, 2) }}
                                 or tax_withheld <> {{ withholding_tax('gross_due') }}
                                 or net_paid <> gross_due - tax_withheld
                                 or carried_out <> 0 or forfeited_amount <> 0))
        or (status = 'forfeited' and (forfeited_amount <> gross_due or carried_out <> 0))
        or (status in ('held', 'debt', 'below_threshold') and (carried_out <> gross_due or forfeited_amount <> 0))
        or (status = 'debt' and gross_due >= 0)
        or clawback_amount > 0
),

-- one payout row per promoter and month
v_payout_unique as (
    select promoter_id from payouts group by promoter_id having count(*) > 1
),

-- every beneficiary is a promoter known as of the cutoff
v_beneficiary_known as (
    select l.*
    from ledger as l
    left join {{ ref('int_settlement__promoters_as_of_cutoff') }} as p
        on p.promoter_id = l.beneficiary_id
    where p.promoter_id is null
),

-- rows read from landing = rows loaded + rows quarantined, for every file
v_manifest_balance as (
    select * from {{ ref('stg_exports__manifest') }}
    where rows_read <> rows_loaded + rows_quarantined
),

-- §7 suspense under its limit unless finance accepted it for this run, decided in exact
-- DECIMAL without division: suspense base <= limit x (first-settled base + suspense base).
-- (A ratio divides DECIMALs in DOUBLE on DuckDB: 0.005000004 cast to 8 places passed.)
v_suspense_limit as (
    select * from {{ ref('settlement_run_totals') }}
    where suspense_base > {{ dec(cfg('suspense_limit_ratio'), 18, 8) }} * (base_amount + suspense_base)
        and not suspense_accepted
),

-- the month's totals: ledger = payouts = change in entitlement
month_totals as (
    select
        (select coalesce(sum(amount), 0) from ledger) as ledger_total,
        (select coalesce(sum(level1_amount + level2_amount + tier_bonus + clawback_amount + adjustment_amount), 0)
            from payouts) as payouts_total,
        (select coalesce(sum(amount), 0) from entitled_by_beneficiary)
            - (select coalesce(sum(amount), 0) from published_lines)
            + (select coalesce(sum(amount), 0) from ledger where kind = 'tier_bonus') as entitlement_change
),
v_month_totals as (
    select * from month_totals
    where ledger_total <> payouts_total or ledger_total <> entitlement_change
)

{{ invariant_check('line_split_sums_to_commission', 'per line: platform fee + level 1 + level 2 + operator retained = line commission', 'v_line_split', line_key()) }}
union all
{{ invariant_check('line_rate_in_range', 'per line: 0 <= rate <= max_commission_rate', 'v_line_rate', line_key()) }}
union all
{{ invariant_check('line_base_in_range', 'per line: 0 <= base <= paid_amount', 'v_line_base', line_key()) }}
union all
{{ invariant_check('ledger_reconciles_to_entitlement', 'per line and beneficiary: everything posted to date = entitlement as of the cutoff', 'v_ledger_entitlement', line_key()) }}
union all
{{ invariant_check('ledger_references_settled_line', 'every accrual, clawback and adjustment references a settled order line', 'v_ledger_reference', "coalesce(order_id, '?') || '#' || coalesce(cast(line_no as " ~ dbt.type_string() ~ "), '?')") }}
union all
{{ invariant_check('ledger_levels_at_most_2', 'no level beyond 2; bonus rows have no level', 'v_ledger_levels', "beneficiary_id || ':' || kind") }}
union all
{{ invariant_check('ledger_kind_signs', 'kinds are accrual/clawback/adjustment/tier_bonus with the right sign', 'v_ledger_kinds', "beneficiary_id || ':' || kind") }}
union all
{{ invariant_check('ledger_key_unique', 'ledger key (month, order, line, beneficiary, level, kind) unique', 'v_ledger_key', "beneficiary_id || ':' || kind") }}
union all
{{ invariant_check('tier_bonus_matches_rule', 'every tier and tier bonus equals its rule applied to the promoter''s level-1 accruals', 'v_tier_bonus', 'promoter_id') }}
union all
{{ invariant_check('payout_identity', 'carried in + postings = net paid + tax + carried out + forfeited; gross due = carried in + postings', 'v_payout_identity', 'promoter_id') }}
union all
{{ invariant_check('payout_matches_ledger', 'each payout carries exactly its promoter''s postings in the ledger', 'v_payout_ledger', 'promoter_id') }}
union all
{{ invariant_check('carried_in_chain', 'each payout''s carried in = the previous month''s carried out', 'v_carried_chain', 'promoter_id') }}
union all
{{ invariant_check('payout_amount_rules', 'net paid >= 0, tax >= 0, net paid = 0 unless paid, status and tax rules', 'v_payout_rules', "promoter_id || ':' || status") }}
union all
{{ invariant_check('payout_one_row_per_promoter', 'one payout row per promoter and month', 'v_payout_unique', 'promoter_id') }}
union all
{{ invariant_check('beneficiary_known', 'every beneficiary is a promoter known as of the cutoff', 'v_beneficiary_known', 'beneficiary_id') }}
union all
{{ invariant_check('manifest_rows_balance', 'rows read = rows loaded + rows quarantined, for every landing file', 'v_manifest_balance', 'file_path') }}
union all
{{ invariant_check('suspense_within_limit', 'suspense base <= limit x (first-settled base + suspense base), unless accepted', 'v_suspense_limit', "'suspense base ' || cast(suspense_base as " ~ dbt.type_string() ~ ") || ' of ' || cast(base_amount + suspense_base as " ~ dbt.type_string() ~ ") || ' (limit " ~ cfg('suspense_limit_ratio') ~ ")'") }}
union all
{{ invariant_check('month_totals_reconcile', 'month: sum of postings = sum of payouts postings = change in line entitlements', 'v_month_totals', "cast(ledger_total as " ~ dbt.type_string() ~ ")") }}
