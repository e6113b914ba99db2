-- Promoters whose inviter chain leads back to themselves (self-invited, or invited by
-- their own invitee at any depth). They get no level-2 share and are reported as a
-- finding (§3). The walk stops on reaching the start or after inviter_chain_max_depth
-- steps (a chain stuck in a loop that does not contain the start).
with recursive chain as (
    select
        promoter_id as start_id,
        inviter_id as ancestor_id,
        1 as depth
    from {{ ref('int_settlement__promoters_as_of_cutoff') }}
    where inviter_id is not null

    union all

    select
        chain.start_id,
        p.inviter_id as ancestor_id,
        chain.depth + 1 as depth
    from chain
    inner join {{ ref('int_settlement__promoters_as_of_cutoff') }} as p
        on p.promoter_id = chain.ancestor_id
    where p.inviter_id is not null
        and chain.ancestor_id <> chain.start_id
        and chain.depth < {{ cfg('inviter_chain_max_depth') }}
)

select
    start_id as promoter_id,
    min(depth) as loop_length
from chain
where ancestor_id = start_id
group by start_id
