-- Every version of every promoter (status, platform and inviter change over time; a run
-- for month M uses the latest version before M's cutoff, §0). A version re-delivered
-- with the same updated_at collapses to the one delivered last.
{{ config(
    unique_key=['promoter_id', 'updated_at'],
    post_hook="{{ staging_record_files('promoters', ['promoter_id', 'updated_at']) }}",
) }}
select
    promoter_id,
    platform,
    role,
    inviter_id,
    joined_at,
    city,
    city_tier,
    gender,
    status,
    updated_at,
    _delivery_date,
    _file_name,
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'promoters') }} as exported
{{ staging_redelivered_only('promoters', ['promoter_id', 'updated_at'], 'exported') }}
qualify row_number() over (partition by promoter_id, updated_at order by {{ delivered_last() }}) = 1
