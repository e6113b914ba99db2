{#- What the estimated earnings (预估佣金) split a line's pool by (§3), per promoter: the
    platform and inviter of the promoter's latest version (greatest updated_at; equal:
    delivered last, §0) and whether the promoter's inviter chain leads back to themselves
    (no level 2). Written once for promoter_earnings_daily and the close's
    rpt_promoter_earnings_reconciliation, which must estimate alike.
    Ephemeral: inlined into each reader, so the close (which builds the reconciliation
    without the marts) never reads a copy left by the last marts refresh. -#}
{{ config(materialized='ephemeral') }}

with latest as (
    select promoter_id, platform, inviter_id
    from {{ ref('stg_exports__promoters') }}
    qualify row_number() over (partition by promoter_id order by updated_at desc, {{ delivered_last() }}) = 1
),

loops as (
    {{ inviter_loop_promoters('latest') }}
)

select
    promoter_id,
    platform,
    inviter_id,
    promoter_id in (select promoter_id from loops) as is_in_inviter_loop
from latest
