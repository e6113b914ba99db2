"""docker-compose.yml without a Docker engine: it parses, every service can start (image
and command), every project path and CLI command it uses exists, there are no literal
secrets, and every ${VAR} it needs is documented in .env.example (and .env is ignored)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
VAR = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::?[-?+][^}]*)?\}")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict:
    out = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return env


def test_services_and_commands(compose):
    services = compose["services"]
    required = {
        "postgres",
        "airflow-init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "metabase",
    }
    assert required <= set(services)
    for name, svc in services.items():
        assert svc.get("image"), f"{name} has no image"
    airflow_cmds = {
        n: s["command"]
        for n, s in services.items()
        if n.startswith("airflow-") and n != "airflow-init"
    }
    assert sorted(c[1] for c in airflow_cmds.values()) == [
        "api-server",
        "dag-processor",
        "scheduler",
        "triggerer",
    ]
    for c in airflow_cmds.values():
        assert c[0] == "airflow"


def test_airflow_subcommands_exist():
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    choices = next(
        a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"
    ).choices
    for sub in ("api-server", "scheduler", "dag-processor", "triggerer", "db", "pools"):
        assert sub in choices, sub
    text = (ROOT / "docker" / "airflow-init.sh").read_text()
    assert "airflow db migrate" in text and "airflow pools set supernova_warehouse 1" in text


def test_project_paths_exist(compose):
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for cmd_part in svc.get("command") or []:
            m = re.match(r"/opt/supernova/(.+)", str(cmd_part))
            if m:
                assert (ROOT / m.group(1)).is_file(), (name, cmd_part)
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), (name, src)
        env = _env(svc)
        if "AIRFLOW__CORE__DAGS_FOLDER" in env:
            assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/supernova/dags"
            assert (ROOT / "dags" / "analytics_marts.py").is_file()


# Tasks that never open the warehouse file: the sensor that waits for the warehouse lease
# (it must not sit in the 1-slot pool while it waits, or the writer it waits for could not
# run) and the task that only announces the raw Asset.
NOT_OPENING_THE_WAREHOUSE = {"wait_for_warehouse", "announce_new_data"}


def test_every_task_that_opens_the_warehouse_uses_the_pool_the_init_script_creates(dagbag):
    init = (ROOT / "docker" / "airflow-init.sh").read_text()
    assert "airflow pools set supernova_warehouse 1" in init
    for dag_id in ("ingest_exports", "analytics_marts", "monthly_settlement"):
        pools = {t.task_id: t.pool for t in dagbag.dags[dag_id].tasks}
        opening = {k: v for k, v in pools.items() if k not in NOT_OPENING_THE_WAREHOUSE}
        assert opening and set(opening.values()) == {"supernova_warehouse"}, (dag_id, pools)
        waiting = {k: v for k, v in pools.items() if k in NOT_OPENING_THE_WAREHOUSE}
        assert "supernova_warehouse" not in waiting.values(), (dag_id, pools)


def test_no_literal_secrets(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    for name, svc in compose["services"].items():
        for k, v in _env(svc).items():
            if SECRET_KEY.search(k) or "PASSWORD" in str(v).upper().split("${")[0]:
                assert re.fullmatch(r"(\$\{[A-Z_][A-Z0-9_]*(:\?[^}]*)?\}|/[\w/.-]+)", str(v)), (
                    name,
                    k,
                    v,
                )
        assert "password" not in str(svc.get("command", "")).lower(), name
    # connection strings take user and password from variables only
    for url in re.findall(r"\w+(?:\+\w+)?://[^\s\"']+@", text):
        assert re.fullmatch(r"\w+(?:\+\w+)?://\$\{[^}]+\}:\$\{[^}]+\}@", url), url


def test_every_variable_is_documented(env_example):
    used = set(VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    for script in ("airflow-init.sh", "metabase-setup.sh"):
        used |= set(VAR.findall((ROOT / "docker" / script).read_text(encoding="utf-8"))) - {
            "SUPERNOVA_WAREHOUSE",
            "SUPERNOVA_LANDING",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        }
    assert used, "no variables found: the pattern is broken"
    missing = used - set(env_example)
    assert not missing, f"not in .env.example: {sorted(missing)}"
    # secrets have no example value
    for k, v in env_example.items():
        if SECRET_KEY.search(k):
            assert v == "", f"{k} must be empty in .env.example"
    assert re.search(r"^\.env$", (ROOT / ".gitignore").read_text(), re.MULTILINE)


def test_scripts_are_executable():
    for script in ("airflow-init.sh", "metabase-setup.sh"):
        assert os.access(ROOT / "docker" / script, os.X_OK), script


def test_metabase_reads_the_bi_catalog_and_never_the_working_file(compose):
    """BI reads <warehouse>/bi/supernova_bi.duckdb (views over the Parquet copies, with the
    absolute /warehouse/... paths it was written with), never supernova.duckdb."""
    setup = (ROOT / "docker" / "metabase-setup.sh").read_text(encoding="utf-8")
    assert "/warehouse/bi/supernova_bi.duckdb" in setup and "marts_views" not in setup
    mounts = {}
    for vol in compose["services"]["metabase"].get("volumes") or []:
        parts = vol.rsplit(":", 2) if vol.endswith(":ro") else vol.rsplit(":", 1) + [""]
        mounts[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "")
    for target in ("/warehouse/bi", "/warehouse/parquet"):
        assert target in mounts and mounts[target][1] == "ro", mounts
        assert mounts[target][0].endswith(target.removeprefix("/warehouse")), mounts
    assert "/warehouse" not in mounts  # the working file is not in the container at all
