"""The settlement calendar: months written YYYY-MM, their bounds and cutoff in
Asia/Shanghai, and the configured first month and cutoff day (vars.supernova of
dbt_project.yml)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from supernova import settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def month_bounds(month: str, cutoff_day: int) -> tuple[datetime, datetime, datetime]:
    """(start of M, start of M+1, cutoff of M) as Asia/Shanghai datetimes."""
    y, m = int(month[:4]), int(month[5:7])
    start = datetime(y, m, 1, tzinfo=SHANGHAI)
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    nxt = datetime(ny, nm, 1, tzinfo=SHANGHAI)
    return start, nxt, nxt.replace(day=cutoff_day)


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}"


def settlement_config() -> dict:
    """The settlement configuration (vars.supernova of dbt_project.yml). dbt validates
    all of it at the start of every invocation; Python reads what orchestration needs."""
    import yaml

    with open(settings.DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as f:
        cfg = yaml.safe_load(f)["vars"]["supernova"]
    day = cfg.get("cutoff_day")
    if not isinstance(day, int) or not 1 <= day <= 28:
        raise ValueError(f"settlement config: cutoff_day must be a whole number 1..28, got {day!r}")
    first = cfg.get("first_month")
    if not isinstance(first, str) or not settings.MONTH_RE.match(first):
        raise ValueError(
            "settlement config: first_month (the programme's first month) must be a "
            f'calendar month written YYYY-MM in quotes, e.g. "2026-09", got {first!r}'
        )
    return cfg
