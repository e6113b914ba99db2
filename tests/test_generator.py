"""The sample-data generator (supernova/generator): contract conformance, determinism,
realism targets (with the tolerances stated next to each assertion) and the mess switch.

Most tests read the session fixture `tiny_landing` (tiny, seed 7, 2026-09-01 + 68 days,
mess off). Parsing uses the csv module (an independent reader) and DuckDB for the
cross-export statistics (attribution, tiers).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from supernova import contract as C
from supernova.generator import MESS_KINDS, generate

START = dt.date(2026, 9, 1)
DAYS = 68
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
MONEY_RE = re.compile(r"^\d+\.\d{2}$")
RATE_RE = re.compile(r"^\d+(\.\d+)?$")


# -- helpers ----------------------------------------------------------------------------
def read_export(root: Path, export: str, encoding: str = "utf-8") -> list[dict]:
    """All rows of an export, in delivery order, with _day / _file / _nfields."""
    rows = []
    for f in sorted((root / export).glob("*/*.csv")):
        with open(f, newline="", encoding=encoding) as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for rec in reader:
                row = dict(zip(header, rec))
                row["_day"] = f.parent.name
                row["_file"] = f
                row["_nfields"] = len(rec)
                rows.append(row)
    return rows


def ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def local_date(s: str) -> str:
    return s[:10]


def latest(rows, key, version):
    out = {}
    for r in rows:  # delivery order: a later row with an equal version wins
        k = tuple(r[c] for c in key)
        if k not in out or r[version] >= out[k][version]:
            out[k] = r
    return out


@pytest.fixture(scope="module")
def data(tiny_landing):
    return {e: read_export(tiny_landing, e) for e in C.EXPORT_NAMES}


@pytest.fixture(scope="module")
def db(tiny_landing):
    con = duckdb.connect()
    for e in C.EXPORT_NAMES:
        con.execute(
            f"create view {e} as select * from read_csv('{tiny_landing}/{e}/*/*.csv', "
            "header=true, all_varchar=true, delim=',', quote='\"', escape='\"')"
        )
    # naive Asia/Shanghai local time, as the warehouse stores it
    con.execute("create macro lt(s) as strptime(substr(s, 1, 19), '%Y-%m-%dT%H:%M:%S')")
    con.execute("""
        create table attribution as
        with ord as (select order_id, buyer_id, lt(ordered_at) t from orders where line_no = '1'),
        cl as (select click_id, link_id, buyer_id, lt(clicked_at) ct from clicks),
        j as (
            select ord.order_id, ord.t, cl.link_id, cl.click_id,
                   count(cl.click_id) over w n_clicks,
                   row_number() over (partition by ord.order_id
                                      order by cl.ct desc, cl.click_id desc) rn
            from ord left join cl on cl.buyer_id = ord.buyer_id
                 and cl.ct <= ord.t and cl.ct > ord.t - interval 15 day
            window w as (partition by ord.order_id))
        select j.order_id, j.t, j.link_id, j.n_clicks, l.promoter_id, l.group_id
        from j left join links l using (link_id) where rn = 1""")
    return con


def detect_mess(root: Path) -> dict[str, int]:
    """Counts every documented kind of bad input found under `root`."""
    found = Counter()
    files = sorted(p for p in root.rglob("*.csv"))
    digests = Counter()
    for f in files:
        b = f.read_bytes()
        digests[hashlib.sha256(b).hexdigest()] += 1
        try:
            b.decode("utf-8")
        except UnicodeDecodeError:
            b.decode("gb18030")  # must decode as GB18030
            found["gb18030_file"] += 1
    found["duplicate_file"] = sum(n - 1 for n in digests.values() if n > 1)

    def rows(export):
        enc_rows, seen = [], set()
        for f in sorted((root / export).glob("*/*.csv")):
            b = f.read_bytes()
            if hashlib.sha256(b).digest() in seen:
                continue  # a duplicate delivery loads nothing
            seen.add(hashlib.sha256(b).digest())
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError:
                text = b.decode("gb18030")
            reader = csv.reader(text.splitlines(keepends=True))
            header = next(reader)
            enc_rows += [(header, rec) for rec in reader]
        return enc_rows

    for header, rec in rows("orders"):
        r = dict(zip(header, rec))
        found["negative_paid_amount"] += r["paid_amount"].startswith("-")
        found["money_3_decimals"] += bool(re.search(r"\.\d{3,}$", r["unit_price"]))
        found["missing_required"] += r["buyer_id"] == ""
        found["unknown_sku"] += r["sku_id"] == "S9999999"
    for header, rec in rows("order_events"):
        found["unknown_event"] += dict(zip(header, rec))["event"] not in C.ORDER_EVENTS
    for header, rec in rows("clicks"):
        r = dict(zip(header, rec))
        if len(rec) != len(header):
            found["wrong_field_count"] += 1
            continue
        found["bad_timestamp"] += not TS_RE.match(r["clicked_at"])
        found["unknown_link"] += r["link_id"] == "L999999999"
    for header, rec in rows("commission_rules"):
        r = dict(zip(header, rec))
        found["rate_out_of_range"] += Decimal(r["rate"]) > Decimal("0.9")
        found["valid_to_not_after_from"] += bool(r["valid_to"]) and ts(r["valid_to"]) <= ts(
            r["valid_from"]
        )
    for header, rec in rows("buyers"):
        found["city_tier_out_of_range"] += dict(zip(header, rec))["city_tier"] not in (
            "",
            *"123456",
        )
    prom = [dict(zip(h, rec)) for h, rec in rows("promoters")]
    ids = {p["promoter_id"] for p in prom}
    found["unknown_inviter"] = len(
        {p["promoter_id"] for p in prom if p["inviter_id"] and p["inviter_id"] not in ids}
    )
    found["self_invited"] = len(
        {p["promoter_id"] for p in prom if p["inviter_id"] == p["promoter_id"]}
    )
    last = latest(prom, ("promoter_id",), "updated_at")
    inv = {k[0]: v["inviter_id"] for k, v in last.items() if v["inviter_id"]}
    loops = set()
    for a, b in inv.items():
        if b != a and inv.get(b) == a:
            loops.add(frozenset((a, b)))
    found["inviter_loop"] = len(loops)
    return {k: int(found[k]) for k in MESS_KINDS}


# -- layout and contract ----------------------------------------------------------------
def test_layout_daily_folders_and_contract_headers(tiny_landing):
    assert sorted(p.name for p in tiny_landing.iterdir()) == sorted(C.EXPORT_NAMES)
    days = [(START + dt.timedelta(d)).isoformat() for d in range(DAYS)]
    for export in C.EXPORT_NAMES:
        folders = sorted(p.name for p in (tiny_landing / export).iterdir())
        assert set(folders) <= set(days) and days[0] in folders, export
        if export in ("clicks", "orders", "order_events", "links", "groups", "buyers"):
            assert folders == days, export  # something happens every day
        for d in folders:
            parts = sorted((tiny_landing / export / d).iterdir())
            assert parts and all(re.fullmatch(r"part-\d{4}\.csv", p.name) for p in parts)
            for p in parts:
                head, body = p.read_bytes().split(b"\n", 1)
                assert head.decode() == ",".join(C.EXPORTS[export].column_names), (export, d)
                assert body.endswith(b"\n") and b"\r" not in body  # rows, LF line ends
    assert sorted(p.name for p in (tiny_landing / "skus").iterdir()) == days[:1]


def test_rows_parse_as_contract_types(data):
    for export, rows in data.items():
        spec = C.EXPORTS[export]
        assert rows, export
        for r in rows:
            assert r["_nfields"] == len(spec.columns), (export, r)
            for col in spec.columns:
                v = r[col.name]
                assert v == v.strip(), (export, col.name, v)
                if v == "":
                    assert not col.required, (export, col.name, r)
                    continue
                if col.type == C.TIMESTAMP:
                    assert TS_RE.match(v), (export, col.name, v)
                    ts(v)
                elif col.type == C.DATE:
                    dt.date.fromisoformat(v)
                elif col.type == C.MONEY:
                    assert MONEY_RE.match(v), (export, col.name, v)  # 2 decimals, >= 0
                elif col.type == C.RATE:
                    assert RATE_RE.match(v), (export, col.name, v)
                    assert col.min <= Decimal(v) <= col.max, (export, col.name, v)
                elif col.type == C.INT:
                    assert re.fullmatch(r"-?\d+", v), (export, col.name, v)
                    if col.min is not None:
                        assert col.min <= int(v) <= (col.max if col.max is not None else 10**9)
                elif col.type == C.BOOL:
                    assert v in ("true", "false")
                elif col.type == C.ENUM:
                    assert v in col.enum, (export, col.name, v)
            if export == "skus":
                assert r["category"] in C.CATEGORIES
            if export == "commission_rules":
                keys = {"sku": "sku_id", "merchant": "merchant_id", "category": "category"}
                assert [k for k in keys.values() if r[k]] == [keys[r["scope"]]], r
                assert not r["valid_to"] or ts(r["valid_to"]) > ts(r["valid_from"]), r


def test_keys_are_unique(data):
    def dupes(rows, cols):
        c = Counter(tuple(r[k] for k in cols) for r in rows)
        return [k for k, n in c.items() if n > 1]

    for export, cols in [
        ("clicks", ["click_id"]),
        ("orders", ["order_id", "line_no"]),
        ("links", ["link_id"]),
        ("buyers", ["buyer_id"]),
        ("skus", ["sku_id"]),
        ("promoters", ["promoter_id", "updated_at"]),
        ("groups", ["group_id", "snapshot_date"]),
        ("commission_rules", ["rule_id", "_day"]),
    ]:
        assert not dupes(data[export], cols), export
    assert not dupes([e for e in data["order_events"] if e["event_id"]], ["event_id"])
    # a rule appears at most twice: opened, later closed
    assert max(Counter(r["rule_id"] for r in data["commission_rules"]).values()) == 2
    # ids are fixed width, so string order is numeric order
    for export, col, prefix in [
        ("promoters", "promoter_id", "P"),
        ("groups", "group_id", "G"),
        ("links", "link_id", "L"),
        ("clicks", "click_id", "C"),
        ("orders", "order_id", "O"),
        ("buyers", "buyer_id", "B"),
        ("skus", "sku_id", "S"),
        ("skus", "merchant_id", "M"),
        ("commission_rules", "rule_id", "R"),
    ]:
        widths = {len(r[col]) for r in data[export]}
        assert len(widths) == 1 and all(r[col][0] == prefix for r in data[export]), (export, col)


def test_each_day_delivers_what_happened_that_day(data):
    first = START.isoformat()
    for export, col in [
        ("clicks", "clicked_at"),
        ("orders", "ordered_at"),
        ("order_events", "event_at"),
        ("buyers", "registered_at"),
        ("links", "created_at"),
        ("promoters", "updated_at"),
    ]:
        for r in data[export]:
            if r["_day"] == first and export in ("buyers", "links", "promoters"):
                assert local_date(r[col]) <= first  # day 1 also delivers the history
            else:
                assert local_date(r[col]) == r["_day"], (export, r)
    for r in data["groups"]:
        assert r["snapshot_date"] == r["_day"]
    # day 1 is the full master data, later days only changes
    per_day = Counter(r["_day"] for r in data["groups"])
    assert per_day[first] > 5 * max(n for d, n in per_day.items() if d != first)
    assert {r["_day"] for r in data["skus"]} == {first}
    last_day = (START + dt.timedelta(DAYS - 1)).isoformat()
    assert max(local_date(e["event_at"]) for e in data["order_events"]) == last_day


def test_references_resolve_and_time_is_consistent(data):
    links = {r["link_id"]: r for r in data["links"]}
    groups = latest(data["groups"], ("group_id",), "snapshot_date")
    promoters = latest(data["promoters"], ("promoter_id",), "updated_at")
    buyers = {r["buyer_id"]: r for r in data["buyers"]}
    skus = {r["sku_id"] for r in data["skus"]}
    for c in data["clicks"]:
        link = links[c["link_id"]]
        assert ts(link["created_at"]) <= ts(c["clicked_at"])
        assert ts(buyers[c["buyer_id"]]["registered_at"]) <= ts(c["clicked_at"])
    for link in links.values():
        assert (link["promoter_id"],) in promoters and link["sku_id"] in skus
        if link["group_id"]:
            assert groups[(link["group_id"],)]["owner_id"] == link["promoter_id"]
    for g in groups.values():
        owner = promoters[(g["owner_id"],)]
        assert ts(owner["joined_at"]) <= ts(g["created_at"])
        assert not g["dissolved_at"] or ts(g["dissolved_at"]) > ts(g["created_at"])
    lines = {}
    for o in data["orders"]:
        assert o["sku_id"] in skus and o["buyer_id"] in buyers
        assert ts(buyers[o["buyer_id"]]["registered_at"]) <= ts(o["ordered_at"])
        lines[(o["order_id"], o["line_no"])] = o
    for e in data["order_events"]:
        o = lines[(e["order_id"], e["line_no"])]
        assert ts(e["event_at"]) >= ts(o["ordered_at"])
        if e["event"] == "paid":
            assert e["event_at"] == o["ordered_at"]


def test_money_is_exact_and_consistent(data):
    coupons = shipping = 0
    for o in data["orders"]:
        gross = int(o["quantity"]) * Decimal(o["unit_price"])
        paid, coupon = Decimal(o["paid_amount"]), Decimal(o["coupon_amount"])
        assert 0 < paid <= gross and paid + coupon == gross, o
        coupons += coupon > 0
        shipping += bool(o["shipping_amount"]) and Decimal(o["shipping_amount"]) > 0
    n = len(data["orders"])
    assert 0.15 < coupons / n < 0.35  # 25 % of lines have a coupon
    assert 0.05 < shipping / n < 0.6  # shipping sometimes
    paid = {(o["order_id"], o["line_no"]): Decimal(o["paid_amount"]) for o in data["orders"]}
    refunded = defaultdict(Decimal)
    for e in data["order_events"]:
        if e["event"] == "refunded":
            refunded[(e["order_id"], e["line_no"])] += Decimal(
                e["amount"] or paid[(e["order_id"], e["line_no"])]
            )
        else:
            assert e["amount"] == ""
    assert all(v <= paid[k] for k, v in refunded.items())


def test_commission_rules_touch_but_never_overlap(data):
    rules = data["commission_rules"]
    last = {}
    for r in rules:  # no updated_at: the row delivered last wins
        last[r["rule_id"]] = r
    by_key = defaultdict(list)
    for r in last.values():
        by_key[(r["scope"], r["sku_id"], r["merchant_id"], r["category"])].append(r)
    far = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    touching = 0
    for key, rs in by_key.items():
        rs.sort(key=lambda r: ts(r["valid_from"]))
        for a, b in itertools.pairwise(rs):
            end = ts(a["valid_to"]) if a["valid_to"] else far
            assert end <= ts(b["valid_from"]), key  # never overlapping
            touching += end == ts(b["valid_from"])
        assert sum(1 for r in rs if not r["valid_to"]) <= 1, key
    start = dt.datetime(2026, 9, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    changed = [r for r in last.values() if ts(r["valid_from"]) >= start]
    assert touching >= 10 and len(changed) >= 10  # rates change during the period
    scopes = Counter(r["scope"] for r in last.values())
    assert set(scopes) == set(C.RULE_SCOPES)
    skus = {s["sku_id"]: s for s in data["skus"]}
    self_merchants = {s["merchant_id"] for s in skus.values() if s["is_self_operated"] == "true"}
    for r in last.values():
        rate = Decimal(r["rate"])
        if r["scope"] == "category":
            assert rate <= Decimal("0.02")
        elif r["scope"] == "merchant" or skus[r["sku_id"]]["is_self_operated"] == "false":
            assert rate == 0 or Decimal("0.03") <= rate <= Decimal("0.30"), r
            assert r["merchant_id"] not in self_merchants
    assert any(Decimal(r["rate"]) == 0 for r in last.values())


# -- realism targets ----------------------------------------------------------------------
def test_promoters_platforms_inviters_statuses(data):
    last = {k[0]: v for k, v in latest(data["promoters"], ("promoter_id",), "updated_at").items()}
    n = len(last)
    assert 250 <= n <= 400  # tiny: a few hundred
    plat = Counter(p["platform"] for p in last.values())
    assert abs(plat["fenxiang"] / n - 0.90) < 0.05
    assert abs(plat["jingxiaoge"] / n - 0.055) < 0.035
    assert plat["jingxiaofu"] + plat["yundian"] > 0
    fx_roles = Counter(p["role"] for p in last.values() if p["platform"] == "fenxiang")
    assert (fx_roles["mom"] + fx_roles["micro_merchant"]) / plat["fenxiang"] > 0.75
    assert {p["role"] for p in last.values() if p["platform"] == "jingxiaoge"} <= {
        "courier",
        "other",
    }
    fx = [p for p in last.values() if p["platform"] == "fenxiang"]
    assert sum(bool(p["inviter_id"]) for p in fx) / len(fx) > 0.7
    # inviters are earlier promoters: no loops when mess is off, chains of several generations
    depth = {}
    for pid in sorted(last):
        inv = last[pid]["inviter_id"]
        if inv:
            assert inv < pid and ts(last[inv]["joined_at"]) <= ts(last[pid]["joined_at"])
        depth[pid] = depth[inv] + 1 if inv else 0
    assert max(depth.values()) >= 4
    assert sum(d >= 3 for d in depth.values()) >= 10
    status = Counter(p["status"] for p in last.values())
    assert status["suspended"] >= 1 and status["terminated"] >= 1
    assert status["active"] / n > 0.9
    # status changes during the period are new versions with a later updated_at
    versions = Counter(p["promoter_id"] for p in data["promoters"])
    assert sum(v > 1 for v in versions.values()) >= 3
    # joined before the start: the programme has history
    assert sum(local_date(p["joined_at"]) < START.isoformat() for p in last.values()) / n > 0.8


def test_groups_sizes_and_lifecycle(data):
    groups = latest(data["groups"], ("group_id",), "snapshot_date")
    promoters = {p["promoter_id"] for p in data["promoters"]}
    assert 0.8 < len(groups) / len(promoters) < 1.2  # about one per promoter
    alive = [g for g in groups.values() if not g["dissolved_at"]]
    assert all(50 <= int(g["member_count"]) <= 500 for g in alive)
    dissolved = [g for g in groups.values() if g["dissolved_at"]]
    assert 0.01 < len(dissolved) / len(groups) < 0.15
    created_in_period = [
        g for g in groups.values() if local_date(g["created_at"]) >= START.isoformat()
    ]
    assert len(created_in_period) >= 10


def test_buyers_gender_tiers_cities_phones(data):
    buyers = data["buyers"]
    n = len(buyers)
    g = Counter(b["gender"] for b in buyers)
    assert abs(g["F"] / n - 0.60) < 0.03 and g["U"] > 0
    tiers = Counter(b["city_tier"] for b in buyers)
    assert abs(tiers["1"] / n - 0.26) < 0.03
    assert abs(tiers["6"] / n - 0.18) < 0.03
    assert all(tiers[t] / n > 0.05 for t in "2345")
    assert all(b["city"] and not b["city"].isascii() for b in buyers)
    assert any(b["city"] in ("北京", "上海", "成都") for b in buyers)
    assert all(re.fullmatch(r"1[3-9]\d{9}", b["phone"]) for b in buyers)
    assert len({b["phone"] for b in buyers}) == n


def test_skus_mix_titles_and_gmv_split(data, tiny_landing):
    skus = data["skus"]
    pop = [s for s in skus if s["is_self_operated"] == "false"]
    assert 0.6 < len(pop) / len(skus) < 0.9  # POP lines the majority by count
    top3 = [c for c, _ in Counter(s["category"] for s in skus).most_common(3)]
    assert set(top3) == {"fresh_food", "home", "underwear"}
    self_cats = Counter(s["category"] for s in skus if s["is_self_operated"] == "true")
    assert {c for c, _ in self_cats.most_common(2)} == {"appliances", "electronics"}
    assert any("," in s["title"] for s in skus) and any('"' in s["title"] for s in skus)
    assert any("\n" in s["title"] for s in skus)
    assert all(not s["title"].isascii() for s in skus)
    raw = (tiny_landing / "skus" / START.isoformat() / "part-0000.csv").read_text()
    assert '""' in raw  # quotes inside a quoted field are doubled
    rr = [Decimal(s["positive_review_rate"]) for s in skus if s["positive_review_rate"]]
    assert min(rr) >= 0 and max(rr) <= 1 and len(rr) < len(skus)
    self_op = {s["sku_id"] for s in skus if s["is_self_operated"] == "true"}
    gmv = Counter()
    for o in data["orders"]:
        gmv[o["sku_id"] in self_op] += Decimal(o["paid_amount"])
    share = gmv[True] / (gmv[True] + gmv[False])
    assert 0.25 < share < 0.6  # GMV roughly split although self-operated lines are few
    lines_self = sum(o["sku_id"] in self_op for o in data["orders"]) / len(data["orders"])
    assert lines_self < 0.2


def test_orders_shape(data):
    orders = data["orders"]
    per_order = Counter(o["order_id"] for o in orders)
    assert 0.7 < sum(n == 1 for n in per_order.values()) / len(per_order) < 0.9
    assert max(per_order.values()) >= 3
    parents = {o["parent_order_id"] for o in orders if o["parent_order_id"]}
    assert parents and len(parents) / len(per_order) < 0.1  # a few split orders
    ids = {o["order_id"] for o in orders}
    assert not parents & ids  # exports hold leaf orders only
    per_day = Counter(o["_day"] for o in orders)
    assert 120 < sum(per_day.values()) / DAYS < 400  # "a couple of hundred lines a day"


def test_order_events_lifecycle_rates(data):
    sep = {
        (o["order_id"], o["line_no"]): o for o in data["orders"] if o["ordered_at"] < "2026-10-01"
    }
    ev = defaultdict(list)
    for e in data["order_events"]:
        ev[(e["order_id"], e["line_no"])].append(e)
    n = len(sep)
    kinds = {k: Counter(e["event"] for e in ev[k]) for k in sep}
    assert all(c["paid"] == 1 for c in kinds.values())
    cancelled = [k for k, c in kinds.items() if c["cancelled"]]
    refunded = [k for k, c in kinds.items() if c["refunded"]]
    completed = [k for k, c in kinds.items() if c["completed"]]
    assert 0.03 < len(cancelled) / n < 0.07  # about 5 %
    assert 0.03 <= len(refunded) / n <= 0.08  # 3-8 %
    assert len(completed) / n > 0.85
    assert not any(kinds[k]["completed"] or kinds[k]["refunded"] for k in cancelled)
    delays, late, partial, full, no_amount = [], 0, 0, 0, 0
    for k in sep:
        t0 = ts(sep[k]["ordered_at"])
        done = [ts(e["event_at"]) for e in ev[k] if e["event"] == "completed"]
        if done:
            delays.append((done[0] - t0).total_seconds() / 86400)
        for e in ev[k]:
            if e["event"] != "refunded":
                continue
            if not e["amount"]:
                no_amount += 1
            elif Decimal(e["amount"]) < Decimal(sep[k]["paid_amount"]):
                partial += 1
            else:
                full += 1
            if done and (ts(e["event_at"]) - done[0]).days >= 20:
                late += 1
    assert min(delays) >= 2 and max(delays) <= 10
    assert partial and full and no_amount and late >= 5
    no_id = sum(not e["event_id"] for e in data["order_events"]) / len(data["order_events"])
    assert 0.02 < no_id < 0.1  # event_id on most events, empty on some


def test_last_click_attribution_matters(db):
    n, attributed, organic, avg_clicks = db.execute("""
        select count(*), count(link_id), count(*) filter (where link_id is null),
               avg(n_clicks) filter (where link_id is not null) from attribution""").fetchone()
    assert 0.02 < organic / n < 0.2  # some organic orders
    assert avg_clicks >= 2  # several clicks per order by the buyer
    contested = db.execute("""
        with ord as (select order_id, buyer_id, lt(ordered_at) t from orders where line_no = '1')
        select count(*) from (
            select ord.order_id from ord join clicks c on c.buyer_id = ord.buyer_id
                and lt(c.clicked_at) <= ord.t and lt(c.clicked_at) > ord.t - interval 15 day
            join links l using (link_id)
            group by 1 having count(distinct l.promoter_id) >= 2)""").fetchone()[0]
    assert contested / attributed > 0.1  # other promoters' clicks in the window
    outside = db.execute("""
        with ord as (select order_id, buyer_id, lt(ordered_at) t from orders where line_no = '1')
        select count(distinct a.order_id) from attribution a join ord using (order_id)
        join clicks c on c.buyer_id = ord.buyer_id and lt(c.clicked_at) <= ord.t - interval 15 day
            and lt(c.clicked_at) > ord.t - interval 30 day
        where a.link_id is null""").fetchone()[0]
    assert outside > 0  # clicks only outside the window: organic
    no_click = db.execute("""
        select count(*) from orders o where line_no = '1' and not exists (
            select 1 from clicks c where c.buyer_id = o.buyer_id
            and lt(c.clicked_at) <= lt(o.ordered_at))""").fetchone()[0]
    assert no_click > 0


def test_activity_is_skewed_so_tiers_and_small_payouts_exist(db):
    per_month = db.execute("""
        with m as (
            select a.promoter_id, strftime(a.t, '%Y-%m') mon, sum(o.paid_amount::decimal(18,2)) paid
            from attribution a join orders o using (order_id)
            where a.promoter_id is not null group by all)
        select mon, count(*) filter (where paid >= 5000), count(*) filter (where paid >= 20000),
               count(*) filter (where paid < 100), count(*)
        from m where mon in ('2026-09', '2026-10') group by 1 order by 1""").fetchall()
    assert [r[0] for r in per_month] == ["2026-09", "2026-10"]
    for mon, t2, t3, small, total in per_month:
        assert 3 <= t2 <= 0.3 * total, mon  # a handful of T2+ promoters
        assert t3 >= 1, mon
        assert small >= 5, mon  # earn only a few CNY: payouts below 10 CNY
    # about one attributed order per group per day, many dead groups, a few very active
    groups, active, top_share = db.execute("""
        with g as (select group_id, count(*) n from attribution
                   where group_id is not null and t >= '2026-10-01' and t < '2026-11-01' group by 1)
        select (select count(distinct group_id) from groups where dissolved_at is null),
               count(*), max(n) / sum(n) from g""").fetchone()
    assert active / groups < 0.8  # dead groups: no orders for a month
    assert top_share > 0.03
    per_group_day = (
        db.execute("""select count(*) / 31 from attribution
        where t >= '2026-10-01' and t < '2026-11-01'""").fetchone()[0]
        / groups
    )
    assert 0.3 < per_group_day < 2


# -- determinism, formats, mess -------------------------------------------------------------
def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = (
        _digests(Path(tmp_path / "a"))
        if generate(tmp_path / "a", "2026-09-01", 6, seed=3)
        else None
    )
    b = _digests(Path(tmp_path / "b")) if generate(tmp_path / "b", START, 6, seed=3) else None
    assert a == b and len(a) >= 6 * 6
    c = (
        _digests(Path(tmp_path / "c"))
        if generate(tmp_path / "c", "2026-09-01", 6, seed=4)
        else None
    )
    daily = [k for k in a if k.split("/")[0] in ("clicks", "orders", "order_events")]
    assert len(daily) == 6 * 3 and all(a[k] != c.get(k) for k in daily)


def test_parquet_holds_the_same_rows(tmp_path):
    import pyarrow.parquet as pq

    generate(tmp_path / "csv", "2026-09-01", 3, seed=3, fmt="csv")
    generate(tmp_path / "pq", "2026-09-01", 3, seed=3, fmt="parquet")
    for export in C.EXPORT_NAMES:
        files = sorted((tmp_path / "pq" / export).glob("*/*.parquet"))
        assert [f.parent.name for f in files] == [
            f.parent.name for f in sorted((tmp_path / "csv" / export).glob("*/*.csv"))
        ]
        rows = [r for f in files for r in pq.read_table(f).to_pylist()]
        expected = [
            {k: (v or None) for k, v in r.items() if not k.startswith("_")}
            for r in read_export(tmp_path / "csv", export)
        ]
        assert pq.read_table(files[0]).column_names == C.EXPORTS[export].column_names
        assert rows == expected, export


def test_mess_off_has_no_bad_rows(tiny_landing):
    assert all(v == 0 for v in detect_mess(tiny_landing).values()), detect_mess(tiny_landing)


def test_mess_on_has_every_documented_kind(tmp_path):
    summary = generate(tmp_path, "2026-09-01", 16, scale="tiny", seed=5, mess=True)
    found = detect_mess(tmp_path)
    assert all(v > 0 for v in found.values()), found
    # exactly one GB18030 file: day 1's skus, not valid UTF-8 but valid GB18030
    gb = tmp_path / "skus" / "2026-09-01" / "part-0000.csv"
    with pytest.raises(UnicodeDecodeError):
        gb.read_bytes().decode("utf-8")
    assert "阳澄湖" in gb.read_bytes().decode("gb18030") or "京" in gb.read_bytes().decode(
        "gb18030"
    )
    assert found["gb18030_file"] == 1 and found["duplicate_file"] == 1
    # the summary reports what was injected; row-level kinds stay rare
    for kind, n in found.items():
        if kind not in ("unknown_link", "inviter_loop"):  # detected == injected
            assert f"{kind}={n}" in summary, (kind, n, summary)
    orders = read_export(tmp_path, "orders")
    bad = found["negative_paid_amount"] + found["money_3_decimals"] + found["missing_required"]
    assert bad / len(orders) < 0.01


def test_mess_default_is_off_for_tiny_only(tmp_path):
    assert "mess=off" in generate(tmp_path / "t", "2026-09-01", 1)
    assert "mess=on" in generate(tmp_path / "d", "2026-09-01", 1, scale="demo")


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, "2026-09-01", 1, scale="huge")
    with pytest.raises(ValueError):
        generate(tmp_path, "2026-09-01", 1, fmt="xlsx")
    with pytest.raises(ValueError):
        generate(tmp_path, "2026-09-01", 0)


def test_probabilities_table_documents_every_knob():
    """Every knob of the one table has a meaning and a source; shares are distributions over
    the contract's values, in its order."""
    from supernova.generator import probabilities

    rows = probabilities.rows()
    assert len(rows) >= 100
    for name, value, meaning, source in rows:
        assert meaning.strip() and source.strip(), name
        if not name.endswith(("_share", "_by_platform", "_by_role")):
            continue
        if isinstance(value, Mapping) and isinstance(next(iter(value.values())), tuple):
            distributions = list(value.values())  # one per platform / role
        elif isinstance(value, Mapping):
            distributions = [list(value.values())]
        elif isinstance(value, tuple):
            distributions = [value]
        else:
            continue  # a single probability
        for shares in distributions:
            assert abs(sum(shares) - 1) < 1e-9, (name, shares)
    knobs = probabilities.KNOBS
    assert tuple(knobs.role_share_by_platform) == C.PLATFORMS
    assert tuple(knobs.gender_share_by_role) == C.ROLES
    assert all(len(v) == len(C.ROLES) for v in knobs.role_share_by_platform.values())
    assert len(knobs.platform_share) == len(C.PLATFORMS)
    assert tuple(knobs.category_rate_permille) == C.CATEGORIES
    assert tuple(knobs.price_median_yuan) == C.CATEGORIES
    assert set(knobs.pop_category_share) | set(knobs.self_operated_category_share) == set(
        C.CATEGORIES
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        knobs.order_cancelled = 0.5
    with pytest.raises(TypeError):
        knobs.category_rate_permille["food"] = 0


def test_docs_hold_the_current_probability_table():
    from supernova.generator import probabilities

    doc = (Path(__file__).resolve().parents[1] / "docs" / "generator.md").read_text("utf-8")
    start = doc.index("<!-- probability table: generated, do not edit by hand -->\n")
    end = doc.index("<!-- end of probability table -->")
    copy = doc[start:end].split("\n", 1)[1]
    assert copy == probabilities.markdown()
