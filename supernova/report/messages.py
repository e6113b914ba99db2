"""Text for people: the advice after an attempt (`next_steps`) and the scrubbing of buyer
ids and phone numbers out of free text (error messages, examples) before it is shown."""

from __future__ import annotations

import re
import shlex

from supernova import serving

_SCRUB = [
    (
        re.compile(r"""(['"]?(?:buyer_id|phone)['"]?\s*[:=]\s*)(['"])[^'"]*\2""", re.IGNORECASE),
        r"\1\2<redacted>\2",
    ),
    (re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), "<redacted>"),
]


def scrub(text) -> str:
    """Remove buyer ids and phone numbers from free text (error messages, examples)."""
    s = str(text)
    for pat, rep in _SCRUB:
        s = pat.sub(rep, s)
    return s


def _settle_next_month_first(err: str) -> str:
    m = re.search(r"next one to settle is (\d{4}-\d{2})", err)
    return f"Settle {m.group(1) if m else 'the next month'} first, then this one."


# What to do after a failed attempt, by what its error says; the first match wins. A failed
# gate or build comes before the month-order refusal: their messages also say "months settle
# in order" (later months wait for this one), which is not the refusal to settle a month out
# of order.
_FAILURE_ADVICE: list[tuple[tuple[str, ...], object]] = [
    (
        ("before its cutoff",),
        "Wait until the cutoff shown above, or run with --preview to see the figures now.",
    ),
    (
        ("quality gate failed",),
        "Nothing was published. Look at the failed checks below (examples included), fix the "
        "data upstream or the cause in the code, then run the same command again.",
    ),
    (
        # before "dbt build failed": a model that ran out of memory is not a data error
        ("out of memory",),
        "Nothing was published. DuckDB ran out of memory: give it more with "
        "SUPERNOVA_DUCKDB_MEMORY_LIMIT (default 6GB; leave the machine ≈ 2 GB beside it), "
        "then run the same command again.",
    ),
    (
        ("dbt build failed",),
        "Nothing was published. Fix the failing model or test named below (e.g. overlapping "
        "commission rules are a merchant-settings error), then run the same command again.",
    ),
    (("months settle in order",), _settle_next_month_first),
    (
        ("inputs have changed",),
        "Late data flows into the next month as clawbacks. To change this closed month itself, "
        "run it again with --reopen --reason TEXT.",
    ),
    (
        ("lock", "another process", "busy"),
        "Another run or program holds the warehouse: wait for it to finish (or close BI tools "
        "that have supernova.duckdb open), then run the same command again.",
    ),
    (
        ("needs a reason", "must be yyyy-mm"),
        "Fix the command line as the message says and run it again.",
    ),
]
_FAILURE_FALLBACK = (
    "Fix the cause above (the full state is in the .json next to this report), "
    "then run the same command again."
)


def _advice_when_not_failed(status: str, request: dict) -> str | None:
    month = request.get("month", "the month")
    if status == "published":
        warehouse = request.get("warehouse") or "<warehouse>"
        return (
            f"Nothing to do. Finance statements: `supernova statements --month {month} "
            f"--warehouse {shlex.quote(str(warehouse))}`; BI tools read the catalog "
            f"{shlex.quote(str(serving.catalog_path(warehouse)))} or the Parquet copies "
            "(docs/bi.md), never the working DuckDB file."
        )
    if status == "unchanged":
        return "Nothing to do: the month is closed and its inputs are unchanged."
    if status == "preview":
        return (
            f"A preview publishes nothing. Settle {month} for real after its cutoff with "
            f"`supernova settle --month {month}`."
        )
    return None


def next_steps(state: dict) -> str:
    """One or two sentences: what a person should do after this attempt."""
    advice = _advice_when_not_failed(state.get("status") or "failed", state.get("request") or {})
    if advice is not None:
        return advice
    err = state.get("error") or ""
    low = err.lower()
    for needles, text in _FAILURE_ADVICE:
        if any(n in low for n in needles):
            return text(err) if callable(text) else text
    return _FAILURE_FALLBACK
