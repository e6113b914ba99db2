{#- Accessors for the settlement configuration (vars.supernova in dbt_project.yml) and
    the month being settled. Decimal settings are emitted as exact DECIMAL literals. -#}

{% macro cfg(key) -%}
    {{ return(var('supernova')[key]) }}
{%- endmacro %}

{% macro dec(value, precision=18, scale=6) -%}
    cast('{{ value }}' as decimal({{ precision }},{{ scale }}))
{%- endmacro %}

{% macro money_type() -%}decimal(18,2){%- endmacro %}
{% macro rate_type() -%}decimal(9,6){%- endmacro %}

{#- Round half away from zero to 0.01 CNY (ROUND_HALF_UP on decimals). Both DuckDB's and
    Spark's round() on DECIMAL do exactly this; the cast fixes the result type. -#}
{% macro round_money(expr) -%}
    cast(round({{ expr }}, 2) as decimal(18,2))
{%- endmacro %}

{% macro settlement_month() -%}
    {%- set m = var('settlement_month') -%}
    {%- if m is none -%}
        {%- if execute and flags.WHICH in ['build', 'run', 'test', 'compile'] -%}
            {{ exceptions.raise_compiler_error("settlement models need --vars '{settlement_month: YYYY-MM}' (use `supernova settle`)") }}
        {%- endif -%}
        {{ return('1900-01') }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])$', m | string) -%}
        {{ exceptions.raise_compiler_error("settlement_month must be YYYY-MM, got '" ~ m ~ "'") }}
    {%- endif -%}
    {{ return(m | string) }}
{%- endmacro %}

{% macro _month_date(month_str, add_months=0) -%}
    {%- set y = month_str[0:4] | int -%}
    {%- set mo = month_str[5:7] | int - 1 + add_months -%}
    {%- set y = y + (mo // 12) -%}
    {%- set mo = mo % 12 + 1 -%}
    {{ return(modules.datetime.date(y, mo, 1)) }}
{%- endmacro %}

{#- 'YYYY-MM' of the month before the settlement month. -#}
{% macro previous_settlement_month() -%}
    {{ return(_month_date(settlement_month(), -1).strftime('%Y-%m')) }}
{%- endmacro %}

{#- The first month settled in this warehouse (§4): passed by the run; defaults to M. -#}
{% macro first_settlement_month() -%}
    {%- set f = var('first_month', none) -%}
    {{ return(settlement_month() if f is none else f | string) }}
{%- endmacro %}

{% macro ts_literal(d, days=0) -%}
    cast('{{ (d + modules.datetime.timedelta(days=days)).strftime('%Y-%m-%d') }} 00:00:00' as timestamp)
{%- endmacro %}

{#- Timestamps are naive Asia/Shanghai business time (docs/architecture.md). -#}
{% macro month_start_ts() -%}{{ ts_literal(_month_date(settlement_month())) }}{%- endmacro %}
{% macro next_month_start_ts() -%}{{ ts_literal(_month_date(settlement_month(), 1)) }}{%- endmacro %}
{% macro first_month_start_ts() -%}{{ ts_literal(_month_date(first_settlement_month())) }}{%- endmacro %}

{#- §4: 00:00 on day `cutoff_day` of month M+1. -#}
{% macro cutoff_ts() -%}
    {{ ts_literal(_month_date(settlement_month(), 1), cfg('cutoff_day') | int - 1) }}
{%- endmacro %}

{#- §3 split shares as a relation: platform, level1_share, level2_share. -#}
{% macro split_shares_relation() -%}
    {%- set rows = [] -%}
    {%- for platform, shares in cfg('split_shares').items() | sort -%}
        {%- do rows.append("select '" ~ platform ~ "' as platform, " ~ dec(shares.get('level1', '0'), 9, 6) ~ " as level1_share, " ~ dec(shares.get('level2', '0'), 9, 6) ~ " as level2_share") -%}
    {%- endfor -%}
    {{ rows | join('\n    union all\n    ') }}
{%- endmacro %}

{#- §5 tiers as a relation: tier, min_base, max_base (exclusive, null = open), bonus_rate. -#}
{% macro tiers_relation() -%}
    {%- set tiers = cfg('tiers') -%}
    {%- set rows = [] -%}
    {%- for t in tiers -%}
        {%- set upper = tiers[loop.index0 + 1].min_base if not loop.last else none -%}
        {%- do rows.append("select '" ~ t.tier ~ "' as tier, " ~ dec(t.min_base, 18, 2) ~ " as min_base, "
            ~ (dec(upper, 18, 2) if upper is not none else "cast(null as decimal(18,2))") ~ " as max_base, "
            ~ dec(t.bonus_rate, 9, 6) ~ " as bonus_rate") -%}
    {%- endfor -%}
    {{ rows | join('\n    union all\n    ') }}
{%- endmacro %}

{#- §6 劳务报酬 withholding on a paid amount X (a column expression). -#}
{% macro taxable_amount(x) -%}
    {%- set t = cfg('tax') -%}
    case
        when {{ x }} <= {{ dec(t.flat_deduction, 18, 2) }} then cast(0 as decimal(18,2))
        when {{ x }} <= {{ dec(t.flat_deduction_upto, 18, 2) }} then {{ x }} - {{ dec(t.flat_deduction, 18, 2) }}
        else {{ x }} * (1 - {{ dec(t.percent_deduction, 9, 6) }})
    end
{%- endmacro %}

{% macro withholding_tax(x) -%}
    {%- set t = cfg('tax') -%}
    {%- set taxable = taxable_amount(x) -%}
    case
    {%- for b in t.brackets %}
        {% if b.upto is not none %}when ({{ taxable }}) <= {{ dec(b.upto, 18, 2) }} then{% else %}else{% endif %}
            {{ round_money('(' ~ taxable ~ ') * ' ~ dec(b.rate, 9, 6) ~ ' - ' ~ dec(b.quick_deduction, 18, 2)) }}
    {%- endfor %}
    end
{%- endmacro %}

{#- Delivery order, latest first: later delivery date, later file name, later row (§0). -#}
{% macro delivered_last() -%}
    _delivery_date desc, _file_name desc, _line_no desc
{%- endmacro %}
