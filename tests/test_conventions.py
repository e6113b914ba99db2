"""The dbt project's conventions, checked on the manifest dbt writes when it parses the
project (what dbt-project-evaluator would check, without its package): no source() outside
staging, a key test on every model, no empty descriptions, exposures' parents public.

The few exceptions are listed, each with its reason, in tests/conventions_exceptions.yml.
Each checker is a pure function of manifest.json; the mutation tests at the end show that
each one reports a broken convention (a blanked description, a new source read, a dropped
key test), so a green run means something.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR = ROOT / "dbt_project"
EXCEPTIONS = yaml.safe_load((Path(__file__).parent / "conventions_exceptions.yml").read_text())

STAGING = "models/staging/"
# Published models: written to the `settlement` schema by publish (built in
# settlement_build) and the marts read by BI; every one of their columns is described.
PUBLISHED = ("models/settlement/", "models/marts/")
KEY_TESTS = {"unique", "unique_combination_of_columns"}
SOURCE_CALL = re.compile(r"\bsource\s*\(")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    """Parse the project once (no warehouse needed) and read target/manifest.json."""
    from dbt.cli.main import dbtRunner

    tmp = tmp_path_factory.mktemp("dbt-parse")
    saved = os.environ.get("SUPERNOVA_DUCKDB_PATH")
    os.environ["SUPERNOVA_DUCKDB_PATH"] = str(tmp / "unused.duckdb")  # parse never opens it
    try:
        res = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(PROJECT_DIR),
                "--profiles-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(tmp / "target"),
                "--log-path",
                str(tmp / "logs"),
                "--no-partial-parse",
                "--quiet",
            ]
        )
    finally:
        if saved is None:
            os.environ.pop("SUPERNOVA_DUCKDB_PATH", None)
        else:
            os.environ["SUPERNOVA_DUCKDB_PATH"] = saved
    assert res.success, res.exception
    return json.loads((tmp / "target" / "manifest.json").read_text())


def _models(manifest: dict) -> list[dict]:
    return [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["package_name"] == "supernova"
    ]


def _macros_reached(manifest: dict, node: dict) -> set[str]:
    """Every macro the node calls, directly or through other macros."""
    seen: set[str] = set()
    todo = list(node["depends_on"]["macros"])
    while todo:
        uid = todo.pop()
        if uid in seen or uid not in manifest["macros"]:
            continue
        seen.add(uid)
        todo.extend(manifest["macros"][uid]["depends_on"]["macros"])
    return seen


def source_reads_outside_staging(manifest: dict) -> list[str]:
    allowed_models = set(EXCEPTIONS["source_reads"]["models"])
    allowed_macros = set(EXCEPTIONS["source_reads"]["macros"])
    bad = []
    for m in _models(manifest):
        sources = sorted(u for u in m["depends_on"]["nodes"] if u.startswith("source."))
        if not sources or m["original_file_path"].startswith(STAGING):
            continue
        if SOURCE_CALL.search(m["raw_code"]):
            if m["name"] not in allowed_models:
                bad.append(f"{m['name']} calls source() itself: {', '.join(sources)}")
            continue
        via = sorted(
            manifest["macros"][u]["name"]
            for u in _macros_reached(manifest, m)
            if manifest["macros"][u]["package_name"] == "supernova"
            and SOURCE_CALL.search(manifest["macros"][u]["macro_sql"])
        )
        if not via or not set(via) <= allowed_macros:
            bad.append(f"{m['name']} reads {', '.join(sources)} through macro(s) {via or '?'}")
    return bad


def models_without_key_test(manifest: dict, exceptions: dict | None = None) -> list[str]:
    excepted = EXCEPTIONS["key_tests"] if exceptions is None else exceptions
    keyed = {
        n.get("attached_node")
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test" and (n.get("test_metadata") or {}).get("name") in KEY_TESTS
    }
    return sorted(
        m["name"]
        for m in _models(manifest)
        if m["unique_id"] not in keyed and m["name"] not in excepted
    )


def undescribed_published_columns(manifest: dict) -> dict[str, list[str]]:
    """Columns (as declared in yml: every column, where the contract is enforced) without a
    description, per published model."""
    return {
        m["name"]: sorted(c for c, col in m["columns"].items() if not col["description"].strip())
        for m in _models(manifest)
        if m["original_file_path"].startswith(PUBLISHED)
    }


def empty_descriptions(manifest: dict) -> list[str]:
    pending = set(EXCEPTIONS["pending_column_descriptions"])
    bad = [f"model {m['name']}" for m in _models(manifest) if not m["description"].strip()]
    for m in _models(manifest):
        if m["original_file_path"].startswith(PUBLISHED) and m["name"] not in pending:
            bad += [
                f"column {m['name']}.{c}"
                for c, col in m["columns"].items()
                if not col["description"].strip()
            ]
    for s in manifest["sources"].values():
        if s["package_name"] != "supernova":
            continue
        if not s["source_description"].strip():
            bad.append(f"source {s['source_name']}")
        if not s["description"].strip():
            bad.append(f"source table {s['source_name']}.{s['name']}")
        bad += [
            f"source column {s['source_name']}.{s['name']}.{c}"
            for c, col in s["columns"].items()
            if not col["description"].strip()
        ]
    return sorted(set(bad))


def exposure_parents_not_public(manifest: dict) -> list[str]:
    bad = []
    for e in manifest["exposures"].values():
        for uid in e["depends_on"]["nodes"]:
            node = manifest["nodes"].get(uid) or manifest["sources"].get(uid)
            if uid.startswith("source."):
                bad.append(f"{e['name']} reads source {uid}")
            elif node.get("access") != "public":
                bad.append(f"{e['name']} <- {node['name']} (access {node.get('access')})")
    return bad


def test_no_source_read_outside_staging(manifest):
    assert source_reads_outside_staging(manifest) == []


def test_every_exception_is_still_needed(manifest):
    """A stale exception hides nothing but misleads: each listed name must exist."""
    models = {m["name"] for m in _models(manifest)}
    macros = {m["name"] for m in manifest["macros"].values() if m["package_name"] == "supernova"}
    assert set(EXCEPTIONS["source_reads"]["models"]) <= models
    assert set(EXCEPTIONS["source_reads"]["macros"]) <= macros
    reading = {m["name"] for m in _models(manifest) if SOURCE_CALL.search(m["raw_code"])}
    assert set(EXCEPTIONS["source_reads"]["models"]) <= reading
    calling = {
        m["name"]
        for m in manifest["macros"].values()
        if m["package_name"] == "supernova" and SOURCE_CALL.search(m["macro_sql"])
    }
    assert set(EXCEPTIONS["source_reads"]["macros"]) <= calling
    assert set(EXCEPTIONS["key_tests"]) <= models
    assert sorted(models_without_key_test(manifest, exceptions={})) == sorted(
        EXCEPTIONS["key_tests"]
    )
    undescribed = undescribed_published_columns(manifest)
    still_pending = {name for name, cols in undescribed.items() if cols}
    assert set(EXCEPTIONS["pending_column_descriptions"]) <= still_pending
    assert all(
        str(r).strip()
        for r in [
            *EXCEPTIONS["source_reads"]["models"].values(),
            *EXCEPTIONS["source_reads"]["macros"].values(),
            *EXCEPTIONS["key_tests"].values(),
            *EXCEPTIONS["pending_column_descriptions"].values(),
        ]
    )


def test_every_model_has_a_key_test(manifest):
    assert models_without_key_test(manifest) == []


def test_no_empty_descriptions(manifest):
    assert empty_descriptions(manifest) == []


def test_exposures_read_public_models_only(manifest):
    assert exposure_parents_not_public(manifest) == []


def _history_parents(manifest: dict, name: str) -> list[str]:
    """The raw exports a model reads, as sources or as staging versions models."""
    return sorted(
        u.split(".")[-1]
        for u in _model(manifest, name)["depends_on"]["nodes"]
        if u.startswith("source.") or u.endswith("_versions")
    )


def test_a_mart_declares_only_the_exports_it_reads(manifest):
    """The incremental marts' macros ref() the versions of a mart's own `parts` (clicks
    bring links), not every export (issue 18: group_daily_activity was wired to skus,
    groups and commission_rules)."""
    orders_clicks = [
        "stg_exports__click_versions",
        "stg_exports__link_versions",
        "stg_exports__order_versions",
    ]
    assert _history_parents(manifest, "group_daily_activity") == orders_clicks
    assert _history_parents(manifest, "group_status") == sorted(
        [*orders_clicks, "stg_exports__group_versions"]
    )
    assert _history_parents(manifest, "sku_ranking") == sorted(
        [*orders_clicks, "stg_exports__commission_rule_versions", "stg_exports__sku_versions"]
    )
    # the estimate's refresh window: orders and clicks (as the attributed lines), and the
    # first day a re-delivered rule changes (macros/earnings_incremental.sql)
    assert _history_parents(manifest, "promoter_earnings_daily") == sorted(
        [*orders_clicks, "stg_exports__commission_rule_versions"]
    )


# --- the checkers can fail -------------------------------------------------------------


def _new(check, manifest: dict, broken: dict) -> list[str]:
    """What the check reports on the broken copy and not on the project as it is."""
    return sorted(set(check(broken)) - set(check(manifest)))


def _model(manifest: dict, name: str) -> dict:
    return next(m for m in _models(manifest) if m["name"] == name)


def test_a_blank_description_is_reported(manifest):
    broken = copy.deepcopy(manifest)
    _model(broken, "payouts")["columns"]["net_paid"]["description"] = ""
    _model(broken, "suspense")["description"] = " "
    assert _new(empty_descriptions, manifest, broken) == [
        "column payouts.net_paid",
        "model suspense",
    ]


def test_a_new_source_read_outside_staging_is_reported(manifest):
    broken = copy.deepcopy(manifest)
    m = _model(broken, "payouts")
    m["depends_on"]["nodes"].append("source.supernova.exports.promoters")
    m["raw_code"] += "\n-- {{ source('exports', 'promoters') }}"
    assert _new(source_reads_outside_staging, manifest, broken) == [
        "payouts calls source() itself: source.supernova.exports.promoters"
    ]


def test_a_source_read_through_an_unlisted_macro_is_reported(manifest):
    broken = copy.deepcopy(manifest)
    m = _model(broken, "int_settlement__carried_in")
    macro = next(u for u in m["depends_on"]["macros"] if u.endswith(".published_or_empty"))
    broken["macros"][macro]["name"] = "read_anything"
    assert (
        "int_settlement__carried_in reads source.supernova.settlement_published.payouts "
        "through macro(s) ['read_anything']" in _new(source_reads_outside_staging, manifest, broken)
    )


def test_a_dropped_key_test_is_reported(manifest):
    broken = copy.deepcopy(manifest)
    uid = _model(broken, "payouts")["unique_id"]
    broken["nodes"] = {
        k: n
        for k, n in broken["nodes"].items()
        if not (n["resource_type"] == "test" and n.get("attached_node") == uid)
    }
    assert _new(models_without_key_test, manifest, broken) == ["payouts"]
