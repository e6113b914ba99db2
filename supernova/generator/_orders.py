"""Orders and their events: a day's orders (lines, split orders, prices, coupons, shipping),
their future events (paid, cancelled, completed, refunded) and each day's events as
delivered. A mixin of the Model (supernova/generator/_model.py); every figure comes from
probabilities.KNOBS."""

from __future__ import annotations

import numpy as np

from supernova import contract
from supernova.generator import _fmt as render
from supernova.generator._common import (
    DAY,
    E_CANCELLED,
    E_COMPLETED,
    E_PAID,
    E_REFUNDED,
    HOUR,
    UNKNOWN_SKU,
    set_values,
    uniform_ints,
)
from supernova.generator._mess import RESEND_DAY, RESENT_ORDERS_DAY
from supernova.generator.probabilities import KNOBS

LINES_PER_ORDER = np.array(KNOBS.lines_per_order)
LINES_PER_ORDER_CDF = np.cumsum(np.array(KNOBS.lines_per_order_share))
PARTIAL, FULL, FULL_WITHOUT_AMOUNT, TWO_PARTIALS = range(4)  # KNOBS.refund_kind_share
BEFORE_COMPLETION, SOON_AFTER, LATE = range(3)  # KNOBS.refund_timing_share


class OrdersAndEvents:
    """Mixin of the Model: the orders delivered on a day and the events that follow them."""

    def emit_orders(self, i):
        o = self.orders_q.pop(i, ["t", "buyer", "hint"])
        srt = np.lexsort((o["buyer"], o["t"]))
        t, buyer, hint = o["t"][srt], o["buyer"][srt], o["hint"][srt]
        r = self.rng(50, i)
        m = len(t)
        nl = LINES_PER_ORDER[
            np.searchsorted(LINES_PER_ORDER_CDF, r.random(m) * 0.999999, side="right")
        ]
        split = (nl >= 2) & (r.random(m) < KNOBS.split_order_p)
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
        cheap = price < KNOBS.cheap_below_fen
        qty = np.where(
            cheap,
            r.choice(list(KNOBS.cheap_quantities), L, p=list(KNOBS.cheap_quantity_share)),
            r.choice(list(KNOBS.dear_quantities), L, p=list(KNOBS.dear_quantity_share)),
        )
        gross = qty * price
        has_coupon = r.random(L) < KNOBS.coupon_p
        coupon = np.where(
            has_coupon, (gross * r.uniform(*KNOBS.coupon_fraction, L)).astype(np.int64), 0
        )
        paid = gross - coupon
        leaf_gross = np.bincount(lsrc, weights=paid, minlength=nleaf)
        ship_fee = np.where(
            (leaf_gross < KNOBS.free_shipping_from_fen)
            & (r.random(nleaf) < KNOBS.shipping_fee_charged_p),
            KNOBS.shipping_fee_fen,
            0,
        )
        shipping = np.where(line_no == 1, ship_fee[lsrc], 0)
        lt = t[src[lsrc]]
        data = {
            "order_id": render.ids("O", 10, leaf_num[lsrc]),
            "line_no": render.ints(line_no),
            "parent_order_id": render.ids("O", 10, leaf_parent[lsrc], leaf_parent[lsrc] < 0),
            "buyer_id": render.ids("B", 8, buyer[src[lsrc]] + 1),
            "sku_id": render.ids("S", 7, sku + 1),
            "quantity": render.ints(qty),
            "unit_price": render.money(price),
            "paid_amount": render.money(paid),
            "coupon_amount": render.money(coupon),
            "shipping_amount": render.money(shipping, line_no != 1),
            "ordered_at": self.time_text.ts(lt),
        }
        files = self.write("orders", i, self.with_mess_lines(i, data))
        if self.mess and i == self.once_day(RESENT_ORDERS_DAY) and self.days > RESEND_DAY:
            self.resend = files[0]
        if (
            self.mess
            and i == self.once_day(RESEND_DAY)
            and getattr(self, "resend", None) is not None
        ):
            self.w.copy_file(
                self.resend, "orders", self.day_str(i), "resend-0000" + self.resend.suffix
            )
            self.mess_counts["duplicate_file"] += 1
        self.order_events(r, leaf_num, lsrc, line_no, lt, paid, nleaf)

    def with_mess_lines(self, i, data):
        rm = self.rng(51, i)
        n = len(data["order_id"])
        kk = self.mess_n("unknown_sku", i, n)
        if kk:
            rows = np.sort(rm.choice(n, kk, replace=False))
            data["sku_id"] = set_values(data["sku_id"], rows, [UNKNOWN_SKU] * kk)
            self.mess_counts["unknown_sku"] += kk
        lines = n
        for kind, col, bad in (
            ("negative_paid_amount", "paid_amount", lambda v: "-" + v),
            ("money_3_decimals", "unit_price", lambda v: v + "5"),
            ("missing_required", "buyer_id", None),
        ):
            kk = self.mess_n(kind, i, lines)
            if kk:
                data = self.inject(rm, data, n, kk, col, bad, kind)
                n = len(data["order_id"])
        return data

    def order_events(self, r, leaf_num, lsrc, line_no, lt, paid, nleaf):
        L = len(lsrc)
        onum = leaf_num[lsrc]
        leaf_t = np.zeros(nleaf, np.int64)
        leaf_t[lsrc] = lt
        cancel = r.random(nleaf) < KNOBS.order_cancelled
        stuck = ~cancel & (r.random(nleaf) < KNOBS.order_stuck)
        t_cancel = leaf_t + np.minimum(
            KNOBS.cancel_after_min_seconds
            + r.exponential(KNOBS.cancel_after_mean_hours * HOUR, nleaf).astype(np.int64),
            KNOBS.cancel_after_max_days * DAY,
        )
        done_lo, done_hi = KNOBS.completed_after_days
        t_done = leaf_t + uniform_ints(r, done_lo * DAY, done_hi * DAY, nleaf)
        lc, ls = cancel[lsrc], stuck[lsrc]
        done = ~lc & ~ls
        refund = done & (r.random(L) < KNOBS.line_refunded)
        rtype = r.choice(4, L, p=list(KNOBS.refund_kind_share))
        rtime = r.choice(3, L, p=list(KNOBS.refund_timing_share))
        comp = t_done[lsrc]
        late_lo, late_hi = KNOBS.refund_late_after_days
        t_ref = np.select(
            [rtime == BEFORE_COMPLETION, rtime == SOON_AFTER],
            [
                lt + HOUR + (r.random(L) * np.maximum(comp - lt - 2 * HOUR, 1)).astype(np.int64),
                comp + uniform_ints(r, HOUR, KNOBS.refund_soon_after_days * DAY, L),
            ],
            comp + uniform_ints(r, late_lo * DAY, late_hi * DAY, L),
        )
        partial_amt = np.maximum(
            1, (paid * r.uniform(*KNOBS.partial_refund_fraction, L)).astype(np.int64)
        )
        a1 = np.select(
            [rtype == PARTIAL, rtype == FULL, rtype == FULL_WITHOUT_AMOUNT],
            [partial_amt, paid, -1],
            np.maximum(1, (paid * r.uniform(*KNOBS.first_of_two_fraction, L)).astype(np.int64)),
        )
        a1 = np.where((rtype == PARTIAL) & (paid <= 1), paid, a1)
        two = refund & (rtype == TWO_PARTIALS)
        a2 = np.maximum(
            0,
            np.minimum(
                paid - a1, (paid * r.uniform(*KNOBS.second_of_two_fraction, L)).astype(np.int64)
            ),
        )
        second_lo, second_hi = KNOBS.second_refund_after_days
        t2 = t_ref + uniform_ints(r, second_lo * DAY, second_hi * DAY, L)
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
                "has_id": r.random(len(ev_t)) < KNOBS.event_has_id,
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
            "order_id": render.ids("O", 10, e["order"]),
            "line_no": render.ints(e["line"]),
            "event": render.enum(e["event"], contract.ORDER_EVENTS),
            "event_at": self.time_text.ts(e["t"]),
            "amount": render.money(np.maximum(e["amount"], 0), e["amount"] < 0),
            "event_id": render.ids("E", 11, ids, ~e["has_id"].astype(bool)),
        }
        k = self.mess_n("unknown_event", i, n)
        if k:
            data = self.inject(self.rng(60, i), data, n, k, "event", "shipped", "unknown_event")
        self.write("order_events", i, data)
