{#- The key check of a versions view (stg_exports__<export>_versions: every delivered row
    of an export, models/staging/_exports__models.yml) at the cost of one delivery, not of
    the whole history.

    The key is unique over every delivered row iff no key of a file that is new since the
    last check occurs twice among all rows: a collision between two old rows was caught
    when the later of them was new. So the check takes the keys of the new files' rows and
    counts each of them over ALL rows, old ones included: a new file bringing a key an old
    file already has still fails (tests/test_staging_versions.py). Every row sharing a key
    shares its first column, so the all-rows side is narrowed to the first column's values
    among the new rows, as literals: for the versions views that is _file_name, constant
    per raw Parquet file, so the scan skips every other file by its statistics.

    "New" is what the export's staging model (stg_exports__<export>) has not recorded as
    staged (macros/staging.sql). That model runs after this check in a build (its SQL
    declares the versions view as a parent), so its record grows only once the check
    passed on the new files: a failed check leaves them new for the next build.

    Every row is checked when there is no such record yet (a first build, Spark) and on a
    full refresh (the staging code, this check included, changed). -#}
{% macro staging_versions_key_collisions(model, keys, export) -%}
    {%- set key_list = keys | join(', ') -%}
    {%- set new = _staging_unchecked_files(export) if execute else none -%}
    {%- if new is none %}
    -- every delivered row
    select {{ key_list }}, count(*) as n
    from {{ model }}
    group by {{ key_list }}
    having count(*) > 1
    {%- elif new | length == 0 %}
    -- no file is new since the last check: every key was checked against every row
    select {{ key_list }}, count(*) as n
    from {{ model }}
    where 1 = 0
    group by {{ key_list }}
    {%- else %}
    {%- set new_rows -%}
        _delivery_date >= cast('{{ new | map(attribute=1) | min }}' as date)
            and _file_sha256 in ({%- for r in new %}'{{ r[0] }}'{{ ", " if not loop.last }}{% endfor -%})
    {%- endset %}
    {%- set first = keys[0] -%}
    {%- set firsts = run_query("select distinct " ~ first ~ " from " ~ model ~ " where " ~ new_rows).columns[0].values() | list -%}
    -- the keys of the {{ new | length }} file(s) not staged yet, counted over every delivered row
    with new_keys as (
        select distinct {{ key_list }}
        from {{ model }}
        where {{ new_rows }}
    )

    select {% for k in keys %}delivered.{{ k }}, {% endfor %}count(*) as n
    from {{ model }} as delivered
    where ({{ _staging_in_literals('delivered.' ~ first, firsts) }})
        and exists (
            select 1 from new_keys
            where {% for k in keys %}{{ " and " if not loop.first }}new_keys.{{ k }} is not distinct from delivered.{{ k }}{% endfor %}
        )
    group by {% for k in keys %}delivered.{{ k }}{{ ", " if not loop.last }}{% endfor %}
    having count(*) > 1
    {%- endif %}
{%- endmacro %}

{#- The loaded files of `export` that stg_exports__<export> has not recorded as staged,
    as rows (sha256, delivery_date 'YYYY-MM-DD'); none when every row must be checked
    (no record of that model, a full refresh, an engine that keeps no record). -#}
{% macro _staging_unchecked_files(export) -%}
    {%- if target.type != 'duckdb' or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rel = staged_files_relation() -%}
    {%- set tracked = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {%- if tracked is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set staged_model = 'stg_exports__' ~ export -%}
    {%- set recorded = run_query("select count(*) from " ~ tracked ~ " where model = '" ~ staged_model ~ "'").rows[0][0] -%}
    {%- if recorded == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select m.sha256, cast(m.delivery_date as {{ dbt.type_string() }}) as delivery_date
        from {{ source('exports', 'manifest') }} as m
        where m.export = '{{ export }}'
            and m.status = 'loaded'
            and not exists (
                select 1 from {{ tracked }} as s
                where s.model = '{{ staged_model }}' and {{ staging_same_load('s', 'm') }}
            )
        order by 2, 1
    {%- endset -%}
    {{ return(run_query(sql).rows) }}
{%- endmacro %}

{#- `column` is one of `values` (strings quoted, NULL matched with IS NULL). -#}
{% macro _staging_in_literals(column, values) -%}
    {%- set present = values | reject('none') | list -%}
    {%- if present | length > 0 -%}
        {{ column }} in ({%- for v in present %}{% if v is string %}'{{ v | replace("'", "''") }}'{% else %}{{ v }}{% endif %}{{ ", " if not loop.last }}{% endfor -%})
    {%- else -%}
        1 = 0
    {%- endif -%}
    {%- if present | length < values | length %} or {{ column }} is null{% endif -%}
{%- endmacro %}
