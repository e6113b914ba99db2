"""reports/<month>/index.html: the month's published result with every attempt listed."""

from __future__ import annotations

import json
from pathlib import Path

from markupsafe import Markup

from supernova.report.messages import scrub
from supernova.report.render import CSS, ENV


def _attempts(out_dir: Path) -> list[dict]:
    """Every attempt's state in a month's report folder, oldest first."""
    states = []
    for p in out_dir.glob("*.json"):
        try:
            st = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(st, dict) and st.get("attempt_id"):
            states.append(st)
    return sorted(
        states,
        key=lambda st: (str(st.get("finished_at") or st.get("started_at") or ""), st["attempt_id"]),
    )


def _listing_rows(attempts: list[dict], shown: str | None) -> list[dict]:
    rows = []
    for st in reversed(attempts):
        text = (st.get("error") or (st.get("plan") or {}).get("message") or "").strip()
        rows.append(
            {
                "attempt": st["attempt_id"],
                "shown": st["attempt_id"] == shown,
                "status": str(st.get("status")),
                "started": str(st.get("started_at") or ""),
                "finished": str(st.get("finished_at") or ""),
                "why": scrub((text.splitlines() or [""])[0])[:200],
            }
        )
    return rows


def write_month_index(out_dir: Path) -> Path:
    """reports/<month>/index.html, rewritten after every attempt (so it is always the
    folder's newest page): the month's published result, i.e. the page of its newest
    published attempt, with every attempt listed on top; or, while nothing is published,
    a page that says so and lists the attempts. A failed attempt never stands for the month."""
    attempts = _attempts(out_dir)
    month = out_dir.name
    published = [
        st
        for st in attempts
        if st.get("status") == "published" and (out_dir / f"{st['attempt_id']}.html").exists()
    ]
    best = published[-1] if published else None
    ctx = {
        "month": month,
        "css": Markup(CSS),
        "best": best,
        "run_id": str(((best or {}).get("plan") or {}).get("run_id", "-")),
        "rows": _listing_rows(attempts, best["attempt_id"] if best else None),
    }
    listing = ENV.get_template("_attempts.html.j2").render(ctx)
    if best:
        page = (out_dir / f"{best['attempt_id']}.html").read_text(encoding="utf-8")
        head = ENV.get_template("_month_published.html.j2").render(ctx)
        page = page.replace("<main>", "<main>" + head, 1).replace("</main>", listing + "</main>", 1)
    else:
        page = ENV.get_template("month_unpublished.html.j2").render(ctx, listing=Markup(listing))
    path = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
