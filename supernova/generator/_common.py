"""What every part of the simulation shares: time units, enum codes, small array helpers and
the day buckets of pending rows.

Time is int64 seconds of Asia/Shanghai wall-clock time since 1970-01-01 ("local seconds");
day index i = 0 is the start date. Enum codes are positions in the contract's tuples.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from supernova import contract
from supernova.generator import _fmt as render

DAY = render.DAY
HOUR = 3600

P_FENXIANG, P_JINGXIAOGE, P_JINGXIAOFU, P_YUNDIAN = range(4)
S_ACTIVE, S_SUSPENDED, S_TERMINATED = range(3)
E_PAID, E_COMPLETED, E_CANCELLED, E_REFUNDED = range(4)
SC_SKU, SC_MERCHANT, SC_CATEGORY = range(3)
assert contract.PLATFORMS == ("fenxiang", "jingxiaoge", "jingxiaofu", "yundian")
assert contract.ORDER_EVENTS == ("paid", "completed", "cancelled", "refunded")
assert contract.RULE_SCOPES == ("sku", "merchant", "category")
assert contract.PROMOTER_STATUSES == ("active", "suspended", "terminated")

CATS = contract.CATEGORIES
CAT = {c: k for k, c in enumerate(CATS)}

UNKNOWN_LINK = "L999999999"
UNKNOWN_SKU = "S9999999"
UNKNOWN_PROMOTER = "P9999999"


def uniform_ints(rng, lo, hi, n):
    """n integers uniform in [lo, hi); lo itself when the range is empty."""
    return rng.integers(int(lo), int(hi), n, endpoint=False) if hi > lo else np.full(n, int(lo))


def sample(rng, cdf: np.ndarray, n: int) -> np.ndarray:
    """n draws from the distribution with cumulative probabilities `cdf` (last = 1).
    Queries are sorted first (cache-friendly search in big tables), then shuffled."""
    u = np.sort(rng.random(n))
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    return idx[rng.permutation(n)]


def set_values(arr: pa.Array, rows, values) -> pa.Array:
    """`arr` with the strings at `rows` replaced by `values` (in the order of `rows`)."""
    mask = np.zeros(len(arr), bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    order = np.argsort(np.asarray(rows), kind="stable")
    vals = pa.array([values[j] for j in order], pa.string())
    return pc.replace_with_mask(arr, pa.array(mask), vals)


def concat(chunks: list, columns: list[str]) -> dict[str, pa.Array]:
    """One table of string columns from row chunks (callables are formatted first)."""
    chunks = [c() if callable(c) else c for c in chunks]
    if not chunks:
        return {c: pa.array([], pa.string()) for c in columns}
    return {c: pa.concat_arrays([pa.array(ch[c], pa.string()) for ch in chunks]) for c in columns}


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
