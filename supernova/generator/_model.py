"""The simulation behind `generate`: master data, buyer journeys, orders and their events.

Time is int64 seconds of Asia/Shanghai wall-clock time since 1970-01-01 ("local
seconds"); day index i = 0 is the start date. Everything is numpy-vectorised per day;
the state carried from day to day is the master data (arrays) plus pending future
clicks, orders and order events bucketed by the day they fall on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from supernova import contract as C
from supernova.generator import _fmt as F
from supernova.generator._vocab import CITIES_BY_TIER, NEWLINE_SUFFIX, TITLE_PARTS

DAY = F.DAY
HOUR = 3600

P_FENXIANG, P_JINGXIAOGE, P_JINGXIAOFU, P_YUNDIAN = range(4)
R_MOM, R_MICRO, R_COURIER, R_INSTALLER, R_CLEANER, R_GUIDE, R_STUDENT, R_OTHER = range(8)
S_ACTIVE, S_SUSPENDED, S_TERMINATED = range(3)
E_PAID, E_COMPLETED, E_CANCELLED, E_REFUNDED = range(4)
SC_SKU, SC_MERCHANT, SC_CATEGORY = range(3)
assert C.ORDER_EVENTS == ("paid", "completed", "cancelled", "refunded")
assert C.RULE_SCOPES == ("sku", "merchant", "category")
assert C.PROMOTER_STATUSES == ("active", "suspended", "terminated")

CATS = C.CATEGORIES
CAT = {c: k for k, c in enumerate(CATS)}

# -- realism knobs -------------------------------------------------------------------
PLATFORM_P = (0.90, 0.055, 0.025, 0.02)
ROLE_P = {  # per platform: probabilities over C.ROLES
    P_FENXIANG: (0.55, 0.30, 0, 0, 0, 0, 0.08, 0.07),
    P_JINGXIAOGE: (0, 0, 0.95, 0, 0, 0, 0, 0.05),
    P_JINGXIAOFU: (0, 0, 0, 0.5, 0.4, 0, 0, 0.1),
    P_YUNDIAN: (0, 0, 0, 0, 0, 0.95, 0, 0.05),
}
GENDER_BY_ROLE = {  # F, M, U
    R_MOM: (1, 0, 0),
    R_MICRO: (0.75, 0.2, 0.05),
    R_COURIER: (0.08, 0.9, 0.02),
    R_INSTALLER: (0.05, 0.93, 0.02),
    R_CLEANER: (0.7, 0.28, 0.02),
    R_GUIDE: (0.7, 0.27, 0.03),
    R_STUDENT: (0.6, 0.35, 0.05),
    R_OTHER: (0.5, 0.4, 0.1),
}
TIER_P = (0.26, 0.16, 0.16, 0.14, 0.10, 0.18)
BUYER_GENDER_P = (0.60, 0.32, 0.08)
HOUR_W = np.array(
    [3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 10, 9, 8, 8, 8, 9, 10, 12, 14, 15, 13, 7], float
)

POP_CAT_P = {
    "fresh_food": 0.26,
    "home": 0.22,
    "underwear": 0.18,
    "food": 0.12,
    "apparel": 0.10,
    "beauty": 0.07,
    "mother_baby": 0.05,
}
SELF_CAT_P = {
    "appliances": 0.45,
    "electronics": 0.38,
    "home": 0.07,
    "beauty": 0.05,
    "mother_baby": 0.05,
}
SELF_MERCHANT = {"appliances": 1, "electronics": 2, "home": 3, "beauty": 4, "mother_baby": 5}
N_SELF_MERCHANTS = 5
PRICE_MEDIAN_YUAN = {  # (POP, self-operated)
    "fresh_food": (39, 39),
    "food": (25, 25),
    "home": (35, 129),
    "underwear": (45, 45),
    "apparel": (79, 79),
    "beauty": (59, 159),
    "mother_baby": (59, 139),
    "appliances": (299, 399),
    "electronics": (399, 599),
}
SELF_SKU_SHARE = 0.25  # of SKUs
SELF_LINE_SHARE = 0.09  # of order lines (expensive: roughly half the GMV)
CATEGORY_RATE_PERMILLE = {
    "fresh_food": 20,
    "food": 20,
    "home": 20,
    "underwear": 0,
    "apparel": 10,
    "beauty": 20,
    "mother_baby": 15,
    "appliances": 10,
    "electronics": 5,
}

LINES_PER_ORDER = np.array([1, 2, 3, 4, 5])
LINES_PER_ORDER_P = np.array([0.80, 0.12, 0.05, 0.02, 0.01])
CANCEL_P = 0.05  # per (leaf) order
STUCK_P = 0.01  # never completed (lost parcel, still open)
REFUND_P = 0.06  # per line that is neither cancelled nor stuck
EVENT_ID_P = 0.95
ORGANIC_NOCLICK_P = 0.12
JOURNEY_P = (0.57, 0.26, 0.05, ORGANIC_NOCLICK_P)  # direct, competed, stale click, no click
BROWSE_PER_JOURNEY = 1.2
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

# Mess kinds: name -> (export, what it is). Documented in docs/generator.md.
MESS_KINDS = {
    "negative_paid_amount": ("orders", "extra copy of a line with paid_amount negative"),
    "money_3_decimals": ("orders", "extra copy of a line with unit_price carrying 3 decimals"),
    "missing_required": ("orders", "extra copy of a line with buyer_id empty"),
    "unknown_sku": ("orders", "a real line whose sku_id is not in skus (valid row; suspense)"),
    "unknown_event": ("order_events", "extra copy of an event with event = 'shipped'"),
    "bad_timestamp": ("clicks", "extra copy of a click with an unparseable clicked_at"),
    "wrong_field_count": ("clicks", "extra record with one field too many (CSV only)"),
    "unknown_link": (
        "clicks",
        (
            "a real last-before-order click whose link_id is not in links "
            "(valid row; the order goes to suspense)"
        ),
    ),
    "rate_out_of_range": ("commission_rules", "extra new sku rule with rate 1.5"),
    "valid_to_not_after_from": (
        "commission_rules",
        ("extra new merchant rule with valid_to one day before valid_from"),
    ),
    "city_tier_out_of_range": ("buyers", "extra copy of a new buyer with city_tier 7"),
    "inviter_loop": ("promoters", "new version of A with inviter = B where B was invited by A"),
    "self_invited": ("promoters", "new version of a promoter with inviter_id = own id"),
    "unknown_inviter": (
        "promoters",
        ("new promoter whose inviter_id is not a promoter (valid row; suspense)"),
    ),
    "gb18030_file": ("skus", "day 1's skus file encoded as GB18030 instead of UTF-8 (CSV only)"),
    "duplicate_file": (
        "orders",
        (
            "day 4's orders part-0000 delivered again, same bytes, in "
            "day 6's folder as resend-0000.<ext>"
        ),
    ),
}
MESS_EVERY = 5  # a row-level kind k fires on days i >= 1 with (i + k) % MESS_EVERY == 0
MESS_RATE = 1 / 5000  # rows per occurrence = max(1, round(rows * rate))

UNKNOWN_LINK = "L999999999"
UNKNOWN_SKU = "S9999999"
UNKNOWN_PROMOTER = "P9999999"


def _u(r, lo, hi, n):
    return r.integers(int(lo), int(hi), n, endpoint=False) if hi > lo else np.full(n, int(lo))


class Buckets:
    """Pending rows keyed by day index; rows outside [0, last] are dropped on push."""

    def __init__(self, last: int):
        self.last = last
        self.b: dict[int, list[dict[str, np.ndarray]]] = {}

    def push(self, day: np.ndarray, data: dict[str, np.ndarray]) -> None:
        keep = (day >= 0) & (day <= self.last)
        if not keep.any():
            return
        day = day[keep]
        data = {k: v[keep] for k, v in data.items()}
        order = np.argsort(day, kind="stable")
        day = day[order]
        cuts = np.flatnonzero(np.diff(day)) + 1
        starts = np.r_[0, cuts]
        ends = np.r_[cuts, len(day)]
        for s, e in zip(starts, ends):
            sel = order[s:e]
            self.b.setdefault(int(day[s]), []).append({k: v[sel] for k, v in data.items()})

    def pop(self, day: int, fields: list[str]) -> dict[str, np.ndarray]:
        chunks = self.b.pop(day, [])
        if not chunks:
            return {k: np.zeros(0, dtype=np.int64) for k in fields}
        return {k: np.concatenate([c[k] for c in chunks]) for k in fields}


class Model:
    def __init__(
        self, out: Path, day0: int, days: int, scale: str, seed: int, fmt: str, mess: bool
    ):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        if days < 1:
            raise ValueError("days must be >= 1")
        self.S = SCALES[scale]
        self.scale = scale
        self.seed = int(seed)
        self.day0 = day0
        self.days = days
        self.mess = mess
        self.fmt_name = fmt
        self.start = day0 * DAY
        self.w = F.Writer(out, fmt, self.S.part_rows)
        self.f = F.Fmt(day0 - 8 * 366, day0 + days + 70)
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
        self.hour_cdf = np.cumsum(HOUR_W) / HOUR_W.sum()

    # -- helpers -------------------------------------------------------------------
    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *[k + 100_000 for k in key]])

    def day_str(self, i: int) -> str:
        return F.date_str(self.day0 + i)

    def diurnal(self, r, n):
        hour = np.searchsorted(self.hour_cdf, r.random(n), side="right")
        return np.minimum(hour, 23) * HOUR + r.integers(0, HOUR, n)

    def pick_cities(self, r, n):
        tier = r.choice(6, n, p=TIER_P)
        return self.tier_off[tier] + (r.random(n) * self.tier_cnt[tier]).astype(np.int64)

    def mess_n(self, kind: str, i: int, rows: int) -> int:
        if not self.mess or i < 1:
            return 0
        k = list(MESS_KINDS).index(kind)
        if (i + k) % MESS_EVERY:
            return 0
        return min(rows, max(1, round(rows * MESS_RATE)))

    def once_day(self, planned: int) -> int:
        return max(0, min(planned, self.days - 1))

    # -- master data ---------------------------------------------------------------
    def build_skus(self):
        S, r = self.S, self.rng(1)
        n = S.skus
        self_op = r.random(n) < SELF_SKU_SHARE
        pop_cats = [CAT[c] for c in POP_CAT_P]
        self_cats = [CAT[c] for c in SELF_CAT_P]
        cat = np.where(
            self_op,
            np.array(self_cats)[r.choice(len(self_cats), n, p=list(SELF_CAT_P.values()))],
            np.array(pop_cats)[r.choice(len(pop_cats), n, p=list(POP_CAT_P.values()))],
        )
        self_merchant = np.zeros(len(CATS), np.int64)
        for c, m in SELF_MERCHANT.items():
            self_merchant[CAT[c]] = m
        pop_m = N_SELF_MERCHANTS + 1 + (S.pop_merchants * r.random(n) ** 1.5).astype(np.int64)
        merchant = np.where(self_op, self_merchant[cat], pop_m)
        med = np.array([PRICE_MEDIAN_YUAN[c] for c in CATS], float)  # (cats, 2)
        yuan = np.maximum(1, np.round(med[cat, self_op.astype(int)] * np.exp(r.normal(0, 0.55, n))))
        self.sku_price = (yuan * 100 - 10).astype(np.int64)
        w = np.exp(r.normal(0, 1.2, n))
        w[self_op] *= SELF_LINE_SHARE / w[self_op].sum() if self_op.any() else 0
        w[~self_op] *= (1 - SELF_LINE_SHARE) / w[~self_op].sum()
        self.sku_cdf = np.cumsum(w) / w.sum()
        self.sku_self, self.sku_cat, self.sku_merchant = self_op, cat, merchant
        review = np.clip(np.round(10_000 * (1 - r.beta(1.2, 18, n))), 0, 10_000).astype(np.int64)
        review_null = r.random(n) < 0.05
        # titles: brand + product + spec, some with commas / quotes / a line break
        titles = []
        ua, ub, uc, unl = r.random(n), r.random(n), r.random(n), r.random(n)
        for k in range(n):
            brands, products, specs = TITLE_PARTS[CATS[cat[k]]]
            t = (
                brands[int(ua[k] * len(brands))]
                + products[int(ub[k] * len(products))]
                + " "
                + specs[int(uc[k] * len(specs))]
            )
            if unl[k] < 0.01:
                t += NEWLINE_SUFFIX
            titles.append(t)
        return {
            "sku_id": F.ids("S", 7, np.arange(1, n + 1)),
            "merchant_id": F.ids("M", 6, merchant),
            "category": F.enum(cat, CATS),
            "is_self_operated": F.enum(self_op.astype(int), ("false", "true")),
            "positive_review_rate": F.decimal(review, 4, review_null),
            "title": pa.array(titles, pa.string()),
        }

    def sample_skus(self, r, n):
        return _sample(r, self.sku_cdf, n)

    def build_rules(self):
        """Initial rules (with some closed predecessors). Returns the day-1 rows."""
        S, r = self.S, self.rng(2)
        scope, key, rate = [], [], []
        for c in CATS:
            scope.append(SC_CATEGORY), key.append(CAT[c]), rate.append(CATEGORY_RATE_PERMILLE[c])
        pm = np.arange(N_SELF_MERCHANTS + 1, N_SELF_MERCHANTS + 1 + S.pop_merchants)
        pm = pm[r.random(len(pm)) < 0.85]
        m_rate = 30 + 5 * (55 * r.random(len(pm)) ** 2).astype(np.int64)
        m_rate[r.random(len(pm)) < 0.03] = 0
        nsku = len(self.sku_self)
        pop_sku = np.flatnonzero(~self.sku_self & (r.random(nsku) < 0.06))
        self_sku = np.flatnonzero(self.sku_self & (r.random(nsku) < 0.04))
        s_rate = np.r_[
            50 + 5 * (50 * r.random(len(pop_sku)) ** 2).astype(np.int64),
            10 + 5 * r.integers(0, 9, len(self_sku)),
        ]
        s_key = np.r_[pop_sku, self_sku]
        if len(s_rate) > 2:
            s_rate[r.choice(len(s_rate), 2, replace=False)] = 0
        scope = np.r_[np.array(scope), np.full(len(pm), SC_MERCHANT), np.full(len(s_key), SC_SKU)]
        key = np.r_[np.array(key), pm, s_key]
        rate = np.r_[np.array(rate), m_rate, s_rate].astype(np.int64)
        n = len(scope)
        frm = np.where(
            scope == SC_CATEGORY, self.start - 500 * DAY, self.start - _u(r, 30 * DAY, 400 * DAY, n)
        )
        # some keys had an earlier rule, closed exactly when the current one opened
        has_pred = (r.random(n) < 0.3) & (scope != SC_CATEGORY)
        p_from = frm[has_pred] - _u(r, 60 * DAY, 400 * DAY, int(has_pred.sum()))
        p_rate = np.clip(
            rate[has_pred] + r.choice([-20, -10, 10, 20], int(has_pred.sum())), 30, 300
        )
        rows_scope = np.r_[scope[has_pred], scope]
        rows_key = np.r_[key[has_pred], key]
        rows_rate = np.r_[p_rate, rate]
        rows_from = np.r_[p_from, frm]
        rows_to = np.r_[frm[has_pred], np.full(n, -1)]
        order = np.lexsort((rows_key, rows_scope, rows_from))
        rows = {
            "scope": rows_scope[order],
            "key": rows_key[order],
            "rate": rows_rate[order],
            "frm": rows_from[order],
            "to": rows_to[order],
        }
        rows["id"] = self.n_rule + 1 + np.arange(n + int(has_pred.sum()))
        self.n_rule += len(rows["id"])
        openm = rows["to"] < 0
        self.rules = {k: v[openm].copy() for k, v in rows.items()}  # the open rule per key
        return rows

    def rule_rows(self, rows) -> dict[str, pa.Array]:
        sc, key = rows["scope"], rows["key"]
        return {
            "rule_id": F.ids("R", 7, rows["id"]),
            "scope": F.enum(sc, C.RULE_SCOPES),
            "sku_id": F.ids("S", 7, key + 1, sc != SC_SKU),
            "merchant_id": F.ids("M", 6, key, sc != SC_MERCHANT),
            "category": F.enum(np.where(sc == SC_CATEGORY, key, 0), CATS, sc != SC_CATEGORY),
            "rate": F.decimal(rows["rate"], 3),
            "valid_from": self.f.ts(rows["frm"]),
            "valid_to": self.f.ts(np.maximum(rows["to"], 0), rows["to"] < 0),
        }

    def new_promoters(self, r, n, joined, first_index):
        """Attributes for n promoters joining at `joined` (sorted), indices from first_index."""
        plat = r.choice(4, n, p=PLATFORM_P)
        role = np.zeros(n, np.int64)
        gender = np.zeros(n, np.int64)
        for p, probs in ROLE_P.items():
            m = plat == p
            role[m] = r.choice(8, int(m.sum()), p=probs)
        for ro, probs in GENDER_BY_ROLE.items():
            m = role == ro
            gender[m] = r.choice(3, int(m.sum()), p=probs)
        idx = first_index + np.arange(n)
        has_inv = np.where(plat == P_FENXIANG, r.random(n) < 0.88, r.random(n) < 0.25)
        first_gen = max(3, int(0.03 * self.S.promoters))
        has_inv &= idx >= first_gen
        inviter = np.where(has_inv, (r.random(n) * idx).astype(np.int64), -1)
        return {
            "platform": plat,
            "role": role,
            "gender": gender,
            "inviter": inviter,
            "joined": joined,
            "city": self.pick_cities(r, n),
            "status": np.zeros(n, np.int64),
            "updated": joined.copy(),
        }

    def build_promoters(self):
        S, r = self.S, self.rng(3)
        n = S.promoters
        joined = np.sort(self.start - DAY - (3 * 365 * DAY * r.random(n) ** 1.6).astype(np.int64))
        p = self.new_promoters(r, n, joined, 0)
        self.P = p
        self.p_protected = np.zeros(n, bool)
        # history versions: who is suspended / terminated at the start
        st = r.choice(3, n, p=(0.96, 0.025, 0.015))
        hist = np.flatnonzero(st != S_ACTIVE)
        p["status"][hist] = st[hist]
        p["updated"][hist] = joined[hist] + (
            r.random(len(hist)) * (self.start - joined[hist])
        ).astype(np.int64)
        return hist  # these get two rows on day 1: the joining version and the later status

    def promoter_rows(self, idx, override: dict | None = None, P=None) -> dict[str, pa.Array]:
        P = self.P if P is None else P
        get = {k: v[idx] for k, v in P.items()}
        if override:
            get.update(override)
        inv = get["inviter"]
        return {
            "promoter_id": F.ids("P", 7, idx + 1),
            "platform": F.enum(get["platform"], C.PLATFORMS),
            "role": F.enum(get["role"], C.ROLES),
            "inviter_id": F.ids("P", 7, inv + 1, inv < 0),
            "joined_at": self.f.ts(get["joined"]),
            "city": pc.take(self.city_names, pa.array(get["city"])),
            "city_tier": F.ints(self.city_tier[get["city"]]),
            "gender": F.enum(get["gender"], C.GENDERS),
            "status": F.enum(get["status"], C.PROMOTER_STATUSES),
            "updated_at": self.f.ts(get["updated"]),
        }

    def build_groups(self):
        r = self.rng(4)
        P = self.P
        n_p = len(P["joined"])
        cnt = r.choice(3, n_p, p=(0.08, 0.85, 0.07))
        owner = np.repeat(np.arange(n_p), cnt)
        n = len(owner)
        room = self.start - P["joined"][owner]
        created = P["joined"][owner] + (r.random(n) * np.minimum(room, 30 * DAY)).astype(np.int64)
        order = np.argsort(created, kind="stable")
        owner, created = owner[order], created[order]
        members = np.clip(np.round(np.exp(r.normal(np.log(170), 0.55, n))), 50, 500).astype(
            np.int64
        )
        dissolved = np.full(n, -1, np.int64)
        dm = r.random(n) < 0.04
        dissolved[dm] = created[dm] + (r.random(int(dm.sum())) * (self.start - created[dm])).astype(
            np.int64
        )
        self.G = {
            "owner": owner,
            "created": created,
            "members": members,
            "dissolved": dissolved,
            "weight": self.group_weights(r, members),
        }
        self.G["weight"][dm] = 0
        self.g_protected = np.zeros(n, bool)
        # stars: a handful of very active fenxiang groups (tier T2/T3 promoters every month)
        ok = np.flatnonzero(
            (~dm) & (P["platform"][owner] == P_FENXIANG) & (P["status"][owner] == S_ACTIVE)
        )
        base = np.array([0.09, 0.055, 0.035, 0.025, 0.02]) * min(1.0, 250 / n)
        n_star = min(len(ok), max(5, n // 400))
        stars = r.choice(ok, n_star, replace=False)
        _, first = np.unique(owner[stars], return_index=True)  # one star group per promoter
        stars = stars[np.sort(first)]
        shares = np.r_[base, np.full(max(0, len(stars) - 5), base[-1])][: len(stars)]
        rest = self.G["weight"].sum()
        self.G["weight"][stars] = shares / (1 - shares.sum()) * rest
        self.g_protected[stars] = True
        self.p_protected[owner[stars]] = True

    def group_weights(self, r, members):
        n = len(members)
        w = np.exp(np.clip(r.normal(0, 1.6, n), -4, 4)) * np.sqrt(members / 170)
        w[r.random(n) < 0.35] = 0  # dead groups: no clicks, no orders
        return w

    def group_rows(self, idx, day) -> dict[str, pa.Array]:
        G = self.G
        d = G["dissolved"][idx]
        return {
            "group_id": F.ids("G", 7, idx + 1),
            "owner_id": F.ids("P", 7, G["owner"][idx] + 1),
            "created_at": self.f.ts(G["created"][idx]),
            "member_count": F.ints(G["members"][idx]),
            "dissolved_at": self.f.ts(np.maximum(d, 0), d < 0),
            "snapshot_date": self.f.date(np.full(len(idx), self.day0 + day)),
        }

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
        private = r.random(n) < 0.1
        owner = self.G["owner"][gl]
        return self.lazy(
            n,
            lambda a, b: {
                "link_id": F.ids("L", 9, first_id + np.arange(a, b)),
                "promoter_id": F.ids("P", 7, owner[a:b] + 1),
                "group_id": F.ids("G", 7, gl[a:b] + 1, private[a:b]),
                "sku_id": F.ids("S", 7, sku[a:b] + 1),
                "created_at": self.f.ts(created[a:b]),
            },
        )

    def lazy(self, n, fmt):
        """Row chunks of at most part_rows rows, formatted only when written."""
        step = self.S.part_rows
        return [functools.partial(fmt, a, min(n, a + step)) for a in range(0, n, step)] or [
            fmt(0, 0)
        ]

    def build_links(self):
        r = self.rng(5)
        G = self.G
        n = len(G["owner"])
        self.l_sku = np.zeros(0, np.int32)
        self.n_links = 0
        self.g_init_start = np.zeros(n, np.int64)
        self.g_init_cnt = np.zeros(n, np.int64)
        self.g_last_start = np.zeros(n, np.int64)
        self.g_last_cnt = np.zeros(n, np.int64)
        mean_w = G["weight"][G["weight"] > 0].mean()
        lam = np.where(G["weight"] > 0, 2 + 4 * np.minimum(G["weight"] / mean_w, 5), 1.5)
        counts = np.minimum(1 + r.poisson(lam), 40)
        end = np.where(G["dissolved"] >= 0, G["dissolved"], self.start)
        lo = np.maximum(G["created"], end - 90 * DAY)
        return self.add_links(r, np.arange(n), counts, lo, np.maximum(end, lo + 1))

    def buyer_rows(self, r, first, registered) -> dict[str, pa.Array]:
        n = len(registered)
        idx = first + np.arange(n)
        city = self.pick_cities(r, n)
        birth = np.clip(np.round(r.normal(1988, 9, n)), 1950, 2008).astype(np.int64)
        pre = np.array([3, 5, 7, 8, 9])[r.integers(0, 5, n)]
        suffix = (idx * 387_420_489 + 123_456_789 + self.seed * 7_654_321) % 1_000_000_000
        phone = 10_000_000_000 + pre * 1_000_000_000 + suffix
        return {
            "buyer_id": F.ids("B", 8, idx + 1),
            "gender": F.enum(r.choice(3, n, p=BUYER_GENDER_P), C.GENDERS),
            "birth_year": F.ints(birth, r.random(n) < 0.03),
            "city": pc.take(self.city_names, pa.array(city)),
            "city_tier": F.ints(self.city_tier[city]),
            "registered_at": self.f.ts(registered),
            "phone": F.ints(phone),
        }

    # -- daily -----------------------------------------------------------------------
    def refresh_group_cdf(self):
        G = self.G
        w = G["weight"] * (G["dissolved"] < 0) * (self.g_init_cnt > 0)
        self.g_total = w.sum()
        self.g_cdf = np.cumsum(w)

    def pick_groups(self, r, n):
        return _sample(r, self.g_cdf / self.g_total, n)

    def pick_links(self, r, g):
        n = len(g)
        recent = (self.g_last_cnt[g] > 0) & (r.random(n) < 0.6)
        start = np.where(recent, self.g_last_start[g], self.g_init_start[g])
        cnt = np.where(recent, self.g_last_cnt[g], self.g_init_cnt[g])
        return start + (r.random(n) * cnt).astype(np.int64)

    def pick_buyers(self, r, n):
        u = r.random(n)
        u = np.where(r.random(n) < 0.5, u, u**2)
        return (u * self.n_buyers).astype(np.int64)

    def journeys(self, i):
        """Buyer journeys whose first moment falls on day i: clicks and (maybe) an order."""
        r = self.rng(30, i)
        wd = (self.day0 + i + 3) % 7  # 0 = Monday
        n = round(
            self.S.lines_per_day / 1.3 * (1.1 if wd >= 5 else 0.96) * self.g_total / self.g_total0
        )
        n = int(r.poisson(n)) if n < 10_000 else n
        day_s = (self.day0 + i) * DAY
        t0 = day_s + self.diurnal(r, n)
        kind = r.choice(4, n, p=JOURNEY_P)
        buyer = self.pick_buyers(r, n)
        tlink = self.pick_links(r, self.pick_groups(r, n))
        gap = np.where(r.random(n) < 0.7, _u(r, 600, 3 * DAY, n), _u(r, 3 * DAY, 20 * DAY, n))
        t_target = t0 + np.where(kind == 1, gap, 0)
        rep = (kind <= 1) & (r.random(n) < 0.35)
        t_rep = t_target + _u(r, 60, HOUR, n)
        t_last = np.where(rep, t_rep, t_target)
        delay = np.where(
            r.random(n) < 0.8, 30 + r.exponential(1500, n).astype(np.int64), _u(r, HOUR, 2 * DAY, n)
        )
        t_order = np.select(
            [kind <= 1, kind == 2], [t_last + delay, t0 + _u(r, 15 * DAY + HOUR, 24 * DAY, n)], t0
        )
        second = (kind == 1) & (r.random(n) < 0.4)
        post = (kind <= 2) & (r.random(n) < 0.25)
        nb = round(n * BROWSE_PER_JOURNEY)
        parts = [  # (mask, time, link, buyer, is_target)
            (kind <= 2, np.where(kind == 1, t_target, t0), tlink, buyer, 1),
            (rep, t_rep, tlink, buyer, 1),
            (kind == 1, t0, self.pick_links(r, self.pick_groups(r, n)), buyer, 0),
            (
                second,
                t0 + (r.random(n) * gap).astype(np.int64),
                self.pick_links(r, self.pick_groups(r, n)),
                buyer,
                0,
            ),
            (
                post,
                t_order + _u(r, 600, 5 * DAY, n),
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
        hint = np.where((kind <= 1) & (r.random(n) < 0.65), self.l_sku[tlink], -1)
        self.orders_q.push(t_order // DAY - self.day0, {"t": t_order, "buyer": buyer, "hint": hint})

    def emit_clicks(self, i):
        c = self.clicks_q.pop(i, ["t", "link", "buyer", "target"])
        o = np.lexsort((c["buyer"], c["t"]))
        c = {k: v[o] for k, v in c.items()}
        n = len(c["t"])
        ids = self.n_click + 1 + np.arange(n)
        self.n_click += n
        data = {
            "click_id": F.ids("C", 10, ids),
            "link_id": F.ids("L", 9, c["link"] + 1),
            "buyer_id": F.ids("B", 8, c["buyer"] + 1),
            "clicked_at": self.f.ts(c["t"]),
        }
        r = self.rng(40, i)
        k = self.mess_n("unknown_link", i, n)
        tg = np.flatnonzero(c["target"] == 1)
        if k and len(tg):
            rows = np.sort(r.choice(tg, min(k, len(tg)), replace=False))
            data["link_id"] = _set(data["link_id"], rows, [UNKNOWN_LINK] * len(rows))
            self.mess_counts["unknown_link"] += len(rows)
        k = self.mess_n("bad_timestamp", i, n)
        if k:
            data = self.inject(r, data, n, k, "clicked_at", "2026-13-45 25:61", "bad_timestamp")
        raw = []
        k = self.mess_n("wrong_field_count", i, n) if self.fmt_name == "csv" else 0
        if k:
            m = len(data["click_id"])
            for pos in np.sort(r.choice(m, k, replace=False)).tolist():
                vals = [data[col][pos].as_py() or "" for col in C.EXPORTS["clicks"].column_names]
                raw.append((pos + 1, ",".join(vals) + ",web"))
            self.mess_counts["wrong_field_count"] += k
        self.write("clicks", i, data, raw)

    def inject(self, r, data, n, k, col, bad, kind, rows=None):
        """Insert k extra rows, each a copy of a random row with `col` set to `bad`."""
        if n == 0:
            return data
        src = np.sort(rows if rows is not None else r.choice(n, min(k, n), replace=False))
        take = pa.array(np.insert(np.arange(n), src + 1, src))
        out = {c: pc.take(v, take) for c, v in data.items()}
        pos = src + 1 + np.arange(len(src))
        if callable(bad):
            vals = [bad(out[col][int(p)].as_py()) for p in pos]
        else:
            vals = [bad] * len(pos)
        out[col] = _set(out[col], pos, vals)
        self.mess_counts[kind] += len(src)
        return out

    def emit_orders(self, i):
        o = self.orders_q.pop(i, ["t", "buyer", "hint"])
        srt = np.lexsort((o["buyer"], o["t"]))
        t, buyer, hint = o["t"][srt], o["buyer"][srt], o["hint"][srt]
        r = self.rng(50, i)
        m = len(t)
        nl = LINES_PER_ORDER[
            np.searchsorted(np.cumsum(LINES_PER_ORDER_P), r.random(m) * 0.999999, side="right")
        ]
        split = (nl >= 2) & (r.random(m) < 0.25)
        per = np.where(split, 3, 1)
        base = self.n_order + 1 + np.r_[0, np.cumsum(per)[:-1]]
        self.n_order += int(per.sum())
        first_part = 1 + (r.random(m) * (nl - 1)).astype(np.int64)
        # leaf orders
        src = np.repeat(np.arange(m), np.where(split, 2, 1))
        k = np.arange(len(src)) - np.repeat(
            np.r_[0, np.cumsum(np.where(split, 2, 1))[:-1]], np.where(split, 2, 1)
        )
        leaf_num = base[src] + np.where(split[src], 1 + k, 0)
        leaf_parent = np.where(split[src], base[src], -1)
        leaf_nl = np.where(
            split[src], np.where(k == 0, first_part[src], nl[src] - first_part[src]), nl[src]
        )
        nleaf = len(src)
        # lines
        lsrc = np.repeat(np.arange(nleaf), leaf_nl)
        L = len(lsrc)
        line_no = np.arange(L) - np.repeat(np.r_[0, np.cumsum(leaf_nl)[:-1]], leaf_nl) + 1
        first_line = (line_no == 1) & (k[lsrc] == 0)
        h = hint[src[lsrc]]
        sku = np.where(first_line & (h >= 0), h, self.sample_skus(r, L))
        price = self.sku_price[sku]
        cheap = price < 3000
        qty = np.where(
            cheap,
            r.choice([1, 2, 3, 5], L, p=[0.6, 0.25, 0.1, 0.05]),
            r.choice([1, 2], L, p=[0.92, 0.08]),
        )
        gross = qty * price
        has_coupon = r.random(L) < 0.25
        coupon = np.where(has_coupon, (gross * r.uniform(0.03, 0.3, L)).astype(np.int64), 0)
        paid = gross - coupon
        leaf_gross = np.bincount(lsrc, weights=paid, minlength=nleaf)
        ship_fee = np.where((leaf_gross < 4900) & (r.random(nleaf) < 0.8), 600, 0)
        shipping = np.where(line_no == 1, ship_fee[lsrc], 0)
        lt = t[src[lsrc]]
        data = {
            "order_id": F.ids("O", 10, leaf_num[lsrc]),
            "line_no": F.ints(line_no),
            "parent_order_id": F.ids("O", 10, leaf_parent[lsrc], leaf_parent[lsrc] < 0),
            "buyer_id": F.ids("B", 8, buyer[src[lsrc]] + 1),
            "sku_id": F.ids("S", 7, sku + 1),
            "quantity": F.ints(qty),
            "unit_price": F.money(price),
            "paid_amount": F.money(paid),
            "coupon_amount": F.money(coupon),
            "shipping_amount": F.money(shipping, line_no != 1),
            "ordered_at": self.f.ts(lt),
        }
        # mess
        rm = self.rng(51, i)
        kk = self.mess_n("unknown_sku", i, L)
        if kk:
            rows = np.sort(rm.choice(L, kk, replace=False))
            data["sku_id"] = _set(data["sku_id"], rows, [UNKNOWN_SKU] * kk)
            self.mess_counts["unknown_sku"] += kk
        n = L
        for kind, col, bad in (
            ("negative_paid_amount", "paid_amount", lambda v: "-" + v),
            ("money_3_decimals", "unit_price", lambda v: v + "5"),
            ("missing_required", "buyer_id", None),
        ):
            kk = self.mess_n(kind, i, L)
            if kk:
                data = self.inject(rm, data, n, kk, col, bad, kind)
                n = len(data["order_id"])
        files = self.write("orders", i, data)
        if self.mess and i == self.once_day(3) and self.days > 5:
            self.resend = files[0]
        if self.mess and i == self.once_day(5) and getattr(self, "resend", None) is not None:
            self.w.copy_file(
                self.resend, "orders", self.day_str(i), "resend-0000" + self.resend.suffix
            )
            self.mess_counts["duplicate_file"] += 1
        self.order_events(r, leaf_num, lsrc, line_no, lt, paid, nleaf)

    def order_events(self, r, leaf_num, lsrc, line_no, lt, paid, nleaf):
        L = len(lsrc)
        onum = leaf_num[lsrc]
        leaf_t = np.zeros(nleaf, np.int64)
        leaf_t[lsrc] = lt
        cancel = r.random(nleaf) < CANCEL_P
        stuck = ~cancel & (r.random(nleaf) < STUCK_P)
        t_cancel = leaf_t + np.minimum(
            60 + r.exponential(3 * HOUR, nleaf).astype(np.int64), 2 * DAY
        )
        t_done = leaf_t + _u(r, 2 * DAY, 10 * DAY, nleaf)
        lc, ls = cancel[lsrc], stuck[lsrc]
        done = ~lc & ~ls
        refund = done & (r.random(L) < REFUND_P)
        rtype = r.choice(
            4, L, p=[0.40, 0.35, 0.15, 0.10]
        )  # partial, full, full w/o amount, two partials
        rtime = r.choice(3, L, p=[0.15, 0.60, 0.25])  # before completion, within 7 d, 20-60 d later
        comp = t_done[lsrc]
        t_ref = np.select(
            [rtime == 0, rtime == 1],
            [
                lt + HOUR + (r.random(L) * np.maximum(comp - lt - 2 * HOUR, 1)).astype(np.int64),
                comp + _u(r, HOUR, 7 * DAY, L),
            ],
            comp + _u(r, 20 * DAY, 60 * DAY, L),
        )
        partial_amt = np.maximum(1, (paid * r.uniform(0.1, 0.9, L)).astype(np.int64))
        a1 = np.select(
            [rtype == 0, rtype == 1, rtype == 2],
            [partial_amt, paid, -1],
            np.maximum(1, (paid * r.uniform(0.2, 0.5, L)).astype(np.int64)),
        )
        a1 = np.where((rtype == 0) & (paid <= 1), paid, a1)
        two = refund & (rtype == 3)
        a2 = np.maximum(0, np.minimum(paid - a1, (paid * r.uniform(0.1, 0.4, L)).astype(np.int64)))
        t2 = t_ref + _u(r, DAY, 10 * DAY, L)
        parts = [  # (mask, t, event, amount)
            (np.ones(L, bool), lt, E_PAID, np.full(L, -1)),
            (lc, t_cancel[lsrc], E_CANCELLED, np.full(L, -1)),
            (done, comp, E_COMPLETED, np.full(L, -1)),
            (refund, t_ref, E_REFUNDED, a1),
            (two, t2, E_REFUNDED, a2),
        ]
        ev_t = np.concatenate([p[1][p[0]] for p in parts])
        self.events_q.push(
            ev_t // DAY - self.day0,
            {
                "t": ev_t,
                "order": np.concatenate([onum[p[0]] for p in parts]),
                "line": np.concatenate([line_no[p[0]] for p in parts]),
                "event": np.concatenate([np.full(int(p[0].sum()), p[2]) for p in parts]),
                "amount": np.concatenate([p[3][p[0]] for p in parts]),
                "has_id": r.random(len(ev_t)) < EVENT_ID_P,
            },
        )

    def emit_events(self, i):
        e = self.events_q.pop(i, ["t", "order", "line", "event", "amount", "has_id"])
        o = np.lexsort((e["event"], e["line"], e["order"], e["t"]))
        e = {k: v[o] for k, v in e.items()}
        n = len(e["t"])
        ids = self.n_event + 1 + np.arange(n)
        self.n_event += n
        data = {
            "order_id": F.ids("O", 10, e["order"]),
            "line_no": F.ints(e["line"]),
            "event": F.enum(e["event"], C.ORDER_EVENTS),
            "event_at": self.f.ts(e["t"]),
            "amount": F.money(np.maximum(e["amount"], 0), e["amount"] < 0),
            "event_id": F.ids("E", 11, ids, ~e["has_id"].astype(bool)),
        }
        k = self.mess_n("unknown_event", i, n)
        if k:
            data = self.inject(self.rng(60, i), data, n, k, "event", "shipped", "unknown_event")
        self.write("order_events", i, data)

    def write(self, export, i, data, raw=(), encoding="utf-8"):
        cols = C.EXPORTS[export].column_names
        return self.w.write(export, self.day_str(i), cols, data, list(raw), encoding)

    # -- master changes per day ------------------------------------------------------
    def master_day(self, i, r):
        """Apply day i's master changes; returns rows to deliver (promoters, groups, links,
        buyers, commission_rules) as lists of column dicts."""
        S, P, G = self.S, self.P, self.G
        day_s = (self.day0 + i) * DAY
        out = {k: [] for k in ("promoters", "groups", "links", "buyers", "commission_rules")}
        # status changes of promoters who joined before today
        n_p = len(P["joined"])
        st = P["status"]
        u = r.random(n_p)
        new_st = st.copy()
        new_st[(st == S_ACTIVE) & (u < 0.0004)] = S_SUSPENDED
        new_st[(st == S_ACTIVE) & (u >= 0.0004) & (u < 0.0006)] = S_TERMINATED
        new_st[(st == S_SUSPENDED) & (u < 0.01)] = S_ACTIVE
        new_st[(st == S_SUSPENDED) & (u >= 0.01) & (u < 0.015)] = S_TERMINATED
        new_st[self.p_protected] = st[self.p_protected]
        chg = np.flatnonzero(new_st != st)
        P["status"][chg] = new_st[chg]
        P["updated"][chg] = day_s + _u(r, 0, DAY, len(chg))
        # mess: promoter versions with inviter problems
        for kind, day in (("inviter_loop", 10), ("self_invited", 12)):
            if self.mess and i == self.once_day(day):
                cand = np.flatnonzero(
                    (P["inviter"] >= 0)
                    & ~self.p_protected
                    & ~self.p_protected[np.maximum(P["inviter"], 0)]
                )
                b = cand[len(cand) // 2] if kind == "inviter_loop" else cand[len(cand) // 3]
                a = P["inviter"][b] if kind == "inviter_loop" else b
                P["inviter"][a] = b
                P["updated"][a] = day_s + _u(r, 0, DAY, 1)[0]
                chg = np.r_[chg, a]
                self.mess_counts[kind] += 1
        if len(chg):
            chg = np.sort(chg)
            out["promoters"].append(self.promoter_rows(chg))
        # new promoters
        k = int(r.poisson(max(0.3, S.promoters * 0.0015)))
        if self.mess and i == self.once_day(14):
            k = max(k, 1)  # the promoter with an unknown inviter joins today
        if k:
            joined = np.sort(day_s + _u(r, 0, DAY, k))
            np_ = self.new_promoters(r, k, joined, n_p)
            if self.mess and i == self.once_day(14):
                np_["inviter"][0] = -2  # unknown inviter, rendered below
                self.mess_counts["unknown_inviter"] += 1
            for key in P:
                P[key] = np.r_[P[key], np_[key]]
            self.p_protected = np.r_[self.p_protected, np.zeros(k, bool)]
            new_idx = np.arange(n_p, n_p + k)
            rows = self.promoter_rows(new_idx)
            if (np_["inviter"] == -2).any():
                rows["inviter_id"] = _set(
                    rows["inviter_id"], np.flatnonzero(np_["inviter"] == -2), [UNKNOWN_PROMOTER]
                )
                P["inviter"][P["inviter"] == -2] = -1
            out["promoters"].append(rows)
        else:
            new_idx = np.zeros(0, np.int64)
        # groups: new (for new promoters, and second groups), dissolutions, member changes
        n_g = len(G["owner"])
        alive = G["dissolved"] < 0
        u = r.random(n_g)
        dis = np.flatnonzero(alive & (u < 0.0006) & ~self.g_protected)
        G["dissolved"][dis] = np.maximum(G["created"][dis] + 1, day_s + _u(r, 0, DAY, len(dis)))
        G["weight"][dis] = 0
        mem = np.flatnonzero(alive & (u >= 0.0006) & (u < 0.05))
        G["members"][mem] = np.clip(
            G["members"][mem] + np.round(r.normal(0, 8, len(mem))).astype(np.int64), 50, 500
        )
        own_new = new_idx[r.random(len(new_idx)) < 0.85]
        act = np.flatnonzero(P["status"][:n_p] == S_ACTIVE)
        own_2nd = np.sort(r.choice(act, min(len(act), int(r.poisson(n_g * 0.0004))), replace=False))
        owners = np.r_[own_new, own_2nd]
        lo = np.maximum(P["joined"][owners], day_s)
        created = lo + (r.random(len(owners)) * (day_s + DAY - lo)).astype(np.int64)
        created = np.minimum(created, day_s + DAY - 2)
        o = np.argsort(created, kind="stable")
        owners, created = owners[o], created[o]
        kn = len(owners)
        members = np.clip(np.round(np.exp(r.normal(np.log(120), 0.5, kn))), 50, 500).astype(
            np.int64
        )
        for key, val in (
            ("owner", owners),
            ("created", created),
            ("members", members),
            ("dissolved", np.full(kn, -1)),
            ("weight", self.group_weights(r, members)),
        ):
            G[key] = np.r_[G[key], val]
        for name in ("g_protected",):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(kn, bool)])
        for name in ("g_init_start", "g_init_cnt", "g_last_start", "g_last_cnt"):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(kn, np.int64)])
        new_g = np.arange(n_g, n_g + kn)
        snap = np.unique(np.r_[dis, mem, new_g])
        if i > 0:
            out["groups"].append(self.group_rows(snap, i))
        # links: active groups share new links; new groups get their first ones
        grp = np.r_[np.arange(n_g), new_g]
        lam = np.r_[
            np.where((G["weight"][:n_g] > 0) & alive, 0.3, 0.02) * (G["dissolved"][:n_g] < 0),
            np.full(kn, 0.0),
        ]
        cnt = r.poisson(lam) + np.r_[np.zeros(n_g, np.int64), 1 + r.poisson(2, kn)]
        lo = np.r_[np.full(n_g, day_s), created + 1]
        hi = np.r_[
            np.where(
                G["dissolved"][:n_g] >= 0, np.maximum(G["dissolved"][:n_g], day_s + 1), day_s + DAY
            ),
            np.full(kn, day_s + DAY),
        ]
        out["links"] += self.add_links(r, grp, cnt, lo, hi)
        # buyers
        kb = int(r.poisson(S.buyers * 0.0015))
        reg = np.sort(day_s + _u(r, 0, DAY, kb))
        out["buyers"].append(self.buyer_rows(r, self.n_buyers, reg))
        self.n_buyers += kb
        # commission rule changes
        if i > 0:  # day 1 delivers the rules in force; changes start the day after
            out["commission_rules"].append(self.rule_changes(r, i, day_s))
        return out

    def rule_changes(self, r, i, day_s):
        R = self.rules
        n = len(R["id"])
        u = r.random(n)
        chg = np.flatnonzero(np.where(R["scope"] == SC_CATEGORY, u < 0.003, u < 0.008))
        t = np.where(r.random(len(chg)) < 0.5, day_s, day_s + _u(r, 0, DAY, len(chg)))
        old = {k: v[chg].copy() for k, v in R.items()}
        old["to"] = t
        cat = old["scope"] == SC_CATEGORY
        step = r.choice([-20, -10, -5, 5, 10, 20], len(chg))
        new_rate = np.where(
            cat,
            np.clip(old["rate"] + np.sign(step) * 5, 0, 20),
            np.clip(old["rate"] + step, 30, 300),
        )
        new_rate[~cat & (r.random(len(chg)) < 0.03)] = 0
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
        k = int(r.poisson(len(self.sku_self) * 0.0005))
        cand = r.choice(len(self.sku_self), k) if k else np.zeros(0, np.int64)
        cand = np.array(
            sorted({int(c) for c in cand if not self.sku_self[c] and int(c) not in have}), np.int64
        )
        add = {
            "scope": np.full(len(cand), SC_SKU),
            "key": cand,
            "rate": 50 + 5 * r.integers(0, 30, len(cand)),
            "frm": day_s + _u(r, 0, DAY, len(cand)),
            "to": np.full(len(cand), -1),
            "id": self.n_rule + 1 + np.arange(len(cand)),
        }
        self.n_rule += len(cand)
        for key in R:
            R[key] = np.r_[R[key], add[key]]
        rows = {key: np.r_[old[key], new[key], add[key]] for key in R}
        data = self.rule_rows(rows)
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
            xr = {key: np.array([e[key] for e in extra], np.int64) for key in R}
            xd = self.rule_rows(xr)
            data = {c: pa.concat_arrays([data[c], xd[c]]) for c in data}
            for e in extra:
                self.mess_counts[e["bad"]] += 1
        return data

    # -- run -----------------------------------------------------------------------
    def run(self) -> str:
        skus = self.build_skus()
        rules0 = self.rule_rows(self.build_rules())
        hist = self.build_promoters()
        self.build_groups()
        links0 = self.build_links()
        self.n_buyers = self.S.buyers
        reg = np.sort(
            self.start
            - 1
            - (5 * 365 * DAY * self.rng(6).random(self.n_buyers) ** 1.3).astype(np.int64)
        )
        buyers0 = self.lazy(
            self.n_buyers,
            lambda a, b: self.buyer_rows(self.rng(6, 1 + a // self.S.part_rows), a, reg[a:b]),
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
                n_p = len(self.P["joined"])
                P0 = {k: v.copy() for k, v in self.P.items()}
                hist_rows = self.promoter_rows(
                    hist, {"status": np.zeros(len(hist), np.int64), "updated": P0["joined"][hist]}
                )
            m = self.master_day(i, r)
            if i == 0:
                m["promoters"] = (
                    [hist_rows]
                    + self.lazy(n_p, lambda a, b, P0=P0: self.promoter_rows(np.arange(a, b), P=P0))
                    + m["promoters"]
                )
                n_g = len(self.G["owner"])
                m["groups"] = self.lazy(n_g, lambda a, b: self.group_rows(np.arange(a, b), 0))
                m["links"] = links0 + m["links"]
                m["buyers"] = buyers0 + m["buyers"]
                m["commission_rules"].insert(0, rules0)
                enc = "gb18030" if self.mess and self.fmt_name == "csv" else "utf-8"
                if enc != "utf-8":
                    self.mess_counts["gb18030_file"] += 1
                self.write("skus", 0, skus, encoding=enc)
            else:
                self.write("skus", i, _concat([], C.EXPORTS["skus"].column_names))
            for export in ("promoters", "groups", "links", "buyers", "commission_rules"):
                cols = C.EXPORTS[export].column_names
                if i == 0:
                    self.write(export, i, m[export])
                    continue
                data = _concat(m[export], cols)
                if export == "buyers":
                    n = len(data["buyer_id"])
                    k = self.mess_n("city_tier_out_of_range", i, n)
                    if k:
                        data = self.inject(
                            self.rng(70, i), data, n, k, "city_tier", "7", "city_tier_out_of_range"
                        )
                self.write(export, i, data)
            del m
            self.emit_clicks(i)
            self.emit_orders(i)
            self.emit_events(i)
        return self.summary()

    def summary(self) -> str:
        first, last = self.day_str(0), self.day_str(self.days - 1)
        lines = [
            (
                f"generated scale={self.scale} seed={self.seed} format={self.fmt_name} "
                f"mess={'on' if self.mess else 'off'}: {self.days} daily deliveries {first}..{last}"
            ),
            f"  {self.w.files} files, {self.w.bytes / 1e6:.1f} MB under {self.w.out}",
        ]
        for e in C.EXPORT_NAMES:
            lines.append(f"  {e:<17}{self.w.rows.get(e, 0):>12,} rows")
        if self.mess:
            lines.append(
                "  mess: " + ", ".join(f"{k}={v}" for k, v in self.mess_counts.items() if v)
            )
        return "\n".join(lines)


def _sample(r, cdf: np.ndarray, n: int) -> np.ndarray:
    """n draws from the distribution with cumulative probabilities `cdf` (last = 1).
    Queries are sorted first (cache-friendly search in big tables), then shuffled."""
    u = np.sort(r.random(n))
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    return idx[r.permutation(n)]


def _set(arr: pa.Array, rows, values) -> pa.Array:
    mask = np.zeros(len(arr), bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    order = np.argsort(np.asarray(rows), kind="stable")
    vals = pa.array([values[j] for j in order], pa.string())
    return pc.replace_with_mask(arr, pa.array(mask), vals)


def _concat(chunks: list, columns: list[str]) -> dict[str, pa.Array]:
    chunks = [c() if callable(c) else c for c in chunks]
    if not chunks:
        return {c: pa.array([], pa.string()) for c in columns}
    return {c: pa.concat_arrays([pa.array(ch[c], pa.string()) for ch in chunks]) for c in columns}
