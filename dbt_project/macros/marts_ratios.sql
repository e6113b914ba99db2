{#- Exact ratios for the marts (docs/marts.md "Ratios"). DuckDB divides DECIMALs in
    DOUBLE (2.01 / 2 gives 1.005 as a float, which rounds to 1.00), so a ratio is computed
    on integers: both sides scaled to whole units of 10^-input_scale, then
    round-half-away-from-zero(num / den) to `scale` decimals by integer division, the
    result exact DECIMAL(38, scale). `den` = 0 (or empty) gives an empty ratio. Inputs
    must have at most `input_scale` decimals (money has 2, rates and shares 6). -#}
{% macro marts_ratio(num, den, scale, input_scale=6) -%}
    {{ return(adapter.dispatch('marts_ratio')(num, den, scale, input_scale)) }}
{%- endmacro %}

{% macro default__marts_ratio(num, den, scale, input_scale) -%}
    {%- set n = "cast((" ~ num ~ ") * " ~ (10 ** input_scale) ~ " as hugeint)" -%}
    {%- set d = "cast((" ~ den ~ ") * " ~ (10 ** input_scale) ~ " as hugeint)" -%}
    case when ({{ den }}) <> 0 then
        cast(
            sign({{ n }}) * sign({{ d }})
            * ((2 * abs({{ n }}) * {{ 10 ** scale }} + abs({{ d }})) // (2 * abs({{ d }})))
            as decimal(38,0)
        ) * cast('0.{{ '0' * (scale - 1) }}1' as decimal(38,{{ scale }}))
    end
{%- endmacro %}

{#- Spark divides DECIMALs exactly (to a scale of at least 6) and rounds them HALF_UP. -#}
{% macro spark__marts_ratio(num, den, scale, input_scale) -%}
    case when ({{ den }}) <> 0 then
        cast(round(cast({{ num }} as decimal(38,{{ input_scale }})) / ({{ den }}), {{ scale }}) as decimal(38,{{ scale }}))
    end
{%- endmacro %}

{#- Money per unit (aov = gmv / orders): half away from zero to 0.01 CNY, DECIMAL(18,2),
    as round_money does for products. -#}
{% macro marts_money_ratio(num, den) -%}
    cast({{ marts_ratio(num, den, 2) }} as {{ money_type() }})
{%- endmacro %}

{#- A share (0..1) or other non-money ratio: half away from zero to 6 decimals,
    DECIMAL(9,6) (shares) unless `type` says otherwise. -#}
{% macro marts_share(num, den, type='decimal(9,6)') -%}
    cast({{ marts_ratio(num, den, 6) }} as {{ type }})
{%- endmacro %}
