"""`make test` runs the suite on two pytest-xdist workers, grouped by tests/conftest.py: these
tests keep that grouping in step with the files (a stale grouping is not wrong, only slow:
an expensive fixture built once per worker, or a long file started last)."""

from __future__ import annotations

import re
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parent


def _test_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")}


def test_the_files_that_share_the_settlement_scenario_run_on_one_worker():
    users = {
        name
        for name, text in _test_files().items()
        if re.search(r"\bsettlement_scenario\b", text) and name != Path(__file__).name
    }
    assert users == conftest._FILES_SHARING_THE_SETTLEMENT_SCENARIO
    assert {conftest._test_group(f"tests/{name}::t") for name in users} == {"settlement_scenario"}


def test_every_other_file_is_its_own_group():
    assert conftest._test_group("tests/test_marts.py::test_x[a::b]") == "test_marts.py"
    assert conftest._test_group("tests/deployment/test_deployment.py::t") == "test_deployment.py"


def test_the_longest_groups_named_first_exist():
    files = set(_test_files())
    for group in conftest._LONGEST_GROUPS_FIRST:
        assert group == "settlement_scenario" or group in files, group
