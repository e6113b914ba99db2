"""The run report: what the run did, its totals, every check and its outcome.

Written for every attempt (published, failed, preview, unchanged) next to the outputs:
<warehouse>/reports/<month>/<attempt_id>.md, the same as a self-contained HTML page
(<attempt_id>.html: inline CSS and SVG charts, no script, no external URL) and the raw
state as .json.

Figures come from the published tables (`settlement.*`) for published and unchanged
runs, and from the run's candidate tables (`settlement_build.*`, labelled "not
published") for previews and runs that failed after their build. Group activity (dead
groups, 僵死群) and buyer figures are read from the analytics marts (`marts.group_activity_summary`,
built on `group_status`, and `marts.buyer_demographics_monthly`), so the report and the
marts have one definition of a dead group and one small-cell suppression; when the marts
are not built (or not refreshed to the month's end) the report says so. It never shows
buyer ids or phone numbers: buyer figures are the mart's, suppressed cells stay hidden.

Next to the attempts, `reports/<month>/index.html` is rewritten after every attempt: the
month's published result (or "not published yet") with every attempt listed.

The package, in the order the data flows:

- `data`: reads the figures from the warehouse (`collect`, `run_totals`);
- `reconcile`: the reconciliation from lines to what was paid, and the order-line funnel;
- `charts`: the hand-written SVG charts;
- `render` + `templates/`: the HTML page from Jinja2 templates (autoescaped), CSS in
  templates/report.css; `month_index`: the month's index.html;
- `markdown`: the .md report; `messages`: `next_steps` and `scrub`;
- `writer`: `write_report`, which writes them all for one attempt.
"""

from supernova.report.charts import PALETTE, bar_chart, heatmap, line_chart, stacked_bars
from supernova.report.data import MIN_BUYERS, MONTH_RE, collect, run_totals
from supernova.report.markdown import render_markdown
from supernova.report.messages import next_steps, scrub
from supernova.report.month_index import write_month_index
from supernova.report.reconcile import (
    FUNNEL,
    ZERO,
    earnings_reconciliation,
    funnel_rows,
    reconciliation,
)
from supernova.report.render import BIN_LABELS, CSS, render_html, write_html
from supernova.report.writer import write_report

__all__ = [
    "BIN_LABELS",
    "CSS",
    "FUNNEL",
    "MIN_BUYERS",
    "MONTH_RE",
    "PALETTE",
    "ZERO",
    "bar_chart",
    "collect",
    "earnings_reconciliation",
    "funnel_rows",
    "heatmap",
    "line_chart",
    "next_steps",
    "reconciliation",
    "render_html",
    "render_markdown",
    "run_totals",
    "scrub",
    "stacked_bars",
    "write_html",
    "write_month_index",
    "write_report",
]
