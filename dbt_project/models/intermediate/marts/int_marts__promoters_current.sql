-- The latest version of every promoter (greatest updated_at; equal: delivered last, §0).
-- Platform, role and city tier "now": what the marts group promoters and groups by.
select
    promoter_id,
    platform,
    role,
    city_tier,
    joined_at,
    status
from {{ ref('stg_exports__promoters') }}
qualify row_number() over (partition by promoter_id order by updated_at desc, {{ delivered_last() }}) = 1
