-- Latest snapshot per group (§0); equal snapshot dates: the one delivered last.
-- Built after its versions view and that view's key check: this model records a file as
-- staged, which ends the check's interest in it (macros/staging_key_checks.sql).
-- depends_on: {{ ref('stg_exports__group_versions') }}
{{ config(
    unique_key='group_id',
    post_hook="{{ staging_record_files('groups', ['group_id']) }}",
) }}
select
    group_id,
    owner_id,
    created_at,
    member_count,
    dissolved_at,
    snapshot_date,
    _delivery_date,
    _file_name,
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'groups') }} as exported
{{ staging_redelivered_only('groups', ['group_id'], 'exported') }}
qualify row_number() over (partition by group_id order by snapshot_date desc, {{ delivered_last() }}) = 1
