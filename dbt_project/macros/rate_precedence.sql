{#- settlement-rules §2 rate precedence, written once (rate_in_force) and used by the
    settlement (int_settlement__new_line_terms), the product list (sku_ranking) and the
    §2–§3 estimate of what an order line earns (estimated_line_earnings, below) for the
    estimated-earnings mart (promoter_earnings_daily) and its monthly reconciliation
    (rpt_promoter_earnings_reconciliation). -#}

{#- The rate in force at `at_column` for every row of `items` (§2): the rule with
    valid_from <= t < valid_to, by precedence sku rule > merchant rule for the SKU's
    merchant > category rule for the SKU's category, self-operated SKUs only; no rule:
    rate 0 (a rule of rate 0 is a rule). `items` needs sku_id, merchant_id, category,
    is_self_operated and `at_column`; returns one row per row of `items`: its `columns`
    (its key, and any others a caller carries on rather than join back), rate, rule_id
    and rule_scope (both null when no rule applies). just_before=true: the rule in force
    in the instant before `at_column` (valid_from < t <= valid_to): at the end of a day
    when t is the next midnight.
    One left equi-join per scope, the validity range a residual condition, and a
    coalesce in precedence order: no window over the items (an OR of the three keys
    would be a nested-loop join). Measured on 2.2M lines (the demo warehouse's attributed
    lines x 20, DuckDB, 1 thread, best of 6, same rows): this form 1.14 s, with valid_to
    coalesced to 9999-12-31 first 1.69 s, a union of the scopes ranked by row_number()
    6.98 s. Overlapping rules of one scope and key would repeat an
    item's row; they fail the build first (tests/assert_commission_rules_do_not_overlap.sql,
    on stg_exports__commission_rules, before any model reads the rules). -#}
{% macro rate_in_force(items, columns, at_column, rules=none, just_before=false) -%}
    {%- set rules = rules if rules is not none else ref('stg_exports__commission_rules') -%}
    {%- set after, before = ('<', '<=') if just_before else ('<=', '<') -%}
    {%- set scopes = [
        ('sku', 'rule_sku.sku_id = i.sku_id'),
        ('merchant', 'rule_merchant.merchant_id = i.merchant_id'),
        ('category', 'rule_category.category = i.category and i.is_self_operated'),
    ] -%}
    select
        {%- for c in columns %}
        i.{{ c }},
        {%- endfor %}
        cast(coalesce(rule_sku.rate, rule_merchant.rate, rule_category.rate, 0) as {{ rate_type() }}) as rate,
        coalesce(rule_sku.rule_id, rule_merchant.rule_id, rule_category.rule_id) as rule_id,
        case
            {%- for scope, match in scopes %}
            when rule_{{ scope }}.rule_id is not null then '{{ scope }}'
            {%- endfor %}
        end as rule_scope
    from {{ items }} as i
    {%- for scope, match in scopes %}
    left join {{ rules }} as rule_{{ scope }}
        on rule_{{ scope }}.scope = '{{ scope }}' and {{ match }}
        and rule_{{ scope }}.valid_from {{ after }} i.{{ at_column }}
        and (rule_{{ scope }}.valid_to is null or i.{{ at_column }} {{ before }} rule_{{ scope }}.valid_to)
    {%- endfor %}
{%- endmacro %}

{#- What every line of `lines` (order_id, line_no, ordered_at: the LINE's own time, sku_id,
    paid_amount, promoter_id) would earn at today's state (§2, §3), for the
    estimated-earnings mart:
      state     : the line's events from the daily summary (int_daily__line_events, every
                  staged event) or, with `line_events` given, from that relation in the
                  shape of int_settlement__line_events_at_cutoff (completed_at, has_cancel,
                  has_full_refund, refunded_amount: the close's events before its cutoff):
                  completed, cancelled, refunds; base = paid - refunds so far, never below
                  0; 0 once cancelled or refunded in full (the settlement's line state);
      rate      : in force at the line's ordered_at (rate_in_force), as the close takes it
                  (int_settlement__new_line_terms): a line ordered after a rule change
                  earns the new rate even when its order's head line is older;
      split     : the promoter's platform and inviter in their latest version
                  (`promoters`: promoter_id, platform, inviter_id; one row per promoter);
                  level 2 only when the platform has a level-2 share, the inviter is known
                  and the promoter is not in an inviter loop (`loops`: promoter_id);
      amounts   : C = round(base x rate), F = round(C x fee), P = C - F, each level
                  round(P x share), at the paid amount and at today's base (round_money,
                  the settlement's chain, int_settlement__line_entitlements).
    One row per line: the line's key, promoter_id, level2_beneficiary_id, is_completed,
    is_cancelled, paid_amount, base_amount, rate, level{1,2}_at_paid, level{1,2}_at_base. -#}
{% macro estimated_line_earnings(lines, promoters, loops, line_events=none) -%}
    with est_lines as (
        select l.order_id, l.line_no, l.ordered_at, l.sku_id, l.paid_amount, l.promoter_id,
               s.merchant_id, s.category, coalesce(s.is_self_operated, false) as is_self_operated
        from {{ lines }} as l
        left join {{ ref('stg_exports__skus') }} as s
            on s.sku_id = l.sku_id
    ),

    est_events as (
        {%- if line_events is none %}
        -- today's state: every staged event of the line, summarised every day
        select
            order_id,
            line_no,
            completed_at,
            case when cancelled_at is not null then 1 else 0 end as has_cancel,
            case when fully_refunded_at is not null then 1 else 0 end as has_full_refund,
            refunded_amount
        from {{ ref('int_daily__line_events') }}
        {%- else %}
        select order_id, line_no, completed_at, has_cancel, has_full_refund, refunded_amount
        from {{ line_events }}
        {%- endif %}
    ),

    -- the line's columns are carried through (no join back on the line key: at target
    -- size each such join held a hash table of every line, and the model ran out of memory)
    est_rates as (
        {{ rate_in_force('est_lines', ['order_id', 'line_no', 'paid_amount', 'promoter_id'], 'ordered_at') }}
    ),

    est_shares as (
        {{ split_shares_relation() }}
    ),

    est_terms as (
        select
            l.order_id,
            l.line_no,
            l.promoter_id,
            l.paid_amount,
            e.completed_at is not null as is_completed,
            coalesce(e.has_cancel, 0) = 1 as is_cancelled,
            coalesce(e.has_full_refund, 0) = 1 as is_refunded_in_full,
            cast(case
                when coalesce(e.has_cancel, 0) = 1 or coalesce(e.has_full_refund, 0) = 1 then 0
                when l.paid_amount - coalesce(e.refunded_amount, 0) < 0 then 0
                else l.paid_amount - coalesce(e.refunded_amount, 0)
            end as {{ money_type() }}) as base_amount,
            l.rate,
            {{ dec(cfg('platform_fee_rate'), 9, 6) }} as platform_fee_rate,
            coalesce(sh.level1_share, 0) as level1_share,
            case
                when sh.level2_share > 0 and inv.promoter_id is not null and lp.promoter_id is null
                    then sh.level2_share
                else 0
            end as level2_share,
            case
                when sh.level2_share > 0 and inv.promoter_id is not null and lp.promoter_id is null
                    then p.inviter_id
            end as level2_beneficiary_id
        from est_rates as l
        left join est_events as e
            on e.order_id = l.order_id and e.line_no = l.line_no
        left join {{ promoters }} as p
            on p.promoter_id = l.promoter_id
        left join est_shares as sh
            on sh.platform = p.platform
        left join {{ promoters }} as inv
            on inv.promoter_id = p.inviter_id
        left join {{ loops }} as lp
            on lp.promoter_id = l.promoter_id
    ),

    -- the settlement's rounding chain, one projection after another (no join on the key)
    est_commission as (
        select
            t.*,
            {%- for at in ['paid', 'base'] %}
            {{ round_money('t.' ~ at ~ '_amount * t.rate') }} as commission_at_{{ at }}{{ "," if not loop.last }}
            {%- endfor %}
        from est_terms as t
    ),

    est_pool as (
        select
            c.*,
            {%- for at in ['paid', 'base'] %}
            cast(c.commission_at_{{ at }} - {{ round_money('c.commission_at_' ~ at ~ ' * c.platform_fee_rate') }} as {{ money_type() }}) as pool_at_{{ at }}{{ "," if not loop.last }}
            {%- endfor %}
        from est_commission as c
    ),

    est_amounts as (
        select
            {%- for c in ['order_id', 'line_no', 'promoter_id', 'paid_amount', 'is_completed',
                          'is_cancelled', 'is_refunded_in_full', 'base_amount', 'rate',
                          'platform_fee_rate', 'level1_share', 'level2_share',
                          'level2_beneficiary_id'] %}
            pp.{{ c }},
            {%- endfor %}
            {%- for at in ['paid', 'base'] %}
            {{ round_money('pp.pool_at_' ~ at ~ ' * pp.level1_share') }} as level1_at_{{ at }},
            case
                when pp.level2_beneficiary_id is not null
                    then {{ round_money('pp.pool_at_' ~ at ~ ' * pp.level2_share') }}
                else cast(0 as {{ money_type() }})
            end as level2_at_{{ at }}{{ "," if not loop.last }}
            {%- endfor %}
        from est_pool as pp
    )

    select * from est_amounts
{%- endmacro %}

{#- Promoters whose inviter chain (in `promoters`: promoter_id, inviter_id) leads back to
    themselves (§3: no level 2), as int_settlement__inviter_loops computes it for the
    promoters as of the cutoff. -#}
{% macro inviter_loop_promoters(promoters) -%}
    with recursive chain as (
        select promoter_id as start_id, inviter_id as ancestor_id, 1 as depth
        from {{ promoters }}
        where inviter_id is not null
        union all
        select chain.start_id, p.inviter_id as ancestor_id, chain.depth + 1 as depth
        from chain
        inner join {{ promoters }} as p
            on p.promoter_id = chain.ancestor_id
        where p.inviter_id is not null
            and chain.ancestor_id <> chain.start_id
            and chain.depth < {{ cfg('inviter_chain_max_depth') }}
    )
    select distinct start_id as promoter_id
    from chain
    where ancestor_id = start_id
{%- endmacro %}
