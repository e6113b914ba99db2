"""Master data changes of one day: promoter status changes and joiners, groups opened,
resized and dissolved, new links and buyers, commission rule changes. A mixin of the Model
(supernova/generator/_model.py); every figure comes from probabilities.KNOBS."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from supernova.generator._common import (
    DAY,
    HOUR,
    S_ACTIVE,
    S_SUSPENDED,
    S_TERMINATED,
    SC_CATEGORY,
    SC_MERCHANT,
    SC_SKU,
    UNKNOWN_PROMOTER,
    set_values,
    uniform_ints,
)
from supernova.generator._master import N_SELF_MERCHANTS
from supernova.generator._mess import INVITER_LOOP_DAY, SELF_INVITED_DAY, UNKNOWN_INVITER_DAY
from supernova.generator.probabilities import KNOBS

MASTER_EXPORTS = ("promoters", "groups", "links", "buyers", "commission_rules")


class MasterChanges:
    """Mixin of the Model: applies a day's master changes and returns the rows to deliver."""

    def master_day(self, i, r):
        """Apply day i's master changes; returns rows to deliver (promoters, groups, links,
        buyers, commission_rules) as lists of column dicts."""
        day_s = (self.day0 + i) * DAY
        out = {k: [] for k in MASTER_EXPORTS}
        n_p, new_idx = self.promoter_changes(r, i, day_s, out)
        self.group_and_link_changes(r, i, day_s, out, n_p, new_idx)
        # buyers
        kb = int(r.poisson(self.size.buyers * KNOBS.buyers_registering_per_day))
        reg = np.sort(day_s + uniform_ints(r, 0, DAY, kb))
        out["buyers"].append(self.buyer_rows(r, self.n_buyers, reg))
        self.n_buyers += kb
        # commission rule changes
        if i > 0:  # day 1 delivers the rules in force; changes start the day after
            out["commission_rules"].append(self.rule_changes(r, i, day_s))
        return out

    def promoter_changes(self, r, i, day_s, out):
        """Status changes of promoters who joined before today, mess versions, joiners.
        Returns (promoters before today, indexes of today's joiners)."""
        P = self.promoters
        n_p = len(P["joined"])
        st = P["status"]
        u = r.random(n_p)
        new_st = st.copy()
        active, suspended = st == S_ACTIVE, st == S_SUSPENDED
        leave_a, leave_s = (
            (
                KNOBS.active_suspended_per_day,
                KNOBS.active_suspended_or_terminated_per_day,
            ),
            (KNOBS.suspended_reinstated_per_day, KNOBS.suspended_reinstated_or_terminated_per_day),
        )
        new_st[active & (u < leave_a[0])] = S_SUSPENDED
        new_st[active & (u >= leave_a[0]) & (u < leave_a[1])] = S_TERMINATED
        new_st[suspended & (u < leave_s[0])] = S_ACTIVE
        new_st[suspended & (u >= leave_s[0]) & (u < leave_s[1])] = S_TERMINATED
        new_st[self.p_protected] = st[self.p_protected]
        chg = np.flatnonzero(new_st != st)
        P["status"][chg] = new_st[chg]
        P["updated"][chg] = day_s + uniform_ints(r, 0, DAY, len(chg))
        # mess: promoter versions with inviter problems
        for kind, day in (("inviter_loop", INVITER_LOOP_DAY), ("self_invited", SELF_INVITED_DAY)):
            if self.mess and i == self.once_day(day):
                cand = np.flatnonzero(
                    (P["inviter"] >= 0)
                    & ~self.p_protected
                    & ~self.p_protected[np.maximum(P["inviter"], 0)]
                )
                b = cand[len(cand) // 2] if kind == "inviter_loop" else cand[len(cand) // 3]
                a = P["inviter"][b] if kind == "inviter_loop" else b
                P["inviter"][a] = b
                P["updated"][a] = day_s + uniform_ints(r, 0, DAY, 1)[0]
                chg = np.r_[chg, a]
                self.mess_counts[kind] += 1
        if len(chg):
            chg = np.sort(chg)
            out["promoters"].append(self.promoter_rows(chg))
        # new promoters
        unknown_inviter_today = self.mess and i == self.once_day(UNKNOWN_INVITER_DAY)
        k = int(
            r.poisson(
                max(
                    KNOBS.promoters_joining_min_per_day,
                    self.size.promoters * KNOBS.promoters_joining_per_day,
                )
            )
        )
        if unknown_inviter_today:
            k = max(k, 1)  # the promoter with an unknown inviter joins today
        if not k:
            return n_p, np.zeros(0, np.int64)
        joined = np.sort(day_s + uniform_ints(r, 0, DAY, k))
        joiners = self.new_promoters(r, k, joined, n_p)
        if unknown_inviter_today:
            joiners["inviter"][0] = -2  # unknown inviter, rendered below
            self.mess_counts["unknown_inviter"] += 1
        for key in P:
            P[key] = np.r_[P[key], joiners[key]]
        self.p_protected = np.r_[self.p_protected, np.zeros(k, bool)]
        new_idx = np.arange(n_p, n_p + k)
        rows = self.promoter_rows(new_idx)
        if (joiners["inviter"] == -2).any():
            rows["inviter_id"] = set_values(
                rows["inviter_id"], np.flatnonzero(joiners["inviter"] == -2), [UNKNOWN_PROMOTER]
            )
            P["inviter"][P["inviter"] == -2] = -1
        out["promoters"].append(rows)
        return n_p, new_idx

    def group_and_link_changes(self, r, i, day_s, out, n_p, new_idx):
        """Groups: new (for new promoters, and second groups), dissolutions, member changes;
        links: active groups share new links, new groups get their first ones."""
        P, G = self.promoters, self.groups
        n_g = len(G["owner"])
        alive = G["dissolved"] < 0
        u = r.random(n_g)
        gone, changed = KNOBS.group_dissolved_per_day, KNOBS.group_dissolved_or_resized_per_day
        dis = np.flatnonzero(alive & (u < gone) & ~self.g_protected)
        G["dissolved"][dis] = np.maximum(
            G["created"][dis] + 1, day_s + uniform_ints(r, 0, DAY, len(dis))
        )
        G["weight"][dis] = 0
        mem = np.flatnonzero(alive & (u >= gone) & (u < changed))
        G["members"][mem] = np.clip(
            G["members"][mem]
            + np.round(r.normal(0, KNOBS.group_resize_sigma, len(mem))).astype(np.int64),
            *KNOBS.group_members_range,
        )
        own_new = new_idx[r.random(len(new_idx)) < KNOBS.new_promoter_opens_group]
        act = np.flatnonzero(P["status"][:n_p] == S_ACTIVE)
        own_2nd = np.sort(
            r.choice(
                act, min(len(act), int(r.poisson(n_g * KNOBS.second_group_per_day))), replace=False
            )
        )
        owners = np.r_[own_new, own_2nd]
        lo = np.maximum(P["joined"][owners], day_s)
        created = lo + (r.random(len(owners)) * (day_s + DAY - lo)).astype(np.int64)
        created = np.minimum(created, day_s + DAY - 2)
        o = np.argsort(created, kind="stable")
        owners, created = owners[o], created[o]
        kn = len(owners)
        members = np.clip(
            np.round(
                np.exp(
                    r.normal(
                        np.log(KNOBS.new_group_members_median), KNOBS.new_group_members_sigma, kn
                    )
                )
            ),
            *KNOBS.group_members_range,
        ).astype(np.int64)
        for key, val in (
            ("owner", owners),
            ("created", created),
            ("members", members),
            ("dissolved", np.full(kn, -1)),
            ("weight", self.group_weights(r, members)),
        ):
            G[key] = np.r_[G[key], val]
        self.g_protected = np.r_[self.g_protected, np.zeros(kn, bool)]
        for name in ("g_init_start", "g_init_cnt", "g_last_start", "g_last_cnt"):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(kn, np.int64)])
        new_g = np.arange(n_g, n_g + kn)
        snap = np.unique(np.r_[dis, mem, new_g])
        if i > 0:
            out["groups"].append(self.group_rows(snap, i))
        # links
        grp = np.r_[np.arange(n_g), new_g]
        lam = np.r_[
            np.where(
                (G["weight"][:n_g] > 0) & alive,
                KNOBS.daily_links_live_group,
                KNOBS.daily_links_dead_group,
            )
            * (G["dissolved"][:n_g] < 0),
            np.full(kn, 0.0),
        ]
        cnt = (
            r.poisson(lam)
            + np.r_[np.zeros(n_g, np.int64), 1 + r.poisson(KNOBS.new_group_links, kn)]
        )
        lo = np.r_[np.full(n_g, day_s), created + 1]
        hi = np.r_[
            np.where(
                G["dissolved"][:n_g] >= 0, np.maximum(G["dissolved"][:n_g], day_s + 1), day_s + DAY
            ),
            np.full(kn, day_s + DAY),
        ]
        out["links"] += self.add_links(r, grp, cnt, lo, hi)

    def rule_changes(self, r, i, day_s):
        """Rate changes (the old rule closed, a new one opened at the same moment), new sku
        rules, and the mess rules. Returns the day's commission_rules rows."""
        R = self.rules
        n = len(R["id"])
        u = r.random(n)
        chg = np.flatnonzero(
            np.where(
                R["scope"] == SC_CATEGORY,
                u < KNOBS.category_rule_change_per_day,
                u < KNOBS.rule_change_per_day,
            )
        )
        t = np.where(
            r.random(len(chg)) < KNOBS.rule_change_at_midnight,
            day_s,
            day_s + uniform_ints(r, 0, DAY, len(chg)),
        )
        old = {k: v[chg].copy() for k, v in R.items()}
        old["to"] = t
        cat = old["scope"] == SC_CATEGORY
        step = r.choice(list(KNOBS.rule_rate_change_permille), len(chg))
        new_rate = np.where(
            cat,
            np.clip(
                old["rate"] + np.sign(step) * KNOBS.rate_step_permille,
                *KNOBS.category_rate_range_permille,
            ),
            np.clip(old["rate"] + step, *KNOBS.rule_rate_range_permille),
        )
        new_rate[~cat & (r.random(len(chg)) < KNOBS.changed_rule_to_zero)] = 0
        new = {
            "scope": old["scope"],
            "key": old["key"],
            "rate": new_rate,
            "frm": t,
            "to": np.full(len(chg), -1),
            "id": self.n_rule + 1 + np.arange(len(chg)),
        }
        self.n_rule += len(chg)
        for k in ("rate", "frm", "to", "id"):
            R[k][chg] = new[k]
        # brand-new sku rules for POP skus without one
        have = set(R["key"][R["scope"] == SC_SKU].tolist())
        k = int(r.poisson(len(self.sku_self) * KNOBS.new_sku_rules_per_day))
        cand = r.choice(len(self.sku_self), k) if k else np.zeros(0, np.int64)
        cand = np.array(
            sorted({int(c) for c in cand if not self.sku_self[c] and int(c) not in have}), np.int64
        )
        add = {
            "scope": np.full(len(cand), SC_SKU),
            "key": cand,
            "rate": KNOBS.pop_sku_rate_floor_permille
            + KNOBS.rate_step_permille * r.integers(0, KNOBS.new_sku_rule_rate_steps, len(cand)),
            "frm": day_s + uniform_ints(r, 0, DAY, len(cand)),
            "to": np.full(len(cand), -1),
            "id": self.n_rule + 1 + np.arange(len(cand)),
        }
        self.n_rule += len(cand)
        for key in R:
            R[key] = np.r_[R[key], add[key]]
        rows = {key: np.r_[old[key], new[key], add[key]] for key in R}
        return self.with_mess_rules(r, i, day_s, self.rule_rows(rows))

    def with_mess_rules(self, r, i, day_s, data):
        extra = []
        if self.mess_n("rate_out_of_range", i, 1):
            self.n_rule += 1
            extra.append(
                {
                    "scope": SC_SKU,
                    "key": int(r.integers(0, len(self.sku_self))),
                    "rate": 1500,
                    "frm": day_s + HOUR,
                    "to": -1,
                    "id": self.n_rule,
                    "bad": "rate_out_of_range",
                }
            )
        if self.mess_n("valid_to_not_after_from", i, 1):
            self.n_rule += 1
            extra.append(
                {
                    "scope": SC_MERCHANT,
                    "key": N_SELF_MERCHANTS + 1,
                    "rate": 50,
                    "frm": day_s + 2 * HOUR,
                    "to": day_s + 2 * HOUR - DAY,
                    "id": self.n_rule,
                    "bad": "valid_to_not_after_from",
                }
            )
        if extra:
            xr = {key: np.array([e[key] for e in extra], np.int64) for key in self.rules}
            xd = self.rule_rows(xr)
            data = {c: pa.concat_arrays([data[c], xd[c]]) for c in data}
            for e in extra:
                self.mess_counts[e["bad"]] += 1
        return data
