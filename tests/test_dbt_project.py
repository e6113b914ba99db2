"""The dbt project on its own: unit tests of every settlement rule (hand-computed
examples in the models' _unit_tests.yml), and configuration validation (the DAG files' integrity: tests/test_dags.py)."""

from __future__ import annotations

import copy

import pytest
import yaml

from supernova import settings
from supernova.dbt_runner import dbt_invoke
from supernova.months import settlement_config


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory):
    """A warehouse with the raw views and empty staging/intermediate tables: dbt unit
    tests need their inputs' relations to exist to know the column types."""
    from ingestion import ensure_raw_schema

    wh = tmp_path_factory.mktemp("empty-warehouse")
    ensure_raw_schema(wh)
    res = dbt_invoke(
        wh,
        ["run", "--empty", "--select", "+path:models/settlement"],
        {"settlement_month": "2026-09"},
    )
    assert res.success, res.exception
    return wh


def test_every_settlement_unit_test_passes(empty_warehouse):
    res = dbt_invoke(
        empty_warehouse,
        ["test", "--select", "test_type:unit,+path:models/settlement"],
        {"settlement_month": "2026-09"},
    )
    ran = [r for r in res.result.results if r.node.resource_type == "unit_test"]
    assert len(ran) >= 7, "the unit tests were not collected"
    failed = [(r.node.name, r.message) for r in ran if str(r.status) != "pass"]
    assert res.success and not failed, failed


def test_a_wrong_expectation_makes_a_unit_test_fail(empty_warehouse, tmp_path, monkeypatch):
    """Guard against unit tests that cannot fail: change one hand-computed figure in a
    copy of the project and the unit test must report it."""
    import shutil

    proj = tmp_path / "dbt_project"
    shutil.copytree(settings.DBT_PROJECT_DIR, proj, ignore=shutil.ignore_patterns("target", "logs"))
    ut = proj / "models" / "intermediate" / "_int_settlement__unit_tests.yml"
    text = ut.read_text()
    assert "tier_bonus: 14.01}" in text
    ut.write_text(text.replace("tier_bonus: 14.01}", "tier_bonus: 14.00}"))
    monkeypatch.setattr(settings, "DBT_PROJECT_DIR", proj)
    res = dbt_invoke(
        empty_warehouse,
        ["test", "--select", "tiers_at_their_thresholds"],
        {"settlement_month": "2026-09"},
    )
    assert not res.success


def _config_with(mutate) -> dict:
    with open(settings.DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as f:
        cfg = copy.deepcopy(yaml.safe_load(f)["vars"]["supernova"])
    mutate(cfg)
    return cfg


BAD_CONFIGS = {
    "three levels": (lambda c: c.__setitem__("max_levels", 3), "never more than 2 levels"),
    "a level-3 share": (
        lambda c: c["split_shares"]["fenxiang"].__setitem__("level3", "0.05"),
        "only level1 and level2",
    ),
    "shares over 100 %": (
        lambda c: c["split_shares"]["yundian"].__setitem__("level1", "1.01"),
        "outside 0..1",
    ),
    "shares summing over 100 %": (
        lambda c: c["split_shares"]["fenxiang"].__setitem__("level1", "0.95"),
        "> 100 % of the pool",
    ),
    "commission rate cap above 0.9": (
        lambda c: c.__setitem__("max_commission_rate", "0.95"),
        "outside 0..0.9",
    ),
    "platform missing": (
        lambda c: c["split_shares"].pop("jingxiaoge"),
        "no entry for platform 'jingxiaoge'",
    ),
    "float instead of decimal string": (
        lambda c: c.__setitem__("platform_fee_rate", "ten percent"),
        "non-negative decimal string",
    ),
    "tiers out of order": (lambda c: c["tiers"].reverse(), "first tier must start at 0"),
    "open bracket not last": (
        lambda c: c["tax"]["brackets"][0].__setitem__("upto", None),
        "only the last tax bracket",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_settlement_config_is_a_clear_error(empty_warehouse, case, capsys):
    mutate, expected = BAD_CONFIGS[case]
    res = dbt_invoke(
        empty_warehouse,
        ["run-operation", "validate_settlement_config"],
        {"supernova": _config_with(mutate)},
    )
    assert not res.success
    text = str(res.exception) + capsys.readouterr().out
    assert expected in text, text[-2000:]


def test_shipped_config_is_valid(empty_warehouse):
    res = dbt_invoke(empty_warehouse, ["run-operation", "validate_settlement_config"])
    assert res.success, res.exception
    assert settlement_config()["cutoff_day"] == 8
