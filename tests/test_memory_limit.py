"""One knob bounds DuckDB's memory everywhere: SUPERNOVA_DUCKDB_MEMORY_LIMIT, read by the
dbt profile and by every Python connection to the warehouse, with one default."""

from __future__ import annotations

import re

import duckdb
import pytest

from supernova import settings
from supernova.warehouse import connect


def _setting(con) -> str:
    return con.execute("select current_setting('memory_limit')").fetchone()[0]


def test_the_dbt_profile_and_python_share_the_default():
    text = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text()
    [default] = re.findall(r"env_var\('SUPERNOVA_DUCKDB_MEMORY_LIMIT', '([^']+)'\)", text)
    assert default == settings.DUCKDB_MEMORY_LIMIT_DEFAULT


def test_python_connections_apply_the_limit(tmp_path, monkeypatch):
    ref = duckdb.connect()
    ref.execute("set memory_limit = '512MB'")
    monkeypatch.setenv("SUPERNOVA_DUCKDB_MEMORY_LIMIT", "512MB")
    with connect(tmp_path) as con:
        assert _setting(con) == _setting(ref)
    monkeypatch.delenv("SUPERNOVA_DUCKDB_MEMORY_LIMIT")
    ref.execute(f"set memory_limit = '{settings.DUCKDB_MEMORY_LIMIT_DEFAULT}'")
    with connect(tmp_path) as con:
        assert _setting(con) == _setting(ref)
    ref.close()


@pytest.mark.parametrize("bad", ["lots", "6", "6GB; drop table x", ""])
def test_a_malformed_limit_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv("SUPERNOVA_DUCKDB_MEMORY_LIMIT", bad)
    with pytest.raises(ValueError, match="SUPERNOVA_DUCKDB_MEMORY_LIMIT"):
        settings.duckdb_memory_limit()
