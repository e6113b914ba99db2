-- One row per rule_id: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
-- Built after its versions view and that view's key check: this model records a file as
-- staged, which ends the check's interest in it (macros/staging_key_checks.sql).
-- depends_on: {{ ref('stg_exports__commission_rule_versions') }}
{{ config(
    unique_key='rule_id',
    post_hook="{{ staging_record_files('commission_rules', ['rule_id']) }}",
) }}
select
    rule_id,
    scope,
    sku_id,
    merchant_id,
    category,
    rate,
    valid_from,
    valid_to,
    _delivery_date,
    _file_name,
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'commission_rules') }} as exported
{{ staging_redelivered_only('commission_rules', ['rule_id'], 'exported') }}
qualify row_number() over (partition by rule_id order by {{ delivered_last() }}) = 1
