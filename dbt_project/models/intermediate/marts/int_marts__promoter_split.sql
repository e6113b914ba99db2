{#- What the estimated earnings (预估佣金) split a line's pool by (§3), per promoter: the
    platform and inviter of the promoter's latest version (greatest updated_at; equal:
    delivered last, §0) and whether the promoter's inviter chain leads back to themselves
    (no level 2). Written once for promoter_earnings_daily and the close's
    rpt_promoter_earnings_reconciliation, which must estimate alike.
    Ephemeral: inlined into each reader, so the close (which builds the reconciliation
    without the marts) never reads a copy left by the last marts refresh. Its SQL is the macro
    promoter_split_select (macros/earnings_incremental.sql): promoter_earnings_daily's hooks
    compare it with the split its last refresh used, and a hook cannot read an ephemeral
    model. -#}
{{ config(materialized='ephemeral') }}

{{ promoter_split_select() }}
