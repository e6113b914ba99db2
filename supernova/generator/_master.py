"""Master data as it stands at the start: SKUs, commission rules, promoters, groups, links
and the formatting of their rows (buyers too). A mixin of the Model (supernova/generator/
_model.py), which holds the state; every figure comes from probabilities.KNOBS."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from supernova import contract
from supernova.generator import _fmt as render
from supernova.generator._common import (
    CAT,
    CATS,
    DAY,
    P_FENXIANG,
    S_ACTIVE,
    SC_CATEGORY,
    SC_MERCHANT,
    SC_SKU,
    sample,
    uniform_ints,
)
from supernova.generator._vocab import NEWLINE_SUFFIX, TITLE_PARTS
from supernova.generator.probabilities import KNOBS

# The self-operated merchants M000001..M000005, one per self-operated category; POP
# merchants are numbered after them.
SELF_MERCHANT = {"appliances": 1, "electronics": 2, "home": 3, "beauty": 4, "mother_baby": 5}
N_SELF_MERCHANTS = 5


class MasterData:
    """Mixin of the Model: builds the master data on day 1 and formats master rows."""

    # -- SKUs --------------------------------------------------------------------------
    def build_skus(self):
        size, r = self.size, self.rng(1)
        n = size.skus
        self_op = r.random(n) < KNOBS.self_operated_sku_share
        pop_share, self_share = KNOBS.pop_category_share, KNOBS.self_operated_category_share
        pop_cats = [CAT[c] for c in pop_share]
        self_cats = [CAT[c] for c in self_share]
        cat = np.where(
            self_op,
            np.array(self_cats)[r.choice(len(self_cats), n, p=list(self_share.values()))],
            np.array(pop_cats)[r.choice(len(pop_cats), n, p=list(pop_share.values()))],
        )
        self_merchant = np.zeros(len(CATS), np.int64)
        for c, m in SELF_MERCHANT.items():
            self_merchant[CAT[c]] = m
        pop_m = (
            N_SELF_MERCHANTS
            + 1
            + (size.pop_merchants * r.random(n) ** KNOBS.pop_merchant_skew).astype(np.int64)
        )
        merchant = np.where(self_op, self_merchant[cat], pop_m)
        med = np.array([KNOBS.price_median_yuan[c] for c in CATS], float)  # (cats, 2)
        yuan = np.maximum(
            1, np.round(med[cat, self_op.astype(int)] * np.exp(r.normal(0, KNOBS.price_sigma, n)))
        )
        self.sku_price = (yuan * 100 - KNOBS.price_below_whole_yuan_fen).astype(np.int64)
        w = np.exp(r.normal(0, KNOBS.sku_popularity_sigma, n))
        line_share = KNOBS.self_operated_line_share
        w[self_op] *= line_share / w[self_op].sum() if self_op.any() else 0
        w[~self_op] *= (1 - line_share) / w[~self_op].sum()
        self.sku_cdf = np.cumsum(w) / w.sum()
        self.sku_self, self.sku_cat, self.sku_merchant = self_op, cat, merchant
        review = np.clip(
            np.round(10_000 * (1 - r.beta(*KNOBS.review_rate_beta, n))), 0, 10_000
        ).astype(np.int64)
        review_null = r.random(n) < KNOBS.review_rate_missing
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
            if unl[k] < KNOBS.title_newline_share:
                t += NEWLINE_SUFFIX
            titles.append(t)
        return {
            "sku_id": render.ids("S", 7, np.arange(1, n + 1)),
            "merchant_id": render.ids("M", 6, merchant),
            "category": render.enum(cat, CATS),
            "is_self_operated": render.enum(self_op.astype(int), ("false", "true")),
            "positive_review_rate": render.decimal(review, 4, review_null),
            "title": pa.array(titles, pa.string()),
        }

    def sample_skus(self, r, n):
        return sample(r, self.sku_cdf, n)

    # -- commission rules --------------------------------------------------------------
    def build_rules(self):
        """Initial rules (with some closed predecessors). Returns the day-1 rows."""
        size, r = self.size, self.rng(2)
        step = KNOBS.rate_step_permille
        scope, key, rate = [], [], []
        for c in CATS:
            scope.append(SC_CATEGORY)
            key.append(CAT[c])
            rate.append(KNOBS.category_rate_permille[c])
        pm = np.arange(N_SELF_MERCHANTS + 1, N_SELF_MERCHANTS + 1 + size.pop_merchants)
        pm = pm[r.random(len(pm)) < KNOBS.merchant_rule_share]
        m_rate = KNOBS.merchant_rate_floor_permille + step * (
            KNOBS.merchant_rate_steps * r.random(len(pm)) ** 2
        ).astype(np.int64)
        m_rate[r.random(len(pm)) < KNOBS.merchant_rate_zero] = 0
        nsku = len(self.sku_self)
        pop_sku = np.flatnonzero(~self.sku_self & (r.random(nsku) < KNOBS.pop_sku_rule_share))
        self_sku = np.flatnonzero(
            self.sku_self & (r.random(nsku) < KNOBS.self_operated_sku_rule_share)
        )
        s_rate = np.r_[
            KNOBS.pop_sku_rate_floor_permille
            + step * (KNOBS.pop_sku_rate_steps * r.random(len(pop_sku)) ** 2).astype(np.int64),
            KNOBS.self_sku_rate_floor_permille
            + step * r.integers(0, KNOBS.self_sku_rate_steps, len(self_sku)),
        ]
        s_key = np.r_[pop_sku, self_sku]
        zero = KNOBS.sku_rules_at_zero
        if len(s_rate) > zero:
            s_rate[r.choice(len(s_rate), zero, replace=False)] = 0
        scope = np.r_[np.array(scope), np.full(len(pm), SC_MERCHANT), np.full(len(s_key), SC_SKU)]
        key = np.r_[np.array(key), pm, s_key]
        rate = np.r_[np.array(rate), m_rate, s_rate].astype(np.int64)
        n = len(scope)
        opened_lo, opened_hi = KNOBS.rule_opened_days_ago
        frm = np.where(
            scope == SC_CATEGORY,
            self.start - KNOBS.category_rule_opened_days_ago * DAY,
            self.start - uniform_ints(r, opened_lo * DAY, opened_hi * DAY, n),
        )
        # some keys had an earlier rule, closed exactly when the current one opened
        has_pred = (r.random(n) < KNOBS.rule_has_predecessor) & (scope != SC_CATEGORY)
        pred_lo, pred_hi = KNOBS.predecessor_days
        p_from = frm[has_pred] - uniform_ints(r, pred_lo * DAY, pred_hi * DAY, int(has_pred.sum()))
        p_rate = np.clip(
            rate[has_pred]
            + r.choice(list(KNOBS.predecessor_rate_change_permille), int(has_pred.sum())),
            *KNOBS.rule_rate_range_permille,
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
            "rule_id": render.ids("R", 7, rows["id"]),
            "scope": render.enum(sc, contract.RULE_SCOPES),
            "sku_id": render.ids("S", 7, key + 1, sc != SC_SKU),
            "merchant_id": render.ids("M", 6, key, sc != SC_MERCHANT),
            "category": render.enum(np.where(sc == SC_CATEGORY, key, 0), CATS, sc != SC_CATEGORY),
            "rate": render.decimal(rows["rate"], 3),
            "valid_from": self.time_text.ts(rows["frm"]),
            "valid_to": self.time_text.ts(np.maximum(rows["to"], 0), rows["to"] < 0),
        }

    # -- promoters ---------------------------------------------------------------------
    def new_promoters(self, r, n, joined, first_index):
        """Attributes for n promoters joining at `joined` (sorted), indices from first_index."""
        plat = r.choice(4, n, p=KNOBS.platform_share)
        role = np.zeros(n, np.int64)
        gender = np.zeros(n, np.int64)
        for p, platform in enumerate(contract.PLATFORMS):
            m = plat == p
            role[m] = r.choice(8, int(m.sum()), p=KNOBS.role_share_by_platform[platform])
        for ro, role_name in enumerate(contract.ROLES):
            m = role == ro
            gender[m] = r.choice(3, int(m.sum()), p=KNOBS.gender_share_by_role[role_name])
        idx = first_index + np.arange(n)
        has_inv = np.where(
            plat == P_FENXIANG,
            r.random(n) < KNOBS.inviter_p_fenxiang,
            r.random(n) < KNOBS.inviter_p_other,
        )
        first_gen = max(3, int(KNOBS.first_generation_share * self.size.promoters))
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
        size, r = self.size, self.rng(3)
        n = size.promoters
        history = KNOBS.promoter_history_years * 365 * DAY
        joined = np.sort(
            self.start - DAY - (history * r.random(n) ** KNOBS.promoter_join_skew).astype(np.int64)
        )
        p = self.new_promoters(r, n, joined, 0)
        self.promoters = p
        self.p_protected = np.zeros(n, bool)
        # history versions: who is suspended / terminated at the start
        st = r.choice(3, n, p=KNOBS.status_share_at_start)
        hist = np.flatnonzero(st != S_ACTIVE)
        p["status"][hist] = st[hist]
        p["updated"][hist] = joined[hist] + (
            r.random(len(hist)) * (self.start - joined[hist])
        ).astype(np.int64)
        return hist  # these get two rows on day 1: the joining version and the later status

    def promoter_rows(self, idx, override: dict | None = None, P=None) -> dict[str, pa.Array]:
        P = self.promoters if P is None else P
        get = {k: v[idx] for k, v in P.items()}
        if override:
            get.update(override)
        inv = get["inviter"]
        return {
            "promoter_id": render.ids("P", 7, idx + 1),
            "platform": render.enum(get["platform"], contract.PLATFORMS),
            "role": render.enum(get["role"], contract.ROLES),
            "inviter_id": render.ids("P", 7, inv + 1, inv < 0),
            "joined_at": self.time_text.ts(get["joined"]),
            "city": pc.take(self.city_names, pa.array(get["city"])),
            "city_tier": render.ints(self.city_tier[get["city"]]),
            "gender": render.enum(get["gender"], contract.GENDERS),
            "status": render.enum(get["status"], contract.PROMOTER_STATUSES),
            "updated_at": self.time_text.ts(get["updated"]),
        }

    # -- buyers ------------------------------------------------------------------------
    def buyer_rows(self, r, first, registered) -> dict[str, pa.Array]:
        n = len(registered)
        idx = first + np.arange(n)
        city = self.pick_cities(r, n)
        birth = np.clip(
            np.round(r.normal(KNOBS.birth_year_mean, KNOBS.birth_year_sigma, n)),
            *KNOBS.birth_year_range,
        ).astype(np.int64)
        pre = np.array([3, 5, 7, 8, 9])[r.integers(0, 5, n)]  # mobile numbers 1[35789]...
        suffix = (idx * 387_420_489 + 123_456_789 + self.seed * 7_654_321) % 1_000_000_000
        phone = 10_000_000_000 + pre * 1_000_000_000 + suffix
        return {
            "buyer_id": render.ids("B", 8, idx + 1),
            "gender": render.enum(r.choice(3, n, p=KNOBS.buyer_gender_share), contract.GENDERS),
            "birth_year": render.ints(birth, r.random(n) < KNOBS.birth_year_missing),
            "city": pc.take(self.city_names, pa.array(city)),
            "city_tier": render.ints(self.city_tier[city]),
            "registered_at": self.time_text.ts(registered),
            "phone": render.ints(phone),
        }

    def lazy(self, n, fmt):
        """Row chunks of at most part_rows rows, formatted only when written."""
        step = self.size.part_rows
        return [functools.partial(fmt, a, min(n, a + step)) for a in range(0, n, step)] or [
            fmt(0, 0)
        ]
