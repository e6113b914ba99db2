"""The §7 suspense limit is configuration compared in exact DECIMAL(18,8) by
settlement_checks (the hand-computed regression case, 0.000000004 above the limit, is
the dbt unit test `suspense_limit_decided_exactly_in_decimal`): a limit with more decimal
places than that would be rounded silently, so it is a clear configuration error."""

from __future__ import annotations

import copy

import pytest
import yaml

from supernova import settings
from supernova.dbt_runner import dbt_invoke


def _config(limit: str) -> dict:
    with open(settings.DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as f:
        cfg = copy.deepcopy(yaml.safe_load(f)["vars"]["supernova"])
    cfg["suspense_limit_ratio"] = limit
    return cfg


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from ingestion import ensure_raw_schema

    wh = tmp_path_factory.mktemp("suspense-limit")
    ensure_raw_schema(wh)
    return wh


@pytest.mark.parametrize(
    "limit, ok", [("0.005", True), ("0.00500001", True), ("0.005000004", False)]
)
def test_suspense_limit_must_fit_decimal_18_8(warehouse, capsys, limit, ok):
    res = dbt_invoke(
        warehouse, ["run-operation", "validate_settlement_config"], {"supernova": _config(limit)}
    )
    assert res.success is ok
    if not ok:
        text = str(res.exception) + capsys.readouterr().out
        assert "suspense_limit_ratio = 0.005000004 has more than 8 decimal places" in text, text[
            -2000:
        ]
