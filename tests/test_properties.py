"""Property-based tests (hypothesis).

1. Ingestion parsing/validation of money, rates, timestamps and booleans: the very SQL
   that ingestion runs (`ingestion.validate.validation_sql`) over batches of generated
   values, against oracles written from exports.md: valid values load exactly (no
   silent rounding), invalid ones are quarantined with a reason naming the column,
   nothing crashes. One property goes through the whole `ingest()` (CSV writer, reader,
   trimming, quoting).
2. Money math: the project's dbt macros (`round_money`, `money_type`, `withholding_tax`)
   compiled once by dbt (`dbt compile --inline`), evaluated by DuckDB on generated
   inputs, against a Python Decimal (ROUND_HALF_UP) reference implementation of
   settlement-rules §2, §3 and §6: C, F, P, L1, L2, R and F + L1 + L2 + R = C exactly;
   round() is half away from zero; tax per the three brackets.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ingestion_cases.helpers import VALID, csv_text, query, write

from ingestion import ingest
from ingestion.validate import validation_sql
from supernova import settings as sn_settings
from supernova.contract import EXPORTS

SHANGHAI = ZoneInfo("Asia/Shanghai")
TRIM = " \t\r\n\f\v\u00a0\u3000"  # exports.md: surrounding whitespace is trimmed (docs/ingestion.md list)
CENT = Decimal("0.01")
MAX_MONEY = Decimal("9999999999999999.99")  # DECIMAL(18,2)
FAST = settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def r2(x: Decimal) -> Decimal:
    """Round half away from zero to 0.01 (Python's ROUND_HALF_UP is away from zero)."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------- 1. ingestion


_COMPUTE = duckdb.connect(":memory:")
_COMPUTE.execute("SET TimeZone = 'Asia/Shanghai'")


def validate(export: str, column: str, values: list[str]) -> list[tuple]:
    """Run ingestion's validation SQL over rows that are valid except `column`.
    Returns (typed value, reason) per value, in order."""
    ex = EXPORTS[export]
    base = VALID[export]
    names = [c.name for c in ex.stored_columns]
    cols = {
        n: pa.array(
            [values[i] if n == column else base.get(n, "") for i in range(len(values))], pa.string()
        )
        for n in names
    }
    cols["_line_no"] = pa.array(range(2, len(values) + 2), pa.int64())
    src = pa.Table.from_arrays(list(cols.values()), names=list(cols))
    _COMPUTE.register("src", src)
    try:
        sql = validation_sql(ex, set(names))
        rows = _COMPUTE.execute(
            f'SELECT "{column}", _reason FROM ({sql}) ORDER BY _line_no'
        ).fetchall()
    finally:
        _COMPUTE.unregister("src")
    assert len(rows) == len(values)
    return rows


money_strings = st.decimals(min_value=0, max_value=MAX_MONEY, places=2).flatmap(
    lambda d: st.sampled_from(
        [
            f"{d:.2f}",
            f"{d:.2f}".rstrip("0").rstrip(".") or "0",
            f" {d:.2f}\t",
            f"\u3000{d:.2f}\u00a0",
            f"{d:.2f}".replace(".00", ""),
        ]
    )
)


@FAST
@given(st.lists(money_strings, min_size=1, max_size=60))
@example(["0", "0.00", "-0.00", "9999999999999999.99", "000123.4"])
def test_valid_money_loads_exactly(values):
    for v, (typed, reason) in zip(values, validate("orders", "paid_amount", values)):
        assert reason == "", (v, reason)
        assert typed == Decimal(v.strip(TRIM)), v  # exact, never rounded


def money_oracle(s: str):
    """exports.md: CNY decimal string, at most 2 decimals, no separators/currency signs,
    never negative; DECIMAL(18,2) holds 16 integer digits. -> Decimal | 'missing' | 'invalid' | 'negative'."""
    t = s.strip(TRIM)
    if t == "":
        return "missing"
    m = re.fullmatch(r"(-?)([0-9]+)(\.[0-9]{1,2})?", t)
    if not m or len(m.group(2)) > 16:
        return "invalid"
    d = Decimal(t)
    if m.group(1) and d != 0:
        return "negative"
    return d


@FAST
@given(
    st.lists(
        st.one_of(
            st.text(max_size=25),
            st.from_regex(r"-?[0-9]{0,18}(\.[0-9]{0,4})?", fullmatch=True),
            st.sampled_from(
                [
                    "1,299.00",
                    "¥12",
                    "1e3",
                    "NaN",
                    "inf",
                    "0x10",
                    "12.345",
                    "+5",
                    "١٢٣",
                    "１２",
                    "5.",
                    ".5",
                    "--1",
                    "1 000",
                ]
            ),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_any_money_text_is_loaded_exactly_or_quarantined(values):
    for v, (typed, reason) in zip(values, validate("orders", "paid_amount", values)):
        want = money_oracle(v)
        if isinstance(want, Decimal):
            assert reason == "" and typed == want, (v, typed, reason)
        else:
            assert typed is None or want == "negative", (v, typed)
            assert reason.startswith("paid_amount: "), (v, reason)
            assert {
                "missing": "missing required value",
                "invalid": "is not a CNY amount",
                "negative": "is negative",
            }[want] in reason, (v, reason)


@FAST
@given(
    st.lists(
        st.one_of(
            st.decimals(min_value=0, max_value=Decimal("0.9"), places=6).map(str),
            st.decimals(min_value=0, max_value=Decimal("0.9"), places=3).map(
                lambda d: f"{d}".rstrip("0")
            ),
            st.text(alphabet="0123456789.-+e% ", max_size=12),
        ),
        min_size=1,
        max_size=60,
    )
)
@example(["0", "0.9", "0.900000", "0.9000001", "0.95", "-0", ".5", "5.", "0.1234567", "1e-1"])
def test_rates_load_exactly_or_are_quarantined(values):
    for v, (typed, reason) in zip(values, validate("commission_rules", "rate", values)):
        t = v.strip(TRIM)
        m = re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", t)
        if t == "":
            assert "rate: missing required value" in reason
            continue
        if not m:
            assert typed is None and "is not a decimal number" in reason, (v, reason)
            continue
        d = Decimal(t)
        decimals = len(t.split(".", 1)[1]) if "." in t else 0
        if decimals > 6:
            assert typed is None and "has more than 6 decimals" in reason, (v, reason)
        elif not (0 <= d <= Decimal("0.9")):
            assert "is out of range 0..0.9" in reason, (v, reason)
        else:
            assert reason == "" and typed == d, (v, typed, reason)  # exact, never rounded


offsets = st.sampled_from(
    [None, "Z", "+08:00", "+0800", "+08", "-05:00", "+05:45", "+14:00", "-12:00"]
)


def _tz(off: str | None):
    if off is None:
        return SHANGHAI
    if off == "Z":
        return UTC
    sign = 1 if off[0] == "+" else -1
    digits = off[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))


@FAST
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
            offsets,
            st.sampled_from(["T", " "]),
            st.sampled_from(["s", "ms", "min"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_timestamps_are_converted_to_naive_shanghai_time(items):
    values, expected = [], []
    for naive, off, sep, prec in items:
        naive = naive.replace(microsecond=(naive.microsecond // 1000) * 1000 if prec == "ms" else 0)
        if prec == "min":
            naive = naive.replace(second=0)
        fmt = {"s": "%Y-%m-%d{}%H:%M:%S", "ms": "%Y-%m-%d{}%H:%M:%S.%f", "min": "%Y-%m-%d{}%H:%M"}[
            prec
        ]
        text = naive.strftime(fmt.format(sep))
        if prec == "ms":
            text = text[:-3]
        values.append(text + (off or ""))
        expected.append(naive.replace(tzinfo=_tz(off)).astimezone(SHANGHAI).replace(tzinfo=None))
    for v, want, (typed, reason) in zip(values, expected, validate("clicks", "clicked_at", values)):
        assert reason == "" and typed == want, (v, typed, want, reason)


@FAST
@given(st.lists(st.text(max_size=30), min_size=1, max_size=60))
@example(["2026-02-30T00:00:00", "2026-10-01", "2026-10-01T24:00", "2026-10-01T10:00:00+8", "now"])
def test_timestamp_text_never_crashes_and_bad_values_are_quarantined(values):
    for v, (typed, reason) in zip(values, validate("clicks", "clicked_at", values)):
        if typed is None:
            assert reason.startswith("clicked_at: "), (v, reason)
        else:
            assert reason == ""
            t = v.strip(TRIM)
            assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*", t), v
            t = t.replace("z", "Z").replace(" ", "T", 1)
            day_end = re.fullmatch(r"(.{10})T24:00(:00(\.0+)?)?(.*)", t)  # ISO 8601 end of day
            if day_end:
                t = day_end.group(1) + "T00:00:00" + day_end.group(4)
            parsed = datetime.fromisoformat(t) + (timedelta(days=1) if day_end else timedelta())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=SHANGHAI)
            assert typed == parsed.astimezone(SHANGHAI).replace(tzinfo=None), (v, typed)


@FAST
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["true", "false", "1", "0"])
            .flatmap(
                lambda b: st.tuples(
                    st.just(b),
                    st.lists(st.booleans(), min_size=len(b), max_size=len(b)),
                    st.sampled_from(["", " ", "\t", "\u3000"]),
                )
            )
            .map(
                lambda t: t[2] + "".join(c.upper() if u else c for c, u in zip(t[0], t[1])) + t[2]
            ),
            st.text(max_size=8),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_booleans(values):
    for v, (typed, reason) in zip(values, validate("skus", "is_self_operated", values)):
        t = v.strip(TRIM).lower()
        if t in ("true", "1"):
            assert typed is True and reason == "", v
        elif t in ("false", "0"):
            assert typed is False and reason == "", v
        elif t == "":
            assert "is_self_operated: missing required value" in reason
        else:
            assert typed is None and "is not a boolean" in reason, (v, reason)


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2),
            st.text(st.characters(blacklist_characters="\x00"), max_size=6),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_money_round_trips_through_a_real_ingest(tmp_path_factory, items):
    """Whole path: CSV writer (quoting), reader, trim, validation, Parquet, raw view."""
    base = tmp_path_factory.mktemp("prop-ingest")
    rows = []
    for i, (d, junk) in enumerate(items):
        rows.append(dict(VALID["orders"], order_id=f"O{i}", paid_amount=f" {d} "))
        rows.append(
            dict(VALID["orders"], order_id=f"X{i}", paid_amount=f"{d}{junk}x")
        )  # always invalid
    write(base / "l", "orders", "o.csv", csv_text(rows))
    res = ingest(base / "l", base / "w")
    [f] = res.files
    # a bare CR in the junk is not quoted by csv.writer (lineterminator "\n") and splits
    # that record in two ragged rows: both quarantined, so count ">=" for quarantine
    assert f.rows_loaded == len(items) and f.rows_quarantined >= len(items)
    assert f.rows_read == f.rows_loaded + f.rows_quarantined
    got = dict(query(base / "w", "SELECT order_id, paid_amount FROM raw.orders"))
    assert got == {f"O{i}": d for i, (d, _) in enumerate(items)}


# ----------------------------------------------------------------------------- 2. money math

CFG = yaml.safe_load((sn_settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))[
    "vars"
]["supernova"]

ENTITLEMENT_SQL = """
with c as (select *, {{ round_money('base * rate') }} as c from input),
f as (select *, {{ round_money('c * fee') }} as f from c),
s as (
    select *,
        cast(c - f as {{ money_type() }}) as p,
        {{ round_money('(c - f) * s1') }} as l1,
        case when has_l2 then {{ round_money('(c - f) * s2') }} else cast(0 as {{ money_type() }}) end as l2
    from f
)
select base, rate, fee, s1, s2, has_l2, c, f, p, l1, l2, cast(p - l1 - l2 as {{ money_type() }}) as r, x,
       {{ withholding_tax('x') }} as tax
from s
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The entitlement chain and the tax, compiled by dbt from the project's macros."""
    from ingestion import ensure_raw_schema
    from supernova.dbt_runner import dbt_invoke

    wh = tmp_path_factory.mktemp("compile-wh")
    ensure_raw_schema(wh)
    res = dbt_invoke(wh, ["compile", "--inline", ENTITLEMENT_SQL], {"settlement_month": "2026-09"})
    assert res.success, res.exception
    sql = res.result.results[0].node.compiled_code
    assert "round(" in sql and "{{" not in sql
    return sql


def evaluate(sql: str, rows: list[dict]) -> list[dict]:
    con = duckdb.connect(":memory:")
    try:
        t = pa.table(
            {
                "base": pa.array([r["base"] for r in rows], pa.decimal128(18, 2)),
                "rate": pa.array([r["rate"] for r in rows], pa.decimal128(9, 6)),
                "fee": pa.array([r["fee"] for r in rows], pa.decimal128(9, 6)),
                "s1": pa.array([r["s1"] for r in rows], pa.decimal128(9, 6)),
                "s2": pa.array([r["s2"] for r in rows], pa.decimal128(9, 6)),
                "has_l2": pa.array([r["has_l2"] for r in rows], pa.bool_()),
                "x": pa.array([r["x"] for r in rows], pa.decimal128(18, 2)),
            }
        )
        con.register("input_arrow", t)
        con.execute("create view input as select * from input_arrow")
        cur = con.execute(f"select * from ({sql}) order by all")
        cols = [d[0] for d in cur.description]
        out = [dict(zip(cols, r)) for r in cur.fetchall()]
        assert len(out) == len(rows)
        return out
    finally:
        con.close()


def reference_entitlement(base, rate, fee, s1, s2, has_l2) -> dict:
    c = r2(base * rate)
    f = r2(c * fee)
    p = c - f
    l1 = r2(p * s1)
    l2 = r2(p * s2) if has_l2 else Decimal("0.00")
    return {"c": c, "f": f, "p": p, "l1": l1, "l2": l2, "r": p - l1 - l2}


def reference_tax(x: Decimal) -> Decimal:
    """settlement-rules §6, literally."""
    if x <= 800:
        taxable = Decimal(0)
    elif x <= 4000:
        taxable = x - 800
    else:
        taxable = x * Decimal("0.8")
    if taxable <= 20000:
        return r2(taxable * Decimal("0.20"))
    if taxable <= 50000:
        return r2(taxable * Decimal("0.30") - 2000)
    return r2(taxable * Decimal("0.40") - 7000)


SHARES = [
    (Decimal(v["level1"]), Decimal(v.get("level2", "0"))) for v in CFG["split_shares"].values()
]
FEE = Decimal(CFG["platform_fee_rate"])
rates = st.decimals(min_value=0, max_value=Decimal("0.9"), places=6)
bases = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("100000"), places=2),
    st.decimals(min_value=0, max_value=Decimal("1"), places=2),
)
entitlement_inputs = st.one_of(
    # the configured fee and shares
    st.tuples(bases, rates, st.just(FEE), st.sampled_from(SHARES), st.booleans()),
    # any fee and any shares with level1 + level2 <= 1
    st.tuples(
        bases,
        rates,
        rates,
        st.decimals(min_value=0, max_value=1, places=6).flatmap(
            lambda a: st.tuples(st.just(a), st.decimals(min_value=0, max_value=1 - a, places=6))
        ),
        st.booleans(),
    ),
)
amounts = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("100000"), places=2),
    st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000000000"), places=2),
    st.sampled_from(
        [
            Decimal(x)
            for x in (
                "800",
                "800.01",
                "4000",
                "4000.01",
                "25000",
                "25000.01",
                "62500",
                "62500.01",
                "0.01",
            )
        ]
    ),
)


@FAST
@given(st.lists(st.tuples(entitlement_inputs, amounts), min_size=1, max_size=80))
def test_split_identity_and_tax_match_the_reference(compiled, items):
    rows = [
        {"base": b, "rate": rt, "fee": fee, "s1": sh[0], "s2": sh[1], "has_l2": l2, "x": x}
        for (b, rt, fee, sh, l2), x in items
    ]
    result = evaluate(compiled, rows)
    for got in result:
        want = reference_entitlement(
            got["base"], got["rate"], got["fee"], got["s1"], got["s2"], got["has_l2"]
        )
        for k, v in want.items():
            assert got[k] == v, (k, got, want)
        assert got["f"] + got["l1"] + got["l2"] + got["r"] == got["c"]  # §3, exactly
        assert got["c"] <= got["base"] and got["c"] >= 0
        if (got["fee"], (got["s1"], got["s2"])) in [(FEE, s) for s in SHARES]:
            assert got["r"] >= 0, got  # the configured shares never make the operator pay
    # rows come back ordered by value: compare the taxes as (x, tax) pairs
    got_tax = sorted((r["x"], r["tax"]) for r in result)
    want_tax = sorted((x, reference_tax(x)) for _, x in items)
    assert got_tax == want_tax


@FAST
@given(
    st.lists(
        st.decimals(
            min_value=Decimal("-99999999.999999"), max_value=Decimal("99999999.999999"), places=6
        ),
        min_size=1,
        max_size=80,
    )
)
@example(
    [
        Decimal("0.005"),
        Decimal("-0.005"),
        Decimal("0.015"),
        Decimal("-0.015"),
        Decimal("2.675"),
        Decimal("0.004999"),
        Decimal("-0.004999"),
    ]
)
def test_round_money_is_half_away_from_zero(compiled, values):
    # the round_money expression as dbt compiled it, applied to DECIMAL(18,6) values
    expr = re.search(r"cast\(round\(base \* rate, 2\) as decimal\(18,2\)\)", compiled)
    assert expr, "round_money changed shape: update this test"
    con = duckdb.connect(":memory:")
    try:
        t = pa.table({"v": pa.array(values, pa.decimal128(18, 6))})
        con.register("t", t)
        got = [
            r[0] for r in con.execute("select cast(round(v, 2) as decimal(18,2)) from t").fetchall()
        ]
    finally:
        con.close()
    assert got == [r2(v) for v in values]


def test_absurd_amounts_overflow_loudly_not_silently(compiled):
    """DECIMAL(18,2) x DECIMAL(9,6) stays in 18 digits in DuckDB: from about 1.25e10 CNY
    the tax (x * 0.8) and from base x rate >= 1e10 the commission overflow. Ingestion
    accepts money up to 16 integer digits, so one absurd (but valid) paid_amount makes
    the month's dbt build fail (reported as F6). Pinned here: it fails loudly, it never
    yields a wrong figure."""
    ok = {
        "base": Decimal("1000000000.00"),
        "rate": Decimal("0.9"),
        "fee": FEE,
        "s1": SHARES[0][0],
        "s2": SHARES[0][1],
        "has_l2": True,
        "x": Decimal("12499999999.99"),
    }
    [got] = evaluate(compiled, [ok])
    assert got["c"] == Decimal("900000000.00") and got["tax"] == reference_tax(ok["x"])
    with pytest.raises(duckdb.OutOfRangeException):
        evaluate(compiled, [dict(ok, x=Decimal("12500000000.00"))])
    with pytest.raises(duckdb.OutOfRangeException):
        evaluate(compiled, [dict(ok, base=Decimal("20000000000.00"))])


# ----------------------------------------------------------------------------- 3. small-cell suppression and exact ratios
#
# The buyer marts' suppression macro (`marts_suppressed_cells`), compiled by dbt and
# evaluated by DuckDB on generated partitions: whatever the cells, no suppressed cell's
# buyers, orders or gmv equals total - sum(visible cells) of its partition, a total under
# 10 buyers is itself hidden, and every visible figure is exact (aov and shares half away
# from zero in DECIMAL). The same subtraction runs over the built marts and the run
# report in tests/test_marts.py and tests/test_reports.py (`assert_no_cell_recoverable`).

SUPPRESSION_SQL = """
with cells as (select * from input_cells),
totals as (select * from input_totals),
{{ marts_suppressed_cells('cells', 'totals', ['part'], ['dim'], ['integer']) }}
"""


@pytest.fixture(scope="module")
def compiled_suppression(tmp_path_factory):
    from ingestion import ensure_raw_schema
    from supernova.dbt_runner import dbt_invoke

    wh = tmp_path_factory.mktemp("compile-suppression")
    ensure_raw_schema(wh)
    res = dbt_invoke(wh, ["compile", "--inline", SUPPRESSION_SQL], {"settlement_month": "2026-09"})
    assert res.success, res.exception
    return res.result.results[0].node.compiled_code


def suppress(sql: str, cells: list[dict]) -> list[dict]:
    """Cells (part, dim, buyers, new_buyers, orders, gmv) -> the macro's rows. Buyers of
    one partition are in exactly one cell (as tier x gender), so totals are sums."""
    con = duckdb.connect(":memory:")
    try:
        cols = {
            "part": pa.array([c["part"] for c in cells], pa.int32()),
            "dim": pa.array([c["dim"] for c in cells], pa.int32()),
            "buyers": pa.array([c["buyers"] for c in cells], pa.int64()),
            "new_buyers": pa.array([c["new_buyers"] for c in cells], pa.int64()),
            "orders": pa.array([c["orders"] for c in cells], pa.int64()),
            "gmv": pa.array([c["gmv"] for c in cells], pa.decimal128(18, 2)),
        }
        con.register("cells_arrow", pa.table(cols))
        con.execute("create view input_cells as select * from cells_arrow")
        con.execute(
            "create view input_totals as select part, sum(buyers) as buyers, sum(new_buyers) as new_buyers, "
            "sum(orders) as orders, cast(sum(gmv) as decimal(18,2)) as gmv from input_cells group by part"
        )
        cur = con.execute(f"select * from ({sql}) order by part, is_total, dim")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def assert_no_cell_recoverable(
    truth: dict, published: list[dict], metrics=("buyers", "orders", "gmv"), min_buyers=10
):
    """One partition. `truth`: dim -> true metrics of every cell, plus key None for the
    total. `published`: the rows a reader sees (dim None = the total row), metrics empty
    where suppressed. Tries the subtraction total - sum(visible cells) for every metric."""
    total = next((r for r in published if r["dim"] is None), None)
    cells = [r for r in published if r["dim"] is not None]
    assert {r["dim"] for r in cells} == {k for k in truth if k is not None}
    hidden = [r for r in cells if r["suppressed"]]
    for r in cells:
        if truth[r["dim"]]["buyers"] < min_buyers:
            assert r["suppressed"], r
        if r["suppressed"]:
            assert all(r[m] is None for m in metrics), r
    if truth[None]["buyers"] < min_buyers:
        assert total is None or total["suppressed"], total
    if total is None or total["suppressed"] or not hidden:
        return
    for m in metrics:
        residual = total[m] - sum(r[m] for r in cells if not r["suppressed"])
        for h in hidden:
            assert residual != truth[h["dim"]][m], (m, residual, h["dim"], truth)


cell_metrics = st.integers(min_value=1, max_value=40).flatmap(
    lambda b: st.tuples(
        st.just(b),
        st.integers(min_value=0, max_value=b),
        st.integers(min_value=b, max_value=3 * b),
        st.one_of(
            st.just(Decimal("0.00")), st.decimals(min_value=0, max_value=Decimal("5000"), places=2)
        ),
    )
)
partitions = st.lists(st.lists(cell_metrics, min_size=1, max_size=8), min_size=1, max_size=6)


@FAST
@given(partitions)
@example(
    [[(6, 1, 6, Decimal("60.00"))], [(2, 0, 2, Decimal("2.01"))]]
)  # 'unknown' totals of 6 and 2 buyers
@example(
    [[(3, 0, 3, Decimal("0.00")), (20, 5, 20, Decimal("100.00")), (30, 5, 31, Decimal("7.00"))]]
)
@example([[(3, 0, 3, Decimal("9.00")), (12, 5, 20, Decimal("0.00")), (30, 5, 31, Decimal("7.00"))]])
def test_no_suppressed_cell_can_be_recovered_by_subtraction(compiled_suppression, parts):
    cells = [
        {"part": p, "dim": d, "buyers": b, "new_buyers": n, "orders": o, "gmv": g}
        for p, part in enumerate(parts)
        for d, (b, n, o, g) in enumerate(part)
    ]
    rows = suppress(compiled_suppression, cells)
    for p, part in enumerate(parts):
        truth = {d: {"buyers": b, "orders": o, "gmv": g} for d, (b, _, o, g) in enumerate(part)}
        truth[None] = {
            "buyers": sum(x[0] for x in part),
            "orders": sum(x[2] for x in part),
            "gmv": sum((x[3] for x in part), Decimal("0.00")),
        }
        assert_no_cell_recoverable(truth, [r for r in rows if r["part"] == p])


def half_up(x: Decimal, places: str) -> Decimal:
    return x.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@FAST
@given(partitions)
@example([[(10, 1, 2, Decimal("2.01")), (10, 0, 3, Decimal("0.05"))]])  # 2.01 / 2 = 1.005 -> 1.01
def test_aov_and_shares_are_exact_decimals_half_up(compiled_suppression, parts):
    cells = [
        {"part": p, "dim": d, "buyers": b, "new_buyers": n, "orders": o, "gmv": g}
        for p, part in enumerate(parts)
        for d, (b, n, o, g) in enumerate(part)
    ]
    rows = suppress(compiled_suppression, cells)
    for r in rows:
        if r["suppressed"]:
            continue
        part = parts[r["part"]]
        tb, tg = sum(x[0] for x in part), sum((x[3] for x in part), Decimal(0))
        assert isinstance(r["aov"], Decimal)
        assert r["aov"] == half_up(Decimal(r["gmv"]) / r["orders"], "0.01"), r
        if not r["is_total"]:
            assert r["share_of_buyers"] == half_up(Decimal(r["buyers"]) / tb, "0.000001"), r
            assert r["share_of_gmv"] == (half_up(r["gmv"] / tg, "0.000001") if tg else None), r
