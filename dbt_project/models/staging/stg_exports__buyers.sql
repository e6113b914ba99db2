-- One row per buyer_id: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
{{ config(
    unique_key='buyer_id',
    post_hook="{{ staging_record_files('buyers', ['buyer_id']) }}",
) }}
select
    buyer_id,
    gender,
    birth_year,
    city,
    city_tier,
    registered_at,
    _delivery_date,
    _file_name,
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'buyers') }} as exported
{{ staging_redelivered_only('buyers', ['buyer_id'], 'exported') }}
qualify row_number() over (partition by buyer_id order by {{ delivered_last() }}) = 1
