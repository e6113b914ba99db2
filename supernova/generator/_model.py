"""The simulation behind `generate`: the Model holds the state and runs the days.

Time is int64 seconds of Asia/Shanghai wall-clock time since 1970-01-01 ("local
seconds"); day index i = 0 is the start date. Everything is numpy-vectorised per day;
the state carried from day to day is the master data (arrays) plus pending future
clicks, orders and order events bucketed by the day they fall on.

The work is split by job into mixins: master data at the start (_master, _groups), a
day's master changes (_master_changes), buyer journeys and clicks (_journeys), orders and
their events (_orders), bad input on purpose (_mess). Every probability and rate is read
from the one table in probabilities.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from supernova import contract
from supernova.generator import _fmt as render
from supernova.generator._common import DAY, HOUR, Buckets, concat
from supernova.generator._groups import GroupsAndLinks
from supernova.generator._journeys import Journeys
from supernova.generator._master import MasterData
from supernova.generator._master_changes import MASTER_EXPORTS, MasterChanges
from supernova.generator._mess import MESS_KINDS, Mess
from supernova.generator._orders import OrdersAndEvents
from supernova.generator._vocab import CITIES_BY_TIER
from supernova.generator.probabilities import KNOBS

__all__ = ["MESS_KINDS", "SCALES", "Model", "Scale"]

WARMUP_DAYS = 26  # longest journey (first click -> order) is < 25 days


@dataclass(frozen=True)
class Scale:
    promoters: int
    skus: int
    pop_merchants: int
    buyers: int
    lines_per_day: int
    part_rows: int = 1_000_000


SCALES = {
    "tiny": Scale(promoters=260, skus=300, pop_merchants=45, buyers=5_000, lines_per_day=240),
    "demo": Scale(
        promoters=1_800, skus=2_000, pop_merchants=250, buyers=40_000, lines_per_day=1_700
    ),
    # a tenth of today: big enough that per-row work dominates per-node overhead (the
    # Spark-vs-DuckDB comparison of docs/benchmarks.md), small enough for Spark local mode
    "pilot": Scale(
        promoters=42_000, skus=20_000, pop_merchants=2_000, buyers=300_000, lines_per_day=30_000
    ),
    "today": Scale(
        promoters=420_000, skus=60_000, pop_merchants=6_000, buyers=3_000_000, lines_per_day=300_000
    ),
    "target": Scale(
        promoters=1_250_000,
        skus=150_000,
        pop_merchants=15_000,
        buyers=9_000_000,
        lines_per_day=1_000_000,
    ),
}


class Model(MasterData, GroupsAndLinks, MasterChanges, Journeys, OrdersAndEvents, Mess):
    def __init__(
        self, out: Path, day0: int, days: int, scale: str, seed: int, fmt: str, mess: bool
    ):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        if days < 1:
            raise ValueError("days must be >= 1")
        self.size = SCALES[scale]
        self.scale = scale
        self.seed = int(seed)
        self.day0 = day0
        self.days = days
        self.mess = mess
        self.fmt_name = fmt
        self.start = day0 * DAY
        self.w = render.Writer(out, fmt, self.size.part_rows)
        self.time_text = render.Fmt(day0 - 8 * 366, day0 + days + 70)
        self.mess_counts = {k: 0 for k in MESS_KINDS}
        self.clicks_q = Buckets(days - 1)
        self.orders_q = Buckets(days - 1)
        self.events_q = Buckets(days - 1)
        self.n_click = 0
        self.n_order = 0
        self.n_event = 0
        self.n_rule = 0
        # cities
        names, tiers = [], []
        for t in range(1, 7):
            names += CITIES_BY_TIER[t]
            tiers += [t] * len(CITIES_BY_TIER[t])
        self.city_names = pa.array(names)
        self.city_tier = np.array(tiers)
        self.tier_off = np.array([tiers.index(t) for t in range(1, 7)])
        self.tier_cnt = np.array([tiers.count(t) for t in range(1, 7)])
        hour_weights = np.array(KNOBS.hour_weights, float)
        self.hour_cdf = np.cumsum(hour_weights) / hour_weights.sum()

    # -- helpers -------------------------------------------------------------------
    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *[k + 100_000 for k in key]])

    def day_str(self, i: int) -> str:
        return render.date_str(self.day0 + i)

    def diurnal(self, r, n):
        hour = np.searchsorted(self.hour_cdf, r.random(n), side="right")
        return np.minimum(hour, 23) * HOUR + r.integers(0, HOUR, n)

    def pick_cities(self, r, n):
        tier = r.choice(6, n, p=KNOBS.city_tier_share)
        return self.tier_off[tier] + (r.random(n) * self.tier_cnt[tier]).astype(np.int64)

    def write(self, export, i, data, raw=(), encoding="utf-8"):
        cols = contract.EXPORTS[export].column_names
        return self.w.write(export, self.day_str(i), cols, data, list(raw), encoding)

    # -- run -----------------------------------------------------------------------
    def run(self) -> str:
        skus = self.build_skus()
        rules0 = self.rule_rows(self.build_rules())
        hist = self.build_promoters()
        self.build_groups()
        links0 = self.build_links()
        self.n_buyers = self.size.buyers
        history = KNOBS.buyer_history_years * 365 * DAY
        reg = np.sort(
            self.start
            - 1
            - (history * self.rng(6).random(self.n_buyers) ** KNOBS.buyer_registration_skew).astype(
                np.int64
            )
        )
        buyers0 = self.lazy(
            self.n_buyers,
            lambda a, b: self.buyer_rows(self.rng(6, 1 + a // self.size.part_rows), a, reg[a:b]),
        )
        self.refresh_group_cdf()
        self.g_total0 = self.g_total
        # warm-up: journeys that started before the start date and end inside the window
        for i in range(-WARMUP_DAYS, 0):
            self.journeys(i)
        for i in range(self.days):
            r = self.rng(20, i)
            self.refresh_group_cdf()
            self.journeys(i)
            if i == 0:  # the promoters as they stand at the start, before day 1's changes
                n_p = len(self.promoters["joined"])
                at_start = {k: v.copy() for k, v in self.promoters.items()}
                hist_rows = self.promoter_rows(
                    hist,
                    {"status": np.zeros(len(hist), np.int64), "updated": at_start["joined"][hist]},
                )
            m = self.master_day(i, r)
            if i == 0:
                m["promoters"] = (
                    [hist_rows]
                    + self.lazy(
                        n_p, lambda a, b, P=at_start: self.promoter_rows(np.arange(a, b), P=P)
                    )
                    + m["promoters"]
                )
                self.deliver_first_day(m, skus, rules0, links0, buyers0)
            else:
                self.deliver_changes(i, m)
            del m
            self.emit_clicks(i)
            self.emit_orders(i)
            self.emit_events(i)
        return self.summary()

    def deliver_first_day(self, m, skus, rules0, links0, buyers0):
        """Day 1: the master data as it stands at the start, plus day 1's own changes."""
        n_g = len(self.groups["owner"])
        m["groups"] = self.lazy(n_g, lambda a, b: self.group_rows(np.arange(a, b), 0))
        m["links"] = links0 + m["links"]
        m["buyers"] = buyers0 + m["buyers"]
        m["commission_rules"].insert(0, rules0)
        enc = "gb18030" if self.mess and self.fmt_name == "csv" else "utf-8"
        if enc != "utf-8":
            self.mess_counts["gb18030_file"] += 1
        self.write("skus", 0, skus, encoding=enc)
        for export in MASTER_EXPORTS:
            self.write(export, 0, m[export])

    def deliver_changes(self, i, m):
        """A later day: the changes only (no skus, and no file where nothing changed)."""
        self.write("skus", i, concat([], contract.EXPORTS["skus"].column_names))
        for export in MASTER_EXPORTS:
            data = concat(m[export], contract.EXPORTS[export].column_names)
            if export == "buyers":
                n = len(data["buyer_id"])
                k = self.mess_n("city_tier_out_of_range", i, n)
                if k:
                    data = self.inject(
                        self.rng(70, i), data, n, k, "city_tier", "7", "city_tier_out_of_range"
                    )
            self.write(export, i, data)

    def summary(self) -> str:
        first, last = self.day_str(0), self.day_str(self.days - 1)
        lines = [
            (
                f"generated scale={self.scale} seed={self.seed} format={self.fmt_name} "
                f"mess={'on' if self.mess else 'off'}: {self.days} daily deliveries {first}..{last}"
            ),
            f"  {self.w.files} files, {self.w.bytes / 1e6:.1f} MB under {self.w.out}",
        ]
        for e in contract.EXPORT_NAMES:
            lines.append(f"  {e:<17}{self.w.rows.get(e, 0):>12,} rows")
        if self.mess:
            lines.append(
                "  mess: " + ", ".join(f"{k}={v}" for k, v in self.mess_counts.items() if v)
            )
        return "\n".join(lines)
