-- One row per click_id: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
-- Built after its versions view and that view's key check: this model records a file as
-- staged, which ends the check's interest in it (macros/staging_key_checks.sql).
-- depends_on: {{ ref('stg_exports__click_versions') }}
{{ config(
    unique_key='click_id',
    post_hook="{{ staging_record_files('clicks', ['click_id']) }}",
) }}
select
    click_id,
    link_id,
    buyer_id,
    clicked_at,
    _delivery_date,
    _file_name,
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'clicks') }} as exported
{{ staging_redelivered_only('clicks', ['click_id'], 'exported') }}
qualify row_number() over (partition by click_id order by {{ delivered_last() }}) = 1
{{ staging_time_order('clicked_at') }}
