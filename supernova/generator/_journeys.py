"""Buyer journeys: who clicks which promoter's link when, and whether (and when) an order
follows; then each day's clicks as delivered. A mixin of the Model (supernova/generator/
_model.py); every figure comes from probabilities.KNOBS."""

from __future__ import annotations

import numpy as np

from supernova import contract
from supernova.generator import _fmt as render
from supernova.generator._common import DAY, HOUR, UNKNOWN_LINK, sample, set_values, uniform_ints
from supernova.generator.probabilities import KNOBS

DIRECT, CONTESTED, STALE, NO_CLICK = range(4)  # positions in KNOBS.journey_share


class Journeys:
    """Mixin of the Model: journeys starting on a day, and the clicks delivered on a day."""

    def refresh_group_cdf(self):
        G = self.groups
        w = G["weight"] * (G["dissolved"] < 0) * (self.g_init_cnt > 0)
        self.g_total = w.sum()
        self.g_cdf = np.cumsum(w)

    def pick_groups(self, r, n):
        return sample(r, self.g_cdf / self.g_total, n)

    def pick_links(self, r, g):
        n = len(g)
        recent = (self.g_last_cnt[g] > 0) & (r.random(n) < KNOBS.recent_link_p)
        start = np.where(recent, self.g_last_start[g], self.g_init_start[g])
        cnt = np.where(recent, self.g_last_cnt[g], self.g_init_cnt[g])
        return start + (r.random(n) * cnt).astype(np.int64)

    def pick_buyers(self, r, n):
        u = r.random(n)
        u = np.where(r.random(n) < KNOBS.heavy_buyer_draws, u, u**2)
        return (u * self.n_buyers).astype(np.int64)

    def journeys_today(self, r, i):
        """How many journeys start on day i: weekday profile, growing with the live groups."""
        wd = (self.day0 + i + 3) % 7  # 0 = Monday
        factor = KNOBS.weekend_factor if wd >= 5 else KNOBS.weekday_factor
        n = round(
            self.size.lines_per_day
            / KNOBS.lines_per_journey
            * factor
            * self.g_total
            / self.g_total0
        )
        return int(r.poisson(n)) if n < 10_000 else n

    def journeys(self, i):
        """Buyer journeys whose first moment falls on day i: clicks and (maybe) an order."""
        r = self.rng(30, i)
        n = self.journeys_today(r, i)
        day_s = (self.day0 + i) * DAY
        t0 = day_s + self.diurnal(r, n)
        kind = r.choice(4, n, p=KNOBS.journey_share)
        buyer = self.pick_buyers(r, n)
        tlink = self.pick_links(r, self.pick_groups(r, n))
        long_lo, long_hi = KNOBS.contest_gap_long_days
        gap = np.where(
            r.random(n) < KNOBS.contest_gap_short_p,
            uniform_ints(r, *KNOBS.contest_gap_short_seconds, n),
            uniform_ints(r, long_lo * DAY, long_hi * DAY, n),
        )
        t_target = t0 + np.where(kind == CONTESTED, gap, 0)
        rep = (kind <= CONTESTED) & (r.random(n) < KNOBS.repeat_click_p)
        t_rep = t_target + uniform_ints(r, *KNOBS.repeat_click_after_seconds, n)
        t_last = np.where(rep, t_rep, t_target)
        slow_lo, slow_hi = KNOBS.slow_order_hours
        delay = np.where(
            r.random(n) < KNOBS.quick_order_p,
            KNOBS.quick_order_min_seconds
            + r.exponential(KNOBS.quick_order_mean_seconds, n).astype(np.int64),
            uniform_ints(r, slow_lo * HOUR, slow_hi * HOUR, n),
        )
        t_order = np.select(
            [kind <= CONTESTED, kind == STALE],
            [t_last + delay, t0 + uniform_ints(r, *KNOBS.stale_order_seconds, n)],
            t0,
        )
        second = (kind == CONTESTED) & (r.random(n) < KNOBS.second_contest_click_p)
        post = (kind <= STALE) & (r.random(n) < KNOBS.post_order_click_p)
        nb = round(n * KNOBS.browse_per_journey)
        parts = [  # (mask, time, link, buyer, is_target)
            (kind <= STALE, np.where(kind == CONTESTED, t_target, t0), tlink, buyer, 1),
            (rep, t_rep, tlink, buyer, 1),
            (kind == CONTESTED, t0, self.pick_links(r, self.pick_groups(r, n)), buyer, 0),
            (
                second,
                t0 + (r.random(n) * gap).astype(np.int64),
                self.pick_links(r, self.pick_groups(r, n)),
                buyer,
                0,
            ),
            (
                post,
                t_order + uniform_ints(r, *KNOBS.post_order_click_seconds, n),
                self.pick_links(r, self.pick_groups(r, n)),
                buyer,
                0,
            ),
            (
                np.ones(nb, bool),
                day_s + self.diurnal(r, nb),
                self.pick_links(r, self.pick_groups(r, nb)),
                self.pick_buyers(r, nb),
                0,
            ),
        ]
        t = np.concatenate([p[1][p[0]] for p in parts])
        self.clicks_q.push(
            t // DAY - self.day0,
            {
                "t": t,
                "link": np.concatenate([p[2][p[0]] for p in parts]),
                "buyer": np.concatenate([p[3][p[0]] for p in parts]),
                "target": np.concatenate([np.full(int(p[0].sum()), p[4]) for p in parts]),
            },
        )
        hint = np.where(
            (kind <= CONTESTED) & (r.random(n) < KNOBS.order_starts_with_link_sku),
            self.l_sku[tlink],
            -1,
        )
        self.orders_q.push(t_order // DAY - self.day0, {"t": t_order, "buyer": buyer, "hint": hint})

    def emit_clicks(self, i):
        c = self.clicks_q.pop(i, ["t", "link", "buyer", "target"])
        o = np.lexsort((c["buyer"], c["t"]))
        c = {k: v[o] for k, v in c.items()}
        n = len(c["t"])
        ids = self.n_click + 1 + np.arange(n)
        self.n_click += n
        data = {
            "click_id": render.ids("C", 10, ids),
            "link_id": render.ids("L", 9, c["link"] + 1),
            "buyer_id": render.ids("B", 8, c["buyer"] + 1),
            "clicked_at": self.time_text.ts(c["t"]),
        }
        r = self.rng(40, i)
        k = self.mess_n("unknown_link", i, n)
        tg = np.flatnonzero(c["target"] == 1)
        if k and len(tg):
            rows = np.sort(r.choice(tg, min(k, len(tg)), replace=False))
            data["link_id"] = set_values(data["link_id"], rows, [UNKNOWN_LINK] * len(rows))
            self.mess_counts["unknown_link"] += len(rows)
        k = self.mess_n("bad_timestamp", i, n)
        if k:
            data = self.inject(r, data, n, k, "clicked_at", "2026-13-45 25:61", "bad_timestamp")
        raw = []
        k = self.mess_n("wrong_field_count", i, n) if self.fmt_name == "csv" else 0
        if k:
            m = len(data["click_id"])
            for pos in np.sort(r.choice(m, k, replace=False)).tolist():
                columns = contract.EXPORTS["clicks"].column_names
                vals = [data[col][pos].as_py() or "" for col in columns]
                raw.append((pos + 1, ",".join(vals) + ",web"))
            self.mess_counts["wrong_field_count"] += k
        self.write("clicks", i, data, raw)
