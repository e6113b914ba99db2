"""dbt's Jinja context for sqlfluff's jinja templater (.sqlfluff: library_path).

sqlfluff's dbt builtins cover ref, source, config, var and is_incremental only; the
project's macros also use `dbt.*` cross-database macros, `modules`, `adapter` and
`target`, and read the settlement settings through var('supernova'). Every top-level
name here becomes a name in the template context (sqlfluff puts a package's names there
and lets them take precedence over its dbt builtins). The models render as at dbt parse
time (`execute` false): no query runs, the published tables are read as empty selects.
The SQL produced is for linting only: never run.
"""

from __future__ import annotations

import datetime as _datetime
import re as _re
from pathlib import Path as _Path
from types import SimpleNamespace as _NS

import yaml as _yaml

_PROJECT = _yaml.safe_load(
    (_Path(__file__).resolve().parent.parent / "dbt_project.yml").read_text()
)
_VARS = {**_PROJECT["vars"], "settlement_month": "2026-09", "run_id": "lint"}

execute = False
target = _NS(type="duckdb", database="supernova", schema="main", name="duckdb")
modules = _NS(datetime=_datetime, re=_re)
# dbt's start of the invocation (the staging rows' default stamp)
run_started_at = _datetime.datetime(2026, 1, 1, tzinfo=_datetime.UTC)


def var(name, default=None):
    return _VARS.get(name, default)


def env_var(name, default=""):
    return default


def run_query(sql):  # only reached when execute is true
    raise RuntimeError("run_query at lint time")


def _dispatch(name, macro_namespace=None):
    """Engine-specific macros render as a call of their own name: valid SQL to lint."""
    return lambda *args, **kwargs: f"{name}({', '.join(str(a) for a in args)})"


adapter = _NS(get_relation=lambda **kwargs: None, dispatch=_dispatch)

dbt = _NS(
    type_string=lambda: "varchar",
    concat=lambda fields: " || ".join(str(f) for f in fields),
    date_trunc=lambda datepart, date: f"date_trunc('{datepart}', {date})",
    dateadd=lambda datepart, interval, from_date_or_timestamp: (
        f"({from_date_or_timestamp} + interval ({interval}) {datepart})"
    ),
    datediff=lambda first_date, second_date, datepart: (
        f"date_diff('{datepart}', {first_date}, {second_date})"
    ),
    date_spine=lambda datepart, start_date, end_date: (
        f"select unnest(generate_series({start_date}, {end_date}, interval 1 {datepart})) as date_{datepart}"
    ),
)
