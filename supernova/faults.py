"""Deterministic fault injection for the reliability tests (tests/test_reliability*.py).

`SUPERNOVA_SETTLE_FAULT=<point>` makes the process SIGKILL itself when it reaches that
point of a settlement run, exactly like a machine dying there. Unset (always, outside
those tests) it does nothing. Points: see FAULT_POINTS.
"""

from __future__ import annotations

import os
import signal

FAULT_POINTS = (
    "after_ingest",  # ingest committed, before planning
    "during_build",  # inside the dbt build, after the first model finished
    "after_build",  # dbt done, before the gate
    "during_validate",  # gate computed, before its result is recorded
    "publish_before_commit",  # inside the publish transaction, rows inserted, not committed
    "publish_after_commit",  # DuckDB committed, Parquet not yet written
    "publish_mid_parquet",  # one Parquet partition swapped in, the others not
)

ENV = "SUPERNOVA_SETTLE_FAULT"


def fault_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def dbt_callbacks() -> list:
    """dbt event callbacks that fire `during_build` once the first model has finished."""
    if os.environ.get(ENV) != "during_build":
        return []

    def on_event(event) -> None:
        if getattr(event, "info", None) is not None and event.info.name == "NodeFinished":
            fault_point("during_build")

    return [on_event]
