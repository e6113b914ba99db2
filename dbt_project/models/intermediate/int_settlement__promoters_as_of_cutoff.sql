-- The promoter as finance sees them for month M: the version with the greatest
-- updated_at before M's cutoff (equal updated_at: delivered last, §0). Promoters whose
-- first version is after the cutoff are unknown to this run.
select
    promoter_id,
    platform,
    role,
    inviter_id,
    city_tier,
    status,
    updated_at
from {{ ref('stg_exports__promoters') }}
where updated_at < {{ cutoff_ts() }}
qualify row_number() over (partition by promoter_id order by updated_at desc, {{ delivered_last() }}) = 1
