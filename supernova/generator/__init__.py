"""Synthetic landing exports for the Supernova programme (see docs/generator.md).

`generate(out, start, days, ...)` writes `<out>/<export>/<YYYY-MM-DD>/part-NNNN.csv` for the
nine exports of /work/shared/spec/exports.md, one delivery folder per day, the same bytes
for the same arguments.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from supernova.generator import _fmt as render
from supernova.generator._model import MESS_KINDS, SCALES, Model

__all__ = ["MESS_KINDS", "SCALES", "generate"]


def generate(
    out,
    start,
    days: int,
    scale: str = "tiny",
    seed: int = 1,
    fmt: str = "csv",
    mess: bool | None = None,
) -> str:
    """Write `days` daily deliveries starting at `start` ("YYYY-MM-DD" or a date) under `out`.

    scale: tiny | demo | today | target. fmt: csv (default) | parquet. mess: None = on for
    scales above tiny, off for tiny. Returns a short human-readable summary.
    """
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    elif isinstance(start, dt.datetime):
        start = start.date()
    if mess is None:
        mess = scale != "tiny"
    model = Model(Path(out), render.day_number(start), int(days), scale, int(seed), fmt, bool(mess))
    return model.run()
