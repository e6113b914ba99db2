{#- The raw layer on Spark (docs/spark.md). On DuckDB the ingestion step keeps views
    raw.<export> over the committed Parquet files; on Spark this on-run-start hook creates
    the same views, typed like the DuckDB ones, over the same files:

      raw.<export>   <- <raw dir>/<export>/delivery_date=*/*.parquet, only rows of files the
                        manifest lists as `loaded` (exactly the DuckDB views' file set)
      raw.manifest   <- the ingestion manifest exported as Parquet (supernova's DuckDB table
                        raw.manifest, e.g. `copy raw.manifest to '.../manifest.parquet'`)

    Where: env SUPERNOVA_RAW_DIR (default <SUPERNOVA_WAREHOUSE>/raw) and
    SUPERNOVA_MANIFEST_PARQUET (default <SUPERNOVA_WAREHOUSE>/spark/manifest.parquet).
    Paths may be any URI Spark reads (file:, hdfs:, s3a:, abfss:, dbfs:).
    The column lists mirror supernova/contract.py (tests/test_spark_parity.py checks that
    they agree). On every other adapter the hook does nothing. -#}

{% macro raw_export_columns() -%}
    {{ return({
        'promoters': ['promoter_id:string', 'platform:string', 'role:string', 'inviter_id:string', 'joined_at:timestamp', 'city:string', 'city_tier:int', 'gender:string', 'status:string', 'updated_at:timestamp'],
        'groups': ['group_id:string', 'owner_id:string', 'created_at:timestamp', 'member_count:int', 'dissolved_at:timestamp', 'snapshot_date:date'],
        'links': ['link_id:string', 'promoter_id:string', 'group_id:string', 'sku_id:string', 'created_at:timestamp'],
        'clicks': ['click_id:string', 'link_id:string', 'buyer_id:string', 'clicked_at:timestamp'],
        'orders': ['order_id:string', 'line_no:int', 'parent_order_id:string', 'buyer_id:string', 'sku_id:string', 'quantity:int', 'unit_price:decimal(18,2)', 'paid_amount:decimal(18,2)', 'coupon_amount:decimal(18,2)', 'shipping_amount:decimal(18,2)', 'ordered_at:timestamp'],
        'order_events': ['order_id:string', 'line_no:int', 'event:string', 'event_at:timestamp', 'amount:decimal(18,2)', 'event_id:string'],
        'skus': ['sku_id:string', 'merchant_id:string', 'category:string', 'is_self_operated:boolean', 'positive_review_rate:decimal(9,6)', 'title:string'],
        'commission_rules': ['rule_id:string', 'scope:string', 'sku_id:string', 'merchant_id:string', 'category:string', 'rate:decimal(9,6)', 'valid_from:timestamp', 'valid_to:timestamp'],
        'buyers': ['buyer_id:string', 'gender:string', 'birth_year:int', 'city:string', 'city_tier:int', 'registered_at:timestamp'],
    }) }}
{%- endmacro %}

{% macro raw_lineage_columns() -%}
    {{ return(['_delivery_date:date', '_file_name:string', '_file_sha256:string', '_line_no:bigint']) }}
{%- endmacro %}

{% macro raw_manifest_columns() -%}
    {{ return(['file_path:string', 'export:string', 'delivery_date:date', 'file_name:string', 'sha256:string',
               'size_bytes:bigint', 'encoding:string', 'rows_read:bigint', 'rows_loaded:bigint',
               'rows_quarantined:bigint', 'status:string', 'reason:string', 'extra_columns:array<string>',
               'ingest_run_id:string', 'loaded_at:timestamp']) }}
{%- endmacro %}

{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
    select 1
{%- endmacro %}

{% macro _typed_select(columns) -%}
    {%- set out = [] -%}
    {%- for c in columns -%}
        {%- set name, type = c.split(':', 1) -%}
        {%- do out.append('cast(' ~ name ~ ' as ' ~ type ~ ') as ' ~ name) -%}
    {%- endfor -%}
    {{ return(out | join(', ')) }}
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
    {%- set warehouse = env_var('SUPERNOVA_WAREHOUSE', '../var/warehouse') -%}
    {%- set raw_dir = env_var('SUPERNOVA_RAW_DIR', warehouse ~ '/raw') -%}
    {%- set manifest = env_var('SUPERNOVA_MANIFEST_PARQUET', warehouse ~ '/spark/manifest.parquet') -%}
    {%- if execute -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- do run_query('create or replace view raw.manifest as select '
                         ~ _typed_select(raw_manifest_columns()) ~ ' from parquet.`' ~ manifest ~ '`') -%}
        {%- set counts = run_query("select export, count(*) as n from raw.manifest where status = 'loaded' group by export") -%}
        {%- set loaded_files = {} -%}
        {%- for row in counts.rows -%}{%- do loaded_files.update({row[0]: row[1]}) -%}{%- endfor -%}
        {%- for export, columns in raw_export_columns().items() -%}
            {%- set loaded = "(select sha256 from raw.manifest where status = 'loaded' and export = '" ~ export ~ "')" -%}
            {%- if loaded_files.get(export, 0) > 0 -%}
                {%- set src = 'parquet.`' ~ raw_dir ~ '/' ~ export ~ '`' -%}
                {%- do run_query('create or replace view raw.' ~ export ~ ' as select '
                                 ~ _typed_select(columns + raw_lineage_columns()) ~ ' from ' ~ src
                                 ~ ' where _file_sha256 in ' ~ loaded) -%}
            {%- else -%}
                {#- no file yet: a typed, empty view, like DuckDB's -#}
                {%- set nulls = [] -%}
                {%- for c in columns + raw_lineage_columns() -%}
                    {%- set name, type = c.split(':', 1) -%}
                    {%- do nulls.append('cast(null as ' ~ type ~ ') as ' ~ name) -%}
                {%- endfor -%}
                {%- do run_query('create or replace view raw.' ~ export ~ ' as select ' ~ nulls | join(', ') ~ ' where 1 = 0') -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
