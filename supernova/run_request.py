"""What a settlement run is asked to do: its parameters, checked in words, and the
RunRequest every step starts from.

The parameters come from the monthly_settlement DAG's params, the REST API's `conf` and
`supernova settle`'s flags; the same check runs in the DAG's first task and in the API
server's trigger guard (supernova/trigger_guard.py), so a bad request is refused the same
way wherever it comes in.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from supernova import settings


class RunRefused(RuntimeError):
    """The run may not proceed (closed month, order, cutoff, bad request)."""


# A reopen is expressed by its reason, and so is accepting suspense above the limit: a
# reopen without a reason cannot be asked for.
REQUEST_KEYS = (
    "month",
    "preview",
    "reopen_reason",
    "accept_suspense_reason",
    "landing",
    "warehouse",
    "attempt_id",
)
# set by the DAG's begin task from the Airflow run itself, never by whoever triggers it
INTERNAL_KEYS = ("triggered_by", "scheduled")
MONTH_WORDS = "month must be a calendar month written YYYY-MM, e.g. 2026-10"
REASONS = (
    ("reopen_reason", "why the closed month is reopened"),
    ("accept_suspense_reason", "why suspense above the limit is accepted"),
)
TEXT_KEYS = ("landing", "warehouse", "attempt_id")
ATTEMPT_ID_RE = re.compile(r"^[0-9A-Za-z_.-]+$")


def request_problems(conf: dict, *, month_required: bool = True) -> list[str]:
    """Everything wrong with a run's parameters, in words (empty list: fine)."""
    if not isinstance(conf, dict):
        return ['the run\'s parameters must be a JSON object such as {"month": "2026-10"}']
    return [
        *_unknown_keys(conf),
        *_month_problems(conf.get("month"), month_required),
        *_preview_problems(conf),
        *_reason_problems(conf),
        *_text_problems(conf),
        *_combination_problems(conf),
    ]


def _unknown_keys(conf: dict) -> list[str]:
    problems = []
    for key in conf:
        if key not in REQUEST_KEYS and key not in INTERNAL_KEYS:
            near = difflib.get_close_matches(str(key).lower(), REQUEST_KEYS, n=1)
            problems.append(
                f"unknown parameter {key!r}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f": the parameters are {', '.join(REQUEST_KEYS)}"
            )
    return problems


def _month_problems(month, required: bool) -> list[str]:
    if month is None or month == "":
        return [f"{MONTH_WORDS}; it is empty"] if required else []
    if not isinstance(month, str) or not settings.MONTH_RE.match(month.strip()):
        return [f"{MONTH_WORDS}, not {month!r}"]
    return []


def _preview_problems(conf: dict) -> list[str]:
    if not isinstance(conf.get("preview", False), bool):
        return [f"preview must be true or false, not {conf['preview']!r}"]
    return []


def _text_problems(conf: dict) -> list[str]:
    return [
        f"{key} must be text, not {conf[key]!r}"
        for key in TEXT_KEYS
        if conf.get(key) is not None and not isinstance(conf.get(key), str)
    ]


def _reason_problems(conf: dict) -> list[str]:
    problems = []
    for key, what in REASONS:
        value = conf.get(key, "")
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(f"{key} must be text ({what}), not {value!r}")
        elif value and not value.strip():
            problems.append(f"{key} is blank: write {what}, or leave it empty")
    return problems


def _combination_problems(conf: dict) -> list[str]:
    problems = []
    reopen = conf.get("reopen_reason")
    if conf.get("preview") is True and isinstance(reopen, str) and reopen.strip():
        problems.append(
            "preview and reopen_reason exclude each other: a preview publishes nothing, "
            "so it cannot reopen a month; leave reopen_reason empty or turn preview off"
        )
    attempt = conf.get("attempt_id")
    if isinstance(attempt, str) and attempt.strip() and not ATTEMPT_ID_RE.match(attempt.strip()):
        problems.append(
            f"attempt_id may only hold letters, digits, '.', '_' and '-', not {attempt!r}"
        )
    return problems


@dataclass
class RunRequest:
    month: str
    landing: str
    warehouse: str
    preview: bool = False
    # derived from reopen_reason / accept_suspense_reason (kept for the report and the record)
    reopen: bool = False
    reason: str = ""
    accept_suspense: bool = False
    accept_suspense_reason: str = ""
    triggered_by: str = ""
    scheduled: bool = False  # started by the schedule, not by a person

    def context(self, attempt_id: str) -> dict:
        """The attempt context every step takes (what `begin` returns)."""
        return {"attempt_id": attempt_id, **asdict(self)}

    @classmethod
    def from_params(cls, params: dict) -> RunRequest:
        problems = request_problems(params)
        if problems:
            raise RunRefused("the run's parameters are refused: " + "; ".join(problems))
        reopen_reason = str(params.get("reopen_reason") or "").strip()
        suspense_reason = str(params.get("accept_suspense_reason") or "").strip()
        return cls(
            month=str(params["month"]).strip(),
            landing=str(Path(params.get("landing") or settings.default_landing()).resolve()),
            warehouse=str(Path(params.get("warehouse") or settings.default_warehouse()).resolve()),
            preview=bool(params.get("preview", False)),
            reopen=bool(reopen_reason),
            reason=reopen_reason,
            accept_suspense=bool(suspense_reason),
            accept_suspense_reason=suspense_reason,
            triggered_by=str(params.get("triggered_by") or os_user()),
            scheduled=bool(params.get("scheduled", False)),
        )


def os_user() -> str:
    """Who runs this process, for the run record when no person is named."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name for this uid (a container): say so rather than guess
        return f"uid {os.getuid()}"
