{#- Runs at the start of every dbt invocation (on-run-start). Every rule of the settlement
    configuration is checked; the first problem stops the run with a readable error. -#}
{% macro _cfg_decimal(name, value, lo=none, hi=none) -%}
    {%- if value is none or not modules.re.match('^[0-9]+(\\.[0-9]+)?$', value | string) -%}
        {{ exceptions.raise_compiler_error("settlement config: " ~ name ~ " must be a non-negative decimal string, got '" ~ value ~ "'") }}
    {%- endif -%}
    {%- set f = value | float -%}
    {%- if (lo is not none and f < lo) or (hi is not none and f > hi) -%}
        {{ exceptions.raise_compiler_error("settlement config: " ~ name ~ " = " ~ value ~ " is outside " ~ lo ~ ".." ~ hi) }}
    {%- endif -%}
    {{ return(f) }}
{%- endmacro %}

{% macro validate_settlement_config() -%}
    {%- set c = var('supernova') -%}
    {%- set required = ['attribution_window_days', 'platform_fee_rate', 'max_levels', 'split_shares',
                        'max_commission_rate', 'cutoff_day', 'tiers', 'payout_threshold', 'tax',
                        'suspense_limit_ratio', 'inviter_chain_max_depth', 'first_month'] -%}
    {%- for k in required -%}
        {%- if k not in c -%}{{ exceptions.raise_compiler_error("settlement config: missing '" ~ k ~ "'") }}{%- endif -%}
    {%- endfor -%}
    {%- if (c.attribution_window_days | int) < 1 or (c.attribution_window_days | string) != ((c.attribution_window_days | int) | string) -%}
        {{ exceptions.raise_compiler_error("settlement config: attribution_window_days must be a whole number >= 1") }}
    {%- endif -%}
    {%- if (c.cutoff_day | int) < 1 or (c.cutoff_day | int) > 28 -%}
        {{ exceptions.raise_compiler_error("settlement config: cutoff_day must be 1..28") }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])$', c.first_month | string) -%}
        {{ exceptions.raise_compiler_error("settlement config: first_month (the programme's first month) must be a calendar month written YYYY-MM in quotes, e.g. \"2026-09\", got '" ~ c.first_month ~ "'") }}
    {%- endif -%}
    {%- if (c.max_levels | int) < 1 or (c.max_levels | int) > 2 -%}
        {{ exceptions.raise_compiler_error("settlement config: max_levels = " ~ c.max_levels ~ ": never more than 2 levels may be paid (3 or more levels of distribution is a pyramid scheme under Chinese law)") }}
    {%- endif -%}
    {%- do _cfg_decimal('platform_fee_rate', c.platform_fee_rate, 0, 1) -%}
    {%- do _cfg_decimal('max_commission_rate', c.max_commission_rate, 0, 0.9) -%}
    {%- do _cfg_decimal('payout_threshold', c.payout_threshold, 0, none) -%}
    {%- do _cfg_decimal('suspense_limit_ratio', c.suspense_limit_ratio, 0, 1) -%}
    {#- settlement_checks compares suspense to the limit as DECIMAL(18,8): more places would round it -#}
    {%- if ((c.suspense_limit_ratio | string).split('.') + [''])[1] | length > 8 -%}
        {{ exceptions.raise_compiler_error("settlement config: suspense_limit_ratio = " ~ c.suspense_limit_ratio ~ " has more than 8 decimal places (it is compared exactly as DECIMAL(18,8))") }}
    {%- endif -%}
    {%- set platforms = ['fenxiang', 'jingxiaoge', 'jingxiaofu', 'yundian'] -%}
    {%- for p in platforms -%}
        {%- if p not in c.split_shares -%}{{ exceptions.raise_compiler_error("settlement config: split_shares has no entry for platform '" ~ p ~ "'") }}{%- endif -%}
    {%- endfor -%}
    {%- for p, shares in c.split_shares.items() -%}
        {%- if p not in platforms -%}{{ exceptions.raise_compiler_error("settlement config: split_shares names unknown platform '" ~ p ~ "'") }}{%- endif -%}
        {%- for level in shares -%}
            {%- if level not in ['level1', 'level2'] -%}
                {{ exceptions.raise_compiler_error("settlement config: split_shares." ~ p ~ "." ~ level ~ ": only level1 and level2 exist; never more than 2 levels are paid") }}
            {%- endif -%}
        {%- endfor -%}
        {%- set l1 = _cfg_decimal('split_shares.' ~ p ~ '.level1', shares.get('level1'), 0, 1) -%}
        {%- set l2 = _cfg_decimal('split_shares.' ~ p ~ '.level2', shares.get('level2', '0'), 0, 1) -%}
        {%- if (c.max_levels | int) < 2 and l2 > 0 -%}
            {{ exceptions.raise_compiler_error("settlement config: split_shares." ~ p ~ ".level2 > 0 but max_levels = " ~ c.max_levels) }}
        {%- endif -%}
        {%- if l1 + l2 > 1.0000001 -%}
            {{ exceptions.raise_compiler_error("settlement config: split_shares." ~ p ~ " pays " ~ shares.level1 ~ " + " ~ shares.get('level2', '0') ~ " > 100 % of the pool") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set ns = namespace(prev=-1) -%}
    {%- for t in c.tiers -%}
        {%- set lo = _cfg_decimal('tiers.' ~ t.tier ~ '.min_base', t.min_base, 0, none) -%}
        {%- do _cfg_decimal('tiers.' ~ t.tier ~ '.bonus_rate', t.bonus_rate, 0, 1) -%}
        {%- if loop.first and lo != 0 -%}{{ exceptions.raise_compiler_error("settlement config: the first tier must start at 0") }}{%- endif -%}
        {%- if lo <= ns.prev -%}{{ exceptions.raise_compiler_error("settlement config: tiers must be in ascending min_base order") }}{%- endif -%}
        {%- set ns.prev = lo -%}
    {%- endfor -%}
    {%- do _cfg_decimal('tax.flat_deduction', c.tax.flat_deduction, 0, none) -%}
    {%- do _cfg_decimal('tax.flat_deduction_upto', c.tax.flat_deduction_upto, 0, none) -%}
    {%- do _cfg_decimal('tax.percent_deduction', c.tax.percent_deduction, 0, 1) -%}
    {%- set ns2 = namespace(prev=-1) -%}
    {%- for b in c.tax.brackets -%}
        {%- do _cfg_decimal('tax.brackets.rate', b.rate, 0, 1) -%}
        {%- do _cfg_decimal('tax.brackets.quick_deduction', b.quick_deduction, 0, none) -%}
        {%- if b.upto is none and not loop.last -%}{{ exceptions.raise_compiler_error("settlement config: only the last tax bracket may be open-ended") }}{%- endif -%}
        {%- if loop.last and b.upto is not none -%}{{ exceptions.raise_compiler_error("settlement config: the last tax bracket must be open-ended (upto: null)") }}{%- endif -%}
        {%- if b.upto is not none -%}
            {%- set up = _cfg_decimal('tax.brackets.upto', b.upto, 0, none) -%}
            {%- if up <= ns2.prev -%}{{ exceptions.raise_compiler_error("settlement config: tax brackets must be ascending") }}{%- endif -%}
            {%- set ns2.prev = up -%}
        {%- endif -%}
    {%- endfor -%}
    {#- Spark only: register the raw Parquet as views raw.<export> (macros/spark_raw.sql;
        a no-op on DuckDB, where ingestion maintains them). It rides on this hook because
        it is the project's one on-run-start hook. -#}
    {%- do register_raw_sources() -%}
    select 1
{%- endmacro %}
