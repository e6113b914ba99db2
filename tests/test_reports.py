"""Reports people read: the HTML settlement report (also in headless Chromium), promoter
statements (CSV safe for Excel, XLSX) and the CLI summary, on generated tiny data.

One module warehouse, settled through the real monthly_settlement DAG (dag.test()):
  1. 2026-09 with a planted bad payout → the gate fails (report: why it failed)
  2. 2026-09 → published
  3. 2026-10 → published (clawbacks of September lines)
  4. 2026-11 before its cutoff → refused (failed before any build)
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
import zipfile
import zlib
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pytest

from supernova import settle as s
from supernova.warehouse import connect, table_exists

DEFAULT_CONF = {
    "preview": False,
    "reopen_reason": "",
    "accept_suspense_reason": "",
    "attempt_id": "",
}
CHROMIUM = Path("/usr/bin/chromium")
CHARTS = [
    "Promoters by gross due",
    "tier mix by platform",
    "status mix by platform",
    "Clawback amounts",
    "GMV by buyer city tier and gender",
    "Orders per existing group per day",
    "Dead-group rate",
    "Top promoters by gross due",
    "Top groups by GMV",
]


def _run(dagbag, **conf) -> tuple[str, dict]:
    dag = dagbag.dags["monthly_settlement"]
    dagrun = dag.test(run_conf={**DEFAULT_CONF, **conf})
    wh = Path(conf["warehouse"])
    runs = sorted(
        (wh / "runs").glob(f"{conf['month']}-*/state.json"), key=lambda p: p.stat().st_mtime
    )
    return str(dagrun.state), s.RunState(wh, runs[-1].parent.name).load()


@pytest.fixture(scope="module")
def wh(settlement_scenario):
    """Reuses the settlement scenario's warehouse (tests/conftest.py): a September run
    failed by a planted one-fen error, September and October published, November refused."""
    sc = settlement_scenario
    return {
        "warehouse": sc["warehouse"],
        "failed": (sc["a_state"], sc["a_run"]),
        "sep": ("success" if sc["b_rc"] == 0 else "failed", sc["b_run"]),
        "oct": (sc["d_state"], sc["d_run"]),
        "refused": (sc["f_state"], sc["f_run"]),
    }


def _html(wh, key) -> str:
    state = wh[key][1]
    return (
        Path(wh["warehouse"])
        / "reports"
        / state["request"]["month"]
        / f"{state['attempt_id']}.html"
    ).read_text()


# ---------------------------------------------------------------- the HTML report


def test_every_run_writes_an_offline_html_report_next_to_the_md(wh):
    assert wh["failed"][1]["status"] == "failed" and wh["sep"][1]["status"] == "published"
    assert wh["oct"][1]["status"] == "published" and wh["refused"][1]["status"] == "failed"
    for key in ("failed", "sep", "oct", "refused"):
        state = wh[key][1]
        folder = Path(wh["warehouse"]) / "reports" / state["request"]["month"]
        assert (folder / f"{state['attempt_id']}.md").exists()
        page = _html(wh, key)
        assert (
            page.startswith("<!DOCTYPE html>") and f"Settlement {state['request']['month']}" in page
        )
        assert state["status"].upper() in page
        # offline: no external resource, no script at all
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE), key
        assert not re.search(r"https?://", page), key
        assert (
            "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
        )


def test_published_report_reconciliation_adds_up_and_a_mismatch_is_shown(wh):
    from supernova.report import collect, reconciliation, render_html

    state = wh["oct"][1]
    data = collect(wh["warehouse"], state)
    rows = reconciliation(data)
    checked = [r for r in rows if r["ok"] is not None]
    assert len(checked) >= 5 and all(r["ok"] for r in checked), [r for r in checked if not r["ok"]]
    labels = " ".join(r["label"] for r in rows)
    for word in (
        "Commission",
        "platform fee",
        "operator retained",
        "tier bonus",
        "clawbacks",
        "carried in",
        "gross due",
        "tax withheld",
        "carried out",
        "forfeited",
        "net paid",
    ):
        assert word in labels
    # the table's last line equals the net paid of the published payouts, to the fen
    with connect(wh["warehouse"], read_only=True) as con:
        net = con.execute(
            "select sum(net_paid) from settlement.payouts where settlement_month = '2026-10'"
        ).fetchone()[0]
    assert rows[-1]["amount"] == net
    assert "Every subtotal equals" in _html(wh, "oct") and "✗" not in _html(wh, "oct")
    # one fen off in the payouts: the report must say it does not add up
    data["payout_sums"] = {
        **data["payout_sums"],
        "net_paid": data["payout_sums"]["net_paid"] + Decimal("0.01"),
    }
    assert reconciliation(data)[-1]["ok"] is False
    page = render_html(wh["warehouse"], state, data)
    assert "do NOT add up" in page and "✗" in page


FUNNEL = [
    "lines_settled",
    "lines_settled_earlier",
    "suspense_lines",
    "lines_organic",
    "lines_pending_completion",
    "lines_cancelled_unsettled",
    "lines_completed_before_first_month",
]


def test_every_published_run_records_a_funnel_that_adds_up_to_the_lines_delivered(wh):
    """outputs.md settlement_runs: lines delivered = organic + suspense + pending + settled
    (this run or earlier) + cancelled/refunded before settling. Organic lines and the
    delivered lines are counted independently from raw (§1 written without the macro)."""
    with connect(wh["warehouse"], read_only=True) as con:
        runs = con.execute(
            f"select settlement_month, lines_delivered, {', '.join(FUNNEL)}, orphan_events "
            "from settlement.settlement_runs where status = 'published' order by finished_at"
        ).fetchall()
        delivered = con.execute(
            "select count(*) from (select distinct order_id, line_no from raw.orders)"
        ).fetchone()[0]
        organic = con.execute("""
            with heads as (
                select order_id, arg_min(buyer_id, line_no) as buyer_id, arg_min(ordered_at, line_no) as ordered_at
                from (select distinct order_id, line_no, buyer_id, ordered_at from raw.orders) group by order_id),
            clicked as (
                select distinct h.order_id from heads h join raw.clicks c
                  on c.buyer_id = h.buyer_id and c.clicked_at <= h.ordered_at
                 and c.clicked_at > h.ordered_at - interval 15 day)
            select count(*) from (select distinct order_id, line_no from raw.orders) o
            where o.order_id not in (select order_id from clicked)""").fetchone()[0]
        settled = dict(
            con.execute(
                "select first_settlement_month, count(*) from settlement.line_terms group by 1"
            ).fetchall()
        )
    assert {r[0] for r in runs} == {"2026-09", "2026-10"}
    for month, lines_delivered, *buckets, orphans in runs:
        row = dict(zip(FUNNEL, buckets))
        assert lines_delivered == sum(buckets), (month, lines_delivered, row)
        assert lines_delivered == delivered and row["lines_organic"] == organic > 0
        assert row["lines_pending_completion"] > 0 and orphans is not None
        # settled by this run or earlier = every published line term of this month or before
        assert row["lines_settled"] + row["lines_settled_earlier"] == sum(
            n for m, n in settled.items() if m <= month
        ), (month, row, settled)
    october = dict(zip(FUNNEL, runs[-1][2:-1]))
    assert october["lines_settled_earlier"] == settled["2026-09"]


def test_an_existing_settlement_runs_table_gets_the_funnel_columns(tmp_path):
    """A warehouse from before the funnel: its settlement_runs gains the new columns (empty
    for the runs recorded before), and a new run records them."""
    from supernova import publish

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        con.execute("create schema settlement")
        con.execute(
            "create table settlement.settlement_runs (run_id varchar, settlement_month varchar, "
            "status varchar, lines_settled bigint)"
        )
        con.execute(
            "insert into settlement.settlement_runs values ('r0', '2026-08', 'published', 5)"
        )
        publish.ensure_settlement_schema(con)
        publish.record_run(
            con,
            {
                "run_id": "r1",
                "settlement_month": "2026-09",
                "status": "published",
                "lines_delivered": 10,
                "lines_organic": 2,
            },
        )
        cols = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_name = 'settlement_runs'"
            ).fetchall()
        }
        assert set(publish.RUN_COLUMNS) <= cols
        rows = con.execute(
            "select run_id, lines_settled, lines_delivered, lines_organic "
            "from settlement.settlement_runs order by run_id"
        ).fetchall()
        assert rows == [("r0", 5, None, None), ("r1", None, 10, 2)]
    finally:
        con.close()


def test_failed_report_shows_why_first_with_the_failed_check_and_examples(wh):
    page = _html(wh, "failed")
    assert "Why it failed — nothing was published" in page
    assert (
        page.index("Why it failed")
        < page.index("Totals and reconciliation")
        < page.index('id="checks"')
    )
    assert "quality gate FAILED" in page and "What to do next" in page
    row = re.search(
        r'<tr class="fail"><td[^>]*>payout_identity</td><td[^>]*>1</td><td[^>]*>FAIL</td>', page
    )
    assert row, "the failed invariant must be listed as FAIL with its violation count"
    assert re.search(r"\d+ of 18 invariants hold; \d FAILED", page)
    assert "do NOT add up" in page  # the planted fen shows in the reconciliation too
    assert "not published" in page  # its figures are the rejected candidate tables
    refused = _html(wh, "refused")
    assert "before its cutoff" in refused and "--preview" in refused
    assert "did not run in this attempt" in refused


@pytest.fixture(scope="module")
def wh_marts(wh, tiny_landing, tmp_path_factory):
    """A copy of the scenario's warehouse with the analytics marts refreshed, and
    October's and September's reports written again: the report reads its group and
    buyer figures from the marts (one definition of a dead group, one suppression)."""
    from supernova import marts
    from supernova.report import write_report

    copy = tmp_path_factory.mktemp("wh-marts") / "warehouse"
    shutil.copytree(wh["warehouse"], copy, ignore=shutil.ignore_patterns("run.lock", "*.wal"))
    marts.refresh(tiny_landing, copy, log=lambda *a, **k: None)
    states = {}
    for key in ("sep", "oct"):
        state = wh[key][1]
        write_report(copy, state)
        states[key] = state
    return {"warehouse": copy, "states": states}


def _html_at(warehouse: Path, state: dict) -> str:
    return (
        Path(warehouse) / "reports" / state["request"]["month"] / f"{state['attempt_id']}.html"
    ).read_text()


def test_report_has_every_chart_with_data(wh_marts):
    page = _html_at(wh_marts["warehouse"], wh_marts["states"]["oct"])
    svgs = re.findall(r'<svg class="chart".*?</svg>', page, re.DOTALL)
    labels = [re.search(r'aria-label="([^"]*)"', x).group(1) for x in svgs]
    for chart in CHARTS:
        assert chart in labels, f"missing chart {chart}: {labels}"
        svg = svgs[labels.index(chart)]
        assert "no data for this chart" not in svg, chart
        assert len(re.findall(r'class="mark"', svg)) >= 2, chart
    assert "Dead-group rate" in page and re.search(r"\d+ dead \(<strong>\d+\.\d%</strong>\)", page)


def test_report_works_without_marts_and_never_shows_buyers(wh):
    warehouse = wh["warehouse"]
    with connect(warehouse, read_only=True) as con:
        # the settlement does not build the marts; it stages everything (buyers included,
        # docs/architecture.md "tested once per change") so the next build can leave staging
        # out, but the report must not take buyer figures from staging
        assert table_exists(con, "staging", "stg_exports__buyers")
        assert not table_exists(con, "marts", "buyer_demographics_monthly")
        buyer_ids = [
            r[0] for r in con.execute("select distinct buyer_id from raw.buyers").fetchall()
        ]
    assert len(buyer_ids) > 100
    for key in ("failed", "sep", "oct", "refused"):
        state = wh[key][1]
        md = (
            Path(warehouse) / "reports" / state["request"]["month"] / f"{state['attempt_id']}.md"
        ).read_text()
        for ext, text in ((".html", _html(wh, key)), (".md", md)):
            leaked = [b for b in buyer_ids if b in text]
            assert not leaked, (key, ext, leaked[:3])
            assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text), (key, ext)
    # without the marts the report says where its group and buyer figures come from
    page = _html(wh, "oct")
    assert (
        "GMV by buyer city tier" in page and "the analytics marts have no rows for 2026-10" in page
    )


def test_report_groups_and_buyers_are_the_marts_figures(wh_marts):
    """One definition of a dead group (group_status's) and of the daily orders (every
    attributed order, not only the lines settled so far): the report's figures are the
    marts'. The old report counted 105 dead groups on 2026-10-31 (group_status: 100) and
    its orders fell to 0 on the last days of the month."""
    from supernova.report import collect

    warehouse, state = wh_marts["warehouse"], wh_marts["states"]["oct"]
    data = collect(warehouse, state)
    days = {r["d"]: r for r in data["activity"]["days"]}
    with connect(warehouse, read_only=True) as con:
        dead = dict(
            con.execute(
                "select as_of_date, count(*) from marts.group_status where status = 'dead' "
                "and as_of_date between '2026-10-01' and '2026-10-31' group by 1"
            ).fetchall()
        )
        existing = dict(
            con.execute(
                "select as_of_date, count(*) from marts.group_status where status <> 'dissolved' "
                "and as_of_date between '2026-10-01' and '2026-10-31' group by 1"
            ).fetchall()
        )
        orders = dict(
            con.execute(
                "select activity_date, sum(orders) from marts.group_daily_activity "
                "where activity_date between '2026-10-01' and '2026-10-31' group by 1"
            ).fetchall()
        )
        demo = con.execute(
            "select city_tier, gender, buyers, gmv, suppressed from marts.buyer_demographics_monthly "
            "where month = '2026-10-01' and not is_total"
        ).fetchall()
    assert len(days) == 31
    for d, r in days.items():
        assert r["dead"] == dead.get(d, 0) and r["groups"] == existing[d], d
        assert r["orders"] == orders.get(d, 0), d
    assert days[date(2026, 10, 31)]["orders"] > 0 and days[date(2026, 10, 30)]["orders"] > 0
    page = _html_at(warehouse, state)
    last = days[date(2026, 10, 31)]
    assert f"{last['groups']:,} groups, {last['dead']:,} dead" in page
    # the buyer table is the mart's month, suppression included
    shown = {(r["city_tier"], r["gender"]): r for r in data["demographics"]["cells"]}
    assert len(shown) == len(demo)
    for tier, gender, buyers, gmv, suppressed in demo:
        r = shown[(str(tier) if tier is not None else "?", gender or "?")]
        assert (r["buyers"], r["gmv"], r["suppressed"]) == (buyers, gmv, suppressed)


def _report_buyer_table(page: str) -> list[dict]:
    """The rows of the report's buyer table as a reader sees them."""
    sec = page[page.index('id="buyers"') : page.index('id="groups"')]
    table = re.search(r"<table>.*?</table>", sec, re.DOTALL).group(0)
    out = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.DOTALL)[1:]:
        cells = [
            re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)
        ]
        tier, gender, buyers, orders, gmv = cells[:5]
        hidden = buyers == "suppressed"
        out.append(
            {
                "dim": None if tier == "all" else (tier.replace("tier ", ""), gender),
                "suppressed": hidden,
                "buyers": None if hidden else int(buyers.replace(",", "")),
                "orders": None if hidden else int(orders.replace(",", "")),
                "gmv": None if hidden else Decimal(gmv.replace(",", "")),
            }
        )
    return out


def test_no_suppressed_buyer_cell_of_the_report_can_be_recovered(wh_marts):
    """The report's buyer table (cells and the all/all row) against the true cells computed
    from raw: total - sum(visible cells) never gives a hidden cell's buyers, orders or GMV."""
    from test_properties import assert_no_cell_recoverable

    warehouse, state = wh_marts["warehouse"], wh_marts["states"]["oct"]
    published = _report_buyer_table(_html_at(warehouse, state))
    with connect(warehouse, read_only=True) as con:
        # the mart's cells (their true values are what it hides): attributed orders of October
        truth_rows = con.execute("""
            with lines as (
                select l.order_id, l.buyer_id, l.paid_amount, coalesce(cast(b.city_tier as varchar), '?') as tier,
                       coalesce(b.gender, '?') as gender
                from intermediate.int_marts__attributed_lines l left join staging.stg_exports__buyers b using (buyer_id)
                where l.order_date between '2026-10-01' and '2026-10-31')
            select tier, gender, count(distinct buyer_id), count(distinct order_id), sum(paid_amount)
            from lines group by all
            union all
            select null, null, count(distinct buyer_id), count(distinct order_id), sum(paid_amount) from lines
            """).fetchall()
    truth = {
        (None if t is None else (t, g)): {"buyers": b, "orders": o, "gmv": v}
        for t, g, b, o, v in truth_rows
    }
    assert len(published) == len(truth)
    for r in published:  # what is shown is the month's true figure (the mart's population)
        if not r["suppressed"]:
            assert {m: r[m] for m in ("buyers", "orders", "gmv")} == truth[r["dim"]], r
    assert_no_cell_recoverable(truth, published)


def test_report_never_prints_a_total_beside_cells_it_hid(tmp_path):
    """The buyer table shows the mart's rows as published: a suppressed total row stays
    hidden (the old report printed an all/all sum next to the cells it suppressed)."""
    from supernova.report import render_html

    cells = [
        {
            "city_tier": "1",
            "gender": "F",
            "is_total": False,
            "buyers": None,
            "orders": None,
            "gmv": None,
            "aov": None,
            "suppressed": True,
        },
        {
            "city_tier": "1",
            "gender": "M",
            "is_total": False,
            "buyers": None,
            "orders": None,
            "gmv": None,
            "aov": None,
            "suppressed": True,
        },
    ]
    total = {
        "city_tier": "?",
        "gender": "?",
        "is_total": True,
        "buyers": None,
        "orders": None,
        "gmv": None,
        "aov": None,
        "suppressed": True,
    }
    data = {
        "errors": {},
        "source": {"schema": "settlement", "published": True, "month": "2026-10"},
        "demographics": {"cells": cells, "total": total},
    }
    state = {"request": {"month": "2026-10"}, "status": "published", "attempt_id": "a1"}
    page = render_html(tmp_path, state, data)
    rows = _report_buyer_table(page)
    assert [r["dim"] for r in rows] == [("1", "F"), ("1", "M"), None]
    assert all(r["suppressed"] and r["buyers"] is None and r["gmv"] is None for r in rows)


def test_every_chart_has_a_title_and_axis_labels(wh_marts):
    page = _html_at(wh_marts["warehouse"], wh_marts["states"]["oct"])
    svgs = re.findall(r'<svg class="chart".*?</svg>', page, re.DOTALL)
    assert len(svgs) >= len(CHARTS)
    for svg in svgs:
        label = re.search(r'aria-label="([^"]*)"', svg).group(1)
        assert re.search(r'<text class="chart-title"[^>]*>[^<]+</text>', svg), label
        if "no data for this chart" not in svg:
            assert len(re.findall(r'<text class="axis-label"', svg)) == 2, label


def test_incomplete_days_are_marked_not_drawn_as_zero():
    from supernova.report import line_chart

    svg = line_chart(
        [("10-29", 1.5), ("10-30", 1.2), ("10-31", None)],
        "Orders per existing group per day",
        x_label="order date",
        y_label="orders per group",
        incomplete_note="not in the marts yet",
    )
    assert svg.count('class="incomplete"') == 1 and "10-31: incomplete: not in the marts yet" in svg
    assert len(re.findall(r'<circle class="mark"', svg)) == 2  # no point at 0 for the missing day


def test_css_names_a_cjk_font_stack():
    from supernova.report import CSS

    body = re.search(r"body\{font:([^;]*);", CSS.replace("\n", "")).group(1)
    for family in ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei"):
        assert family in body
    assert body.rstrip().endswith("sans-serif")


def test_month_index_is_the_published_result_and_lists_every_attempt(wh):
    """reports/<month>/index.html is the folder's newest page: September (a failed attempt,
    then published) shows the published report, lists the failed attempt, and is not the
    failure page; November (refused) says it is not published."""
    warehouse = Path(wh["warehouse"])
    sep = warehouse / "reports" / "2026-09"
    index = sep / "index.html"
    newest = max(sep.iterdir(), key=lambda p: p.stat().st_mtime)
    assert newest == index
    page = index.read_text()
    failed_id, published_id = wh["failed"][1]["attempt_id"], wh["sep"][1]["attempt_id"]
    assert "2026-09 is published" in page and published_id in page and failed_id in page
    assert f'href="{failed_id}.html"' in page
    assert (
        "Why it failed" not in page
        and "nothing was published" not in page.split('id="attempts"')[0]
    )
    assert "Totals and reconciliation" in page
    nov = (warehouse / "reports" / "2026-11" / "index.html").read_text()
    assert "NOT PUBLISHED" in nov and wh["refused"][1]["attempt_id"] in nov


def test_next_steps_of_a_failed_gate_is_not_mistaken_for_a_month_order_refusal():
    """The gate's message says "months settle in order, so later months wait" (gate.NOTHING_PUBLISHED):
    the advice is still the failed gate's, not "settle the next month first"."""
    from supernova.gate import NOTHING_PUBLISHED
    from supernova.report import next_steps

    gate = {
        "status": "failed",
        "request": {"month": "2026-09"},
        "error": f"quality gate FAILED for 2026-09: nothing was published. {NOTHING_PUBLISHED}",
    }
    assert next_steps(gate).startswith("Nothing was published. Look at the failed checks")
    order = {
        "status": "failed",
        "request": {"month": "2026-11"},
        "error": "months settle in order: the latest closed month is 2026-09, so the next one to settle is 2026-10",
    }
    assert next_steps(order) == "Settle 2026-10 first, then this one."


def test_scrub_removes_buyer_ids_and_phones_from_messages():
    from supernova.report import scrub

    text = (
        "e.g. {'order_id': 'O1', 'buyer_id': 'B00000307', 'phone': '13812345678'} call 13912345678"
    )
    out = scrub(text)
    assert "B00000307" not in out and "13812345678" not in out and "13912345678" not in out
    assert "O1" in out


# ---------------------------------------------------------------- headless Chromium


def _need_chromium():
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium) "
            "before the tests (see docs/reports.md)"
        )
    pytest.skip(
        f"{CHROMIUM} not installed (apt-get install -y chromium); the browser tests run in CI"
    )


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]


class _CDP:
    """A minimal DevTools-protocol client over a stdlib websocket (text frames only)."""

    def __init__(self, ws_url: str):
        u = urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            buf += chunk
        return buf

    def _recv(self) -> dict:
        data = b""
        while True:
            b1, b2 = self._read(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            if b1 & 0x0F in (0x9, 0xA):  # ping/pong: ignore
                continue
            data += payload
            if b1 & 0x80:
                return json.loads(data)

    def call(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        msg = json.dumps({"id": self.next_id, "method": method, "params": params or {}}).encode()
        mask = os.urandom(4)
        n = len(msg)
        head = bytes([0x81]) + (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + struct.pack(">H", n)
            if n < 65536
            else bytes([0x80 | 127]) + struct.pack(">Q", n)
        )
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        while True:
            m = self._recv()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name: str, timeout: float = 30) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events:
                if e.get("method") == name:
                    return e
            self.events.append(self._recv())
        raise TimeoutError(name)


def _browse(url: str, tmp_path: Path, evaluate: str | None = None) -> dict:
    """Open url in headless Chromium; return console errors, requests, chart geometry and
    (evaluate) the JSON value of one more script run in the page."""
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--remote-debugging-port=0",
            "--window-size=1200,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        end = time.time() + 30
        while time.time() < end and port is None:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line or "")
            if m:
                port = int(m.group(1))
            elif not line and proc.poll() is not None:
                break
        assert port, "Chromium did not start its DevTools endpoint"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        cdp = _CDP(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable")
        cdp.call("Page.navigate", {"url": url})
        cdp.wait_event("Page.loadEventFired")
        geometry = cdp.call(
            "Runtime.evaluate",
            {
                "returnByValue": True,
                "expression": """
            JSON.stringify(Array.from(document.querySelectorAll('svg.chart')).map(s => {
              const b = s.getBoundingClientRect();
              const marks = Array.from(s.querySelectorAll('.mark')).map(m => m.getBoundingClientRect())
                                 .filter(r => r.width > 0 && r.height > 0).length;
              return {label: s.getAttribute('aria-label'), w: b.width, h: b.height, marks: marks};
            }))""",
            },
        )["result"]["value"]
        extra = None
        if evaluate:
            extra = json.loads(
                cdp.call(
                    "Runtime.evaluate",
                    {"returnByValue": True, "awaitPromise": True, "expression": evaluate},
                )["result"]["value"]
            )
        time.sleep(0.3)
        cdp.call("Runtime.evaluate", {"expression": "1"})  # flush pending events
        errors = [
            e
            for e in cdp.events
            if (
                e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert")
            )
            or e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        requests = [
            e["params"]["request"]["url"]
            for e in cdp.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        return {
            "errors": errors,
            "requests": requests,
            "charts": json.loads(geometry),
            "extra": extra,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_chromium_loads_the_report_without_errors_and_draws_the_charts(wh_marts, tmp_path):
    _need_chromium()
    state = wh_marts["states"]["oct"]
    path = Path(wh_marts["warehouse"]) / "reports" / "2026-10" / f"{state['attempt_id']}.html"
    seen = _browse(path.as_uri(), tmp_path)
    assert seen["errors"] == [], seen["errors"][:3]
    assert all(u.startswith(("file:", "data:", "about:")) for u in seen["requests"]), seen[
        "requests"
    ]
    charts = {c["label"]: c for c in seen["charts"]}
    for name in CHARTS:
        c = charts.get(name)
        assert c and c["w"] > 100 and c["h"] > 20 and c["marks"] >= 2, (name, c)


# Draws each character with the page's own font stack on a canvas and compares the
# pixels: characters with no glyph in any available font all come out as the same box
# (tofu), real glyphs differ from one another and from an unassigned code point's box.
GLYPH_CHECK = """(async () => {
  await document.fonts.ready;
  const family = getComputedStyle(document.querySelector('h2') || document.body).fontFamily;
  const c = document.createElement('canvas'); c.width = 64; c.height = 64;
  const g = c.getContext('2d');
  const draw = (t) => { g.clearRect(0, 0, 64, 64); g.font = '48px ' + family; g.fillStyle = '#000';
                        g.fillText(t, 4, 52); return Array.from(g.getImageData(0, 0, 64, 64).data).join(','); };
  const chars = Array.from('僵死群');
  const shots = chars.map(draw);
  const box = draw('\\u0378');
  const ink = (s) => s.split(',').some((v, i) => i % 4 === 3 && v !== '0');
  return JSON.stringify({family: family, distinct: new Set(shots).size, all: chars.length,
                         notBox: shots.every((s) => s !== box), ink: shots.every(ink),
                         text: document.body.innerText.includes('僵死群')});
})()"""


def test_chromium_renders_the_reports_chinese_text_as_glyphs(wh_marts, tmp_path):
    """The report's 僵死群 is drawn with a CJK font from its font stack (Debian:
    fonts-noto-cjk, installed by `make chromium`), not as boxes."""
    _need_chromium()
    state = wh_marts["states"]["oct"]
    path = Path(wh_marts["warehouse"]) / "reports" / "2026-10" / f"{state['attempt_id']}.html"
    seen = _browse(path.as_uri(), tmp_path, evaluate=GLYPH_CHECK)
    got = seen["extra"]
    assert got["text"] and "Noto Sans CJK SC" in got["family"], got
    assert got["ink"] and got["notBox"] and got["distinct"] == got["all"], (
        f"Chinese text renders as boxes: no CJK font (apt-get install fonts-noto-cjk): {got}"
    )


def test_chromium_harness_catches_console_errors(tmp_path):
    """The browser test above can fail: a page with a script error and a missing image is caught."""
    _need_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    seen = _browse(bad.as_uri(), tmp_path)
    assert len(seen["errors"]) >= 2 and seen["charts"] == []


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of raw pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, bpp, rows


def test_screenshot_of_the_report_is_not_blank(wh, tmp_path):
    _need_chromium()
    state = wh["oct"][1]
    path = Path(wh["warehouse"]) / "reports" / "2026-10" / f"{state['attempt_id']}.html"
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=900,700",
            f"--screenshot={shot}",
            path.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 5000, "no screenshot written"
    w, bpp, rows = _png_pixels(shot.read_bytes())
    assert w == 900 and len(rows) == 700
    pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), bpp * 4)]
    non_white = sum(1 for p in pixels if min(p) < 235)
    assert non_white / len(pixels) > 0.02, "the screenshot is (almost) blank"
    assert len(set(pixels)) > 20, (
        "the screenshot has too few colours to show text and the status badge"
    )


# ---------------------------------------------------------------- statements


def _csv(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _xlsx(path: Path) -> tuple[list[str], dict[str, str], str, list[str]]:
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        sheets = {
            f"xl/worksheets/sheet{i + 1}.xml": z.read(f"xl/worksheets/sheet{i + 1}.xml").decode()
            for i in range(len(re.findall(r"<sheet ", book)))
        }
        styles = z.read("xl/styles.xml").decode()
        shared = re.findall(r"<t[^>]*>([^<]*)</t>", z.read("xl/sharedStrings.xml").decode())
    return re.findall(r'<sheet name="([^"]+)"', book), sheets, styles, shared


def test_statements_from_published_tables(wh, tmp_path):
    from supernova.statements import write_statements

    warehouse = wh["warehouse"]
    files = write_statements(warehouse, "2026-10", tmp_path / "st")
    names = {f.name for f in files}
    assert {
        "payouts_2026-10.csv",
        "ledger_2026-10.csv",
        "supernova_statements_2026-10.xlsx",
    } <= names
    with connect(warehouse, read_only=True) as con:
        n, net, claw = con.execute(
            "select count(*), sum(net_paid), sum(clawback_amount) from settlement.payouts "
            "where settlement_month = '2026-10'"
        ).fetchone()
        nl, amt = con.execute(
            "select count(*), sum(amount) from settlement.payout_lines "
            "where settlement_month = '2026-10'"
        ).fetchone()
    assert len([f for f in files if f.parent.name == "promoters"]) == n
    payouts = _csv(tmp_path / "st" / "payouts_2026-10.csv")
    head = payouts[0]
    assert len(payouts) - 1 == n
    assert sum(Decimal(r[head.index("net_paid")]) for r in payouts[1:]) == net
    assert sum(Decimal(r[head.index("clawback_amount")]) for r in payouts[1:]) == claw < 0
    money = [
        r[head.index(c)] for r in payouts[1:] for c in ("gross_due", "net_paid", "clawback_amount")
    ]
    assert all(re.fullmatch(r"-?\d+\.\d\d", v) for v in money), (
        "money must be exact 2-decimal strings"
    )
    assert any(v.startswith("-") for v in money), (
        "negative amounts stay plain numbers (no apostrophe)"
    )
    ledger = _csv(tmp_path / "st" / "ledger_2026-10.csv")
    assert (
        len(ledger) - 1 == nl
        and sum(Decimal(r[ledger[0].index("amount")]) for r in ledger[1:]) == amt
    )
    # a promoter with a clawback: the statement's ledger lines add up to its postings
    pid = next(r[1] for r in payouts[1:] if Decimal(r[head.index("clawback_amount")]) < 0)
    st = _csv(tmp_path / "st" / "promoters" / f"{pid}.csv")
    assert ["promoter_id", pid] in st
    row = next(r for r in payouts[1:] if r[1] == pid)
    postings = sum(
        Decimal(row[head.index(c)])
        for c in (
            "level1_amount",
            "level2_amount",
            "tier_bonus",
            "clawback_amount",
            "adjustment_amount",
        )
    )
    assert Decimal(st[-1][-1]) == postings and st[-1][0] == "total of ledger lines"
    assert any(r and r[0] == "clawback" for r in st)
    # the workbook
    sheets, xml, styles, _ = _xlsx(tmp_path / "st" / "supernova_statements_2026-10.xlsx")
    assert sheets == ["Summary", "Payouts", "Ledger", "Statements"]
    assert 'formatCode="#,##0.00"' in styles
    payout_xml = xml["xl/worksheets/sheet2.xml"]
    assert len(re.findall(r"<row ", payout_xml)) == n + 1
    assert "<f>" not in "".join(xml.values()), "no formulas in the workbook"
    # gross_due (column L) is a number cell with a style (the 2-decimal format), not text
    cells = re.findall(r'<c r="L(\d+)"( s="\d+")?( t="\w+")?>', payout_xml)
    assert cells and all(s and not t for r, s, t in cells if r != "1")
    assert 'autoFilter ref="A1:' in xml["xl/worksheets/sheet3.xml"]


def test_statements_neutralise_formula_injection_but_keep_numbers(wh, tmp_path):
    from supernova.statements import write_statements

    evil_promoter = '=HYPERLINK("http://evil.example/x","click")'
    evil_group = "-1+1"
    copy = tmp_path / "wh"
    copy.mkdir()
    shutil.copy(Path(wh["warehouse"]) / "supernova.duckdb", copy / "supernova.duckdb")
    con = duckdb.connect(str(copy / "supernova.duckdb"))
    victim = con.execute(
        "select promoter_id from settlement.payouts where settlement_month = '2026-10' "
        "and clawback_amount < 0 order by promoter_id limit 1"
    ).fetchone()[0]
    con.execute(
        "update settlement.payouts set promoter_id = ? where promoter_id = ?",
        [evil_promoter, victim],
    )
    con.execute(
        "update settlement.payout_lines set beneficiary_id = ? where beneficiary_id = ?",
        [evil_promoter, victim],
    )
    con.execute(
        "update settlement.payout_lines set group_id = ? where beneficiary_id = ? and group_id is not null",
        [evil_group, evil_promoter],
    )
    con.execute(
        "update settlement.payouts set platform = '@SUM(A1)' where promoter_id = ?", [evil_promoter]
    )
    con.close()
    files = write_statements(copy, "2026-10", tmp_path / "out")
    payouts = _csv(tmp_path / "out" / "payouts_2026-10.csv")
    row = next(r for r in payouts if evil_promoter in r[1])
    assert row[1] == "'" + evil_promoter and row[2] == "'@SUM(A1)"
    assert row[payouts[0].index("clawback_amount")].startswith("-")  # a number, not neutralised
    ledger = _csv(tmp_path / "out" / "ledger_2026-10.csv")
    evil_rows = [r for r in ledger if r[1] == "'" + evil_promoter]
    groups = {r[ledger[0].index("group_id")] for r in evil_rows}
    assert "'-1+1" in groups and groups <= {"'-1+1", ""}  # "" = a line shared outside any group
    assert not any(r[1] == evil_promoter for r in ledger), (
        "raw formula text must never reach a CSV cell"
    )
    claw = [r for r in evil_rows if r[2] == "clawback"]
    assert claw and all(re.fullmatch(r"-\d+\.\d\d", r[ledger[0].index("amount")]) for r in claw)
    statement = [f for f in files if f.parent.name == "promoters" and "HYPERLINK" in f.name]
    assert len(statement) == 1 and statement[0].parent == tmp_path / "out" / "promoters"
    assert re.fullmatch(r"[0-9A-Za-z_.-]+\.csv", statement[0].name)
    body = _csv(statement[0])
    assert ["promoter_id", "'" + evil_promoter] in body
    # XLSX: the id is a text cell, never a formula
    _, xml, _, shared = _xlsx(tmp_path / "out" / "supernova_statements_2026-10.xlsx")
    assert "<f>" not in "".join(xml.values())
    assert any("HYPERLINK" in t for t in shared) and "-1+1" in shared


def test_csvsafe_cells():
    from supernova.csvsafe import cell, rows_to_csv

    assert cell("=1+2") == "'=1+2" and cell("+1") == "'+1" and cell("-1+1") == "'-1+1"
    assert cell("@SUM(A1)") == "'@SUM(A1)" and cell("\tx") == "'\tx" and cell("\rx") == "'\rx"
    assert cell("P0001") == "P0001" and cell("a=b") == "a=b" and cell("") == "" and cell(None) == ""
    assert cell(Decimal("-125.01")) == "-125.01" and cell(-3) == "-3"
    assert cell(Decimal("-1.5"), money=True) == "-1.50" and cell(Decimal(0), money=True) == "0.00"
    assert cell(Decimal("0.095000")) == "0.095000"
    text = rows_to_csv(["id", "amount"], [["=cmd|' /C calc'!A0", Decimal("-2.00")]], ["amount"])
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=cmd|' /C calc'!A0", "-2.00"]


def test_statements_cli(wh, tmp_path, capsys):
    from supernova.statements import add_statements_parser

    parser = argparse.ArgumentParser(prog="supernova")
    add_statements_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "statements",
            "--month",
            "2026-09",
            "--warehouse",
            str(wh["warehouse"]),
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert args.func(args) == 0
    assert (tmp_path / "cli" / "supernova_statements_2026-09.xlsx").exists()
    assert "promoter statements" in capsys.readouterr().out
    args = parser.parse_args(
        ["statements", "--month", "2026-11", "--warehouse", str(wh["warehouse"])]
    )
    assert args.func(args) == 1
    assert "2026-11 is not published" in capsys.readouterr().err


# ---------------------------------------------------------------- terminal summary


def test_summary_is_short_and_says_what_to_do_next(wh):
    from supernova.summary import format_summary

    warehouse = wh["warehouse"]
    ok = format_summary(warehouse, wh["oct"][1]["attempt_id"], "DagRunState.SUCCESS")
    assert "2026-10: PUBLISHED" in ok and "net paid" in ok and "18/18 invariants hold" in ok
    assert ".html" in ok and "supernova statements --month 2026-10" in ok
    assert len(ok.splitlines()) <= 16
    bad = format_summary(warehouse, wh["failed"][1]["attempt_id"], "DagRunState.FAILED")
    assert "FAILED" in bad and "why         quality gate FAILED" in bad and "payout_identity" in bad
    assert "next        Nothing was published" in bad
    refused = format_summary(warehouse, wh["refused"][1]["attempt_id"], "DagRunState.FAILED")
    assert "before its cutoff" in refused and "--preview" in refused
    assert "stopped before it started" in format_summary(warehouse, "no-such-attempt", "failed")


def test_progress_heartbeat_reports_long_steps():
    from supernova.summary import heartbeat, progress_logger

    lines: list[str] = []
    with heartbeat("dbt build", lines.append, every=0.05):
        time.sleep(0.25)
    assert lines[0] == "dbt build ..." and any("still running" in x for x in lines)
    assert lines[-1].startswith("dbt build done in")
    out = io.StringIO()
    progress_logger(stream=out)("two\nlines")
    first, second = out.getvalue().splitlines()
    assert re.match(r"\[supernova \d\d:\d\d:\d\d \+\d+s\] two", first) and second.strip() == "lines"


def test_next_steps_of_a_build_out_of_memory_names_the_memory_setting():
    """A target-sized close failed in a model with DuckDB's "Out of Memory Error"; the
    advice pointed at commission rules (2026-12-05)."""
    from supernova.report import next_steps

    oom = {
        "status": "failed",
        "error": "dbt build failed for 2026-10 (1 problem(s)); nothing was published:\n"
        "  - model.supernova.rpt_promoter_earnings_reconciliation: Runtime Error ...\n"
        "  Out of Memory Error: failed to pin block of size 256.0 KiB (5.5 GiB/5.5 GiB used)",
    }
    assert next_steps(oom).startswith("Nothing was published. DuckDB ran out of memory")
    assert "SUPERNOVA_DUCKDB_MEMORY_LIMIT" in next_steps(oom)
    other = {"status": "failed", "error": "dbt build failed for 2026-10: overlapping rules"}
    assert next_steps(other).startswith("Nothing was published. Fix the failing model")
