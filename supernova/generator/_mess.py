"""Bad input on purpose ("mess"): the documented kinds, when they fire, and how a bad row is
made (an extra copy of a real row with one field broken, so quarantining loses nothing)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from supernova.generator._common import set_values
from supernova.generator.probabilities import KNOBS

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

# Day indexes of the kinds that happen once (moved to the last day when fewer are made).
INVITER_LOOP_DAY = 10
SELF_INVITED_DAY = 12
UNKNOWN_INVITER_DAY = 14
RESENT_ORDERS_DAY = 3  # day 4's orders file ...
RESEND_DAY = 5  # ... delivered again in day 6's folder


class Mess:
    """Mixin of the Model: how many bad rows of a kind a day gets, and how they are made."""

    def mess_n(self, kind: str, i: int, rows: int) -> int:
        if not self.mess or i < 1:
            return 0
        k = list(MESS_KINDS).index(kind)
        if (i + k) % KNOBS.mess_every_days:
            return 0
        return min(rows, max(1, round(rows * KNOBS.mess_row_rate)))

    def once_day(self, planned: int) -> int:
        return max(0, min(planned, self.days - 1))

    def inject(self, rng, data, n, k, col, bad, kind, rows=None):
        """Insert k extra rows, each a copy of a random row with `col` set to `bad`."""
        if n == 0:
            return data
        src = np.sort(rows if rows is not None else rng.choice(n, min(k, n), replace=False))
        take = pa.array(np.insert(np.arange(n), src + 1, src))
        out = {c: pc.take(v, take) for c, v in data.items()}
        pos = src + 1 + np.arange(len(src))
        if callable(bad):
            vals = [bad(out[col][int(p)].as_py()) for p in pos]
        else:
            vals = [bad] * len(pos)
        out[col] = set_values(out[col], pos, vals)
        self.mess_counts[kind] += len(src)
        return out
