"""Vectorised validation and typing of one file's string table, as DuckDB SQL.

`validation_sql(export, present)` returns one SELECT over a relation `src` (the string
columns from `ingestion.readers` plus `_line_no`). It yields every stored contract
column with its storage type, `_line_no`, and `_reason`: '' when the row is valid,
otherwise every problem of the row as "column: problem", joined by "; ".

The connection running it must have `TimeZone = 'Asia/Shanghai'`: a timestamp with an
offset is converted to Shanghai local time, one without is taken as Shanghai local.
"""

from __future__ import annotations

from supernova.contract import (
    BOOL,
    DATE,
    ENUM,
    INT,
    MONEY,
    RATE,
    RAW_SQL_TYPES,
    STRING,
    TIMESTAMP,
    Column,
    Export,
)

# Characters trimmed around every value (incl. NBSP and the ideographic space U+3000).
TRIM_CHARS = " \t\r\n\f\v\u00a0\u3000"

# The offset, when present, must be a real one: within ±14:00 (exports.md "Bad input");
# DuckDB itself would accept e.g. +80:00.
TS_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|z|[+-](0[0-9]|1[0-3])(:?[0-5][0-9])?|[+-]14(:?00)?)?$"
)
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INT_PATTERN = r"^[+-]?[0-9]+$"
MONEY_PATTERN = r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$"
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
RATE_MAX_DECIMALS = 6


def lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _show(v: str) -> str:
    """SQL expression quoting a (trimmed) value for a reason, shortened."""
    return f"'''' || CASE WHEN length({v}) > 40 THEN left({v}, 40) || '…' ELSE {v} END || ''''"


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _says(name: str, v: str, words: str) -> str:
    """Reason expression: "<column>: '<value>'<words>"."""
    return f"{lit(name + ': ')} || {_show(v)} || {lit(words)}"


def _column_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    """(typed expression, [(condition, reason expression)]) for one column.
    `v` is the trimmed value (NULL when empty)."""
    if c.type not in _TYPE_CHECKS:  # pragma: no cover - contract types are closed
        raise ValueError(f"unknown type {c.type}")
    typed, checks = _TYPE_CHECKS[c.type](c, v)
    typed = f"CAST({typed} AS {RAW_SQL_TYPES[c.type]})"
    # value checks only apply to non-empty values; emptiness is the 'required' check
    checks = [(f"{v} IS NOT NULL AND ({cond})", reason) for cond, reason in checks]
    if c.required:
        checks.insert(0, (f"{v} IS NULL", lit(f"{c.name}: missing required value")))
    return typed, checks


def _string_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    return v, []


def _enum_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    allowed = ", ".join(lit(x) for x in c.enum)
    return v, [(f"{v} NOT IN ({allowed})", _says(c.name, v, " is not one of " + ", ".join(c.enum)))]


def _range_words(c: Column) -> str:
    if c.min is not None and c.max is not None:
        return f"{_bound(c.min)}..{_bound(c.max)}"
    return f"≥ {_bound(c.min)}" if c.min is not None else f"≤ {_bound(c.max)}"


def _out_of_range(value: str, c: Column) -> list[str]:
    """Conditions for `value` below the column's min or above its max."""
    rng = []
    if c.min is not None:
        rng.append(f"{value} < {_bound(c.min)}")
    if c.max is not None:
        rng.append(f"{value} > {_bound(c.max)}")
    return rng


def _int_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    ok = f"regexp_full_match({v}, {lit(INT_PATTERN)}) AND try_cast({v} AS INTEGER) IS NOT NULL"
    checks = [(f"NOT ({ok})", _says(c.name, v, " is not an integer"))]
    typed = f"CASE WHEN {ok} THEN CAST({v} AS INTEGER) END"
    rng = _out_of_range(typed, c)
    if rng:
        checks.append(
            (f"({' OR '.join(rng)})", _says(c.name, v, " is out of range " + _range_words(c)))
        )
    return typed, checks


def _money_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    ok = f"regexp_full_match({v}, {lit(MONEY_PATTERN)})"
    typed = f"CASE WHEN {ok} THEN CAST({v} AS DECIMAL(18,2)) END"
    words = " is not a CNY amount (digits with at most 2 decimals, no separators or currency signs)"
    return typed, [
        (f"NOT ({ok})", _says(c.name, v, words)),
        (f"{typed} < 0", _says(c.name, v, " is negative (money is never negative)")),
    ]


def _rate_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    ok = (
        f"regexp_full_match({v}, {lit(NUMBER_PATTERN)}) "
        f"AND try_cast({v} AS DECIMAL(38,10)) IS NOT NULL"
    )
    num = f"CASE WHEN {ok} THEN CAST({v} AS DECIMAL(38,10)) END"
    decimals = f"length(regexp_extract({v}, '\\.([0-9]*)$', 1))"
    checks = [
        (f"NOT ({ok})", _says(c.name, v, " is not a decimal number")),
        (
            f"({ok}) AND {decimals} > {RATE_MAX_DECIMALS}",
            _says(c.name, v, f" has more than {RATE_MAX_DECIMALS} decimals"),
        ),
    ]
    rng = _out_of_range(num, c)
    if rng:
        checks.append(
            (
                f"({' OR '.join(rng)})",
                _says(c.name, v, f" is out of range {_bound(c.min)}..{_bound(c.max)}"),
            )
        )
    typed = (
        f"CASE WHEN ({ok}) AND {decimals} <= {RATE_MAX_DECIMALS} "
        f"AND abs({num}) < 1000 THEN CAST({num} AS DECIMAL(9,6)) END"
    )
    return typed, checks


def _bool_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    typed = (
        f"CASE lower({v}) WHEN 'true' THEN true WHEN '1' THEN true "
        f"WHEN 'false' THEN false WHEN '0' THEN false END"
    )
    return typed, [
        (
            f"lower({v}) NOT IN ('true', 'false', '1', '0')",
            _says(c.name, v, " is not a boolean (true/false/1/0)"),
        )
    ]


def _date_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    ok = f"regexp_full_match({v}, {lit(DATE_PATTERN)}) AND try_cast({v} AS DATE) IS NOT NULL"
    typed = f"CASE WHEN {ok} THEN CAST({v} AS DATE) END"
    return typed, [(f"NOT ({ok})", _says(c.name, v, " is not a date (YYYY-MM-DD)"))]


def _timestamp_checks(c: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    ok = f"regexp_full_match({v}, {lit(TS_PATTERN)}) AND try_cast({v} AS TIMESTAMPTZ) IS NOT NULL"
    typed = f"CASE WHEN {ok} THEN CAST(CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP) END"
    return typed, [(f"NOT ({ok})", _says(c.name, v, " is not an ISO 8601 timestamp"))]


_TYPE_CHECKS = {
    STRING: _string_checks,
    ENUM: _enum_checks,
    INT: _int_checks,
    MONEY: _money_checks,
    RATE: _rate_checks,
    BOOL: _bool_checks,
    DATE: _date_checks,
    TIMESTAMP: _timestamp_checks,
}


def _export_rules(
    export: Export, t: dict[str, str], typed: dict[str, str]
) -> list[tuple[str, str]]:
    """Cross-column rules from the contract's prose."""
    rules: list[tuple[str, str]] = []
    if export.name == "commission_rules":
        for scope in ("sku", "merchant", "category"):
            key = {"sku": "sku_id", "merchant": "merchant_id", "category": "category"}[scope]
            rules.append(
                (
                    f"{t['scope']} = {lit(scope)} AND {t[key]} IS NULL",
                    lit(f"{key}: missing, required when scope is '{scope}'"),
                )
            )
        rules.append(
            (
                (
                    f"{typed['valid_to']} IS NOT NULL AND {typed['valid_from']} IS NOT NULL "
                    f"AND {typed['valid_to']} <= {typed['valid_from']}"
                ),
                (
                    f"'valid_to: ' || {_show(t['valid_to'])} || ' is not after valid_from ' || "
                    f"{_show(t['valid_from'])}"
                ),
            )
        )
    return rules


def validation_sql(export: Export, present: set[str]) -> str:
    """SELECT over `src` producing typed stored columns, `_line_no` and `_reason`."""
    inner = []
    t: dict[str, str] = {}
    for c in export.stored_columns:
        if c.name in present:
            inner.append(
                f"nullif(trim({ident(c.name)}, {lit(TRIM_CHARS)}), '') AS {ident('t_' + c.name)}"
            )
        else:
            inner.append(f"CAST(NULL AS VARCHAR) AS {ident('t_' + c.name)}")
        t[c.name] = ident("t_" + c.name)
    typed: dict[str, str] = {}
    reasons: list[str] = []
    for c in export.stored_columns:
        expr, checks = _column_checks(c, t[c.name])
        typed[c.name] = expr
        reasons += [f"CASE WHEN {cond} THEN {reason} END" for cond, reason in checks]
    reasons += [
        f"CASE WHEN {cond} THEN {reason} END" for cond, reason in _export_rules(export, t, typed)
    ]
    outer = [f"{typed[c.name]} AS {ident(c.name)}" for c in export.stored_columns]
    return (
        "SELECT "
        + ",\n  ".join(outer)
        + ",\n  _line_no,\n  concat_ws('; ', "
        + ", ".join(reasons)
        + ") AS _reason\n"
        + "FROM (SELECT _line_no, "
        + ", ".join(inner)
        + " FROM src)"
    )
