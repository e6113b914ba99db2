"""Groups and the links shared in them, as they stand at the start, and the formatting of
their rows. A mixin of the Model (supernova/generator/_model.py); every figure comes from
probabilities.KNOBS."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from supernova.generator import _fmt as render
from supernova.generator._common import DAY, P_FENXIANG, S_ACTIVE
from supernova.generator.probabilities import KNOBS


class GroupsAndLinks:
    """Mixin of the Model: groups (with their activity weights) and links."""

    def build_groups(self):
        r = self.rng(4)
        P = self.promoters
        n_p = len(P["joined"])
        cnt = r.choice(3, n_p, p=KNOBS.groups_per_promoter_share)
        owner = np.repeat(np.arange(n_p), cnt)
        n = len(owner)
        room = self.start - P["joined"][owner]
        created = P["joined"][owner] + (
            r.random(n) * np.minimum(room, KNOBS.group_created_within_days * DAY)
        ).astype(np.int64)
        order = np.argsort(created, kind="stable")
        owner, created = owner[order], created[order]
        members = np.clip(
            np.round(
                np.exp(r.normal(np.log(KNOBS.group_members_median), KNOBS.group_members_sigma, n))
            ),
            *KNOBS.group_members_range,
        ).astype(np.int64)
        dissolved = np.full(n, -1, np.int64)
        dm = r.random(n) < KNOBS.group_dissolved_before_start
        dissolved[dm] = created[dm] + (r.random(int(dm.sum())) * (self.start - created[dm])).astype(
            np.int64
        )
        self.groups = {
            "owner": owner,
            "created": created,
            "members": members,
            "dissolved": dissolved,
            "weight": self.group_weights(r, members),
        }
        self.groups["weight"][dm] = 0
        self.g_protected = np.zeros(n, bool)
        self.make_stars(r, owner, dm)

    def make_stars(self, r, owner, dissolved):
        """A handful of very active fenxiang groups (tier T2/T3 promoters every month); their
        owners are never suspended."""
        P, n = self.promoters, len(owner)
        ok = np.flatnonzero(
            (~dissolved) & (P["platform"][owner] == P_FENXIANG) & (P["status"][owner] == S_ACTIVE)
        )
        base = np.array(KNOBS.star_group_shares) * min(1.0, KNOBS.star_shares_full_up_to_groups / n)
        n_star = min(len(ok), max(len(base), n // KNOBS.groups_per_star))
        stars = r.choice(ok, n_star, replace=False)
        _, first = np.unique(owner[stars], return_index=True)  # one star group per promoter
        stars = stars[np.sort(first)]
        shares = np.r_[base, np.full(max(0, len(stars) - len(base)), base[-1])][: len(stars)]
        rest = self.groups["weight"].sum()
        self.groups["weight"][stars] = shares / (1 - shares.sum()) * rest
        self.g_protected[stars] = True
        self.p_protected[owner[stars]] = True

    def group_weights(self, r, members):
        n = len(members)
        clip = KNOBS.group_activity_clip
        w = np.exp(np.clip(r.normal(0, KNOBS.group_activity_sigma, n), -clip, clip)) * np.sqrt(
            members / KNOBS.group_members_median
        )
        w[r.random(n) < KNOBS.group_dead_share] = 0  # dead groups: no clicks, no orders
        return w

    def group_rows(self, idx, day) -> dict[str, pa.Array]:
        G = self.groups
        d = G["dissolved"][idx]
        return {
            "group_id": render.ids("G", 7, idx + 1),
            "owner_id": render.ids("P", 7, G["owner"][idx] + 1),
            "created_at": self.time_text.ts(G["created"][idx]),
            "member_count": render.ints(G["members"][idx]),
            "dissolved_at": self.time_text.ts(np.maximum(d, 0), d < 0),
            "snapshot_date": self.time_text.date(np.full(len(idx), self.day0 + day)),
        }

    def build_links(self):
        r = self.rng(5)
        G = self.groups
        n = len(G["owner"])
        self.l_sku = np.zeros(0, np.int32)
        self.n_links = 0
        self.g_init_start = np.zeros(n, np.int64)
        self.g_init_cnt = np.zeros(n, np.int64)
        self.g_last_start = np.zeros(n, np.int64)
        self.g_last_cnt = np.zeros(n, np.int64)
        mean_w = G["weight"][G["weight"] > 0].mean()
        lam = np.where(
            G["weight"] > 0,
            KNOBS.initial_links_base
            + KNOBS.initial_links_per_weight
            * np.minimum(G["weight"] / mean_w, KNOBS.initial_links_weight_cap),
            KNOBS.initial_links_dead_group,
        )
        counts = np.minimum(1 + r.poisson(lam), KNOBS.initial_links_max)
        end = np.where(G["dissolved"] >= 0, G["dissolved"], self.start)
        lo = np.maximum(G["created"], end - KNOBS.initial_links_within_days * DAY)
        return self.add_links(r, np.arange(n), counts, lo, np.maximum(end, lo + 1))

    def add_links(self, r, groups, counts, lo, hi):
        """Append blocks of new links for `groups` (k links each, created in [lo, hi))."""
        keep = counts > 0
        groups, counts, lo, hi = groups[keep], counts[keep], lo[keep], hi[keep]
        n = int(counts.sum())
        start = self.n_links + np.r_[0, np.cumsum(counts)[:-1]]
        gl = np.repeat(groups, counts)
        created = np.repeat(lo, counts) + (r.random(n) * np.repeat(hi - lo, counts)).astype(
            np.int64
        )
        sku = self.sample_skus(r, n)
        self.l_sku = np.r_[self.l_sku, sku.astype(np.int32)]
        first = self.g_init_cnt[groups] == 0
        self.g_init_start[groups[first]] = start[first]
        self.g_init_cnt[groups[first]] = counts[first]
        self.g_last_start[groups] = start
        self.g_last_cnt[groups] = counts
        first_id = self.n_links + 1
        self.n_links += n
        private = r.random(n) < KNOBS.link_private_share
        owner = self.groups["owner"][gl]
        return self.lazy(
            n,
            lambda a, b: {
                "link_id": render.ids("L", 9, first_id + np.arange(a, b)),
                "promoter_id": render.ids("P", 7, owner[a:b] + 1),
                "group_id": render.ids("G", 7, gl[a:b] + 1, private[a:b]),
                "sku_id": render.ids("S", 7, sku[a:b] + 1),
                "created_at": self.time_text.ts(created[a:b]),
            },
        )
