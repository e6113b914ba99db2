"""The image and compose file's security properties, read from the files themselves (no
Docker engine here): each container gets only the secrets it needs, AIRFLOW_HOME belongs
to the user Airflow runs as, the PostgreSQL drivers come from the lock, and no log server
listens beyond the container. Issue #14, findings 1, 2 and 9."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from deployment.airflow_stack import COMPOSE_FILE, ENV_EXAMPLE, ROOT

DOCKERFILE = ROOT / "docker" / "airflow.Dockerfile"
LOCKFILE = ROOT / "uv.lock"
VAR = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)")
SECRET = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
AIRFLOW_RUNTIME = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
}
# Who may see which secret. The Airflow services are one trust domain (same image and code;
# LocalExecutor tasks run inside the scheduler's container): the metadata DB connection,
# the Fernet key and the token signing keys. Only airflow-init sees the admin password.
ALLOWED_SECRETS = {
    "postgres": {"POSTGRES_PASSWORD"},
    "airflow-init": AIRFLOW_RUNTIME | {"AIRFLOW_ADMIN_PASSWORD"},
    "airflow-api-server": AIRFLOW_RUNTIME,
    "airflow-scheduler": AIRFLOW_RUNTIME,
    "airflow-dag-processor": AIRFLOW_RUNTIME,
    "airflow-triggerer": AIRFLOW_RUNTIME,
    "metabase-plugins": set(),
    "metabase": set(),
    "metabase-setup": {"MB_ADMIN_PASSWORD"},
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _secret_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name = line.partition("=")[0].strip()
            if SECRET.search(name):
                names.add(name)
    return names


def _env(svc: dict) -> dict:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return env


def secrets_given(svc: dict) -> dict[str, set[str]]:
    """secret name -> where the service gets it (an env_file hands over every secret)."""
    given: dict[str, set[str]] = {}
    if svc.get("env_file"):
        for name in _secret_names():
            given.setdefault(name, set()).add("env_file")
    for key, value in _env(svc).items():
        for name in VAR.findall(str(value)):
            if name in _secret_names():
                given.setdefault(name, set()).add(key)
    for part in svc.get("command") or []:
        for name in VAR.findall(str(part)):
            if name in _secret_names():
                given.setdefault(name, set()).add("command")
    return given


def test_no_container_reads_the_env_file():
    for name, svc in _compose()["services"].items():
        assert not svc.get("env_file"), f"{name} gets every secret of .env through env_file"


def test_each_container_gets_only_the_secrets_it_needs():
    services = _compose()["services"]
    assert set(services) == set(ALLOWED_SECRETS), "a service was added: decide its secrets here"
    for name, svc in services.items():
        given = secrets_given(svc)
        extra = set(given) - ALLOWED_SECRETS[name]
        assert not extra, f"{name} gets secrets it does not need: { {k: given[k] for k in extra} }"
        if name.startswith("airflow-"):
            # PostgreSQL's password reaches Airflow inside its connection string only
            assert given.get("POSTGRES_PASSWORD", set()) <= {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
            }, given
    init = secrets_given(services["airflow-init"])
    assert "AIRFLOW_ADMIN_PASSWORD" in init, "airflow-init writes the passwords file: it needs it"


def test_airflow_home_is_created_for_the_airflow_user():
    compose = _compose()
    home = compose["x-airflow"]["environment"]["AIRFLOW_HOME"]
    text = DOCKERFILE.read_text(encoding="utf-8")
    user = re.search(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user, "the image must not run as root"
    before_user = text[: user.start()]
    assert re.search(rf"useradd\b[^\n]*--uid 50000 {user.group(1)}\b", before_user)
    # AIRFLOW_HOME and every named volume mounted under it exist in the image (a new named
    # volume starts as a copy of the image's folder, owner included) and are chowned to it
    mounts = [
        v.split(":")[1]
        for v in compose["x-airflow"]["volumes"]
        if not v.startswith((".", "/", "$")) and v.split(":")[1].startswith(home + "/")
    ]
    assert mounts, "the auth and logs volumes live under AIRFLOW_HOME"
    for path in mounts:  # `mkdir -p` of a mount point creates AIRFLOW_HOME too
        assert re.search(rf"mkdir -p[^\n&]*\s{re.escape(path)}(\s|$)", before_user), (
            f"{path} not created"
        )
    assert re.search(rf"chown -R {user.group(1)}(:\S+)? {re.escape(home)}\b", before_user), (
        f"{home} not owned by {user.group(1)}"
    )


def test_the_postgres_drivers_come_from_the_lock():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "uv sync --frozen" in text
    assert not re.search(r"uv pip install|pip install (?!--no-cache-dir uv\b)", text), (
        "everything but uv itself comes from uv.lock"
    )
    lock = tomllib.loads(LOCKFILE.read_text(encoding="utf-8"))
    project = next(p for p in lock["package"] if p["name"] == "supernova")
    deps = {d["name"] for d in project.get("dependencies", [])}
    assert {"asyncpg", "psycopg2-binary"} <= deps, deps


def test_no_log_server_listens_beyond_the_container():
    compose = _compose()
    services = compose["services"]
    logs = {v.split(":")[0] for v in compose["x-airflow"]["volumes"] if ":/opt/airflow/logs" in v}
    assert len(logs) == 1, "one shared log volume, from which the api-server reads task logs"
    log_volume = next(iter(logs))
    for name, svc in services.items():
        cmd = [str(c) for c in svc.get("command") or []]
        if cmd[:2] in (["airflow", "scheduler"], ["airflow", "triggerer"]):
            assert "--skip-serve-logs" in cmd, f"{name} starts a log server on every interface"
            assert any(v.startswith(f"{log_volume}:") for v in svc["volumes"]), (
                f"{name} must write task logs to the shared volume"
            )
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        assert not svc.get("expose"), name


def test_compose_file_is_valid():
    """dclint (npm) validates the file against the compose schema, without a Docker engine."""
    if not shutil.which("npx"):
        pytest.skip("npx is not installed: dclint cannot run")
    res = subprocess.run(
        ["npx", "--yes", "dclint", str(COMPOSE_FILE), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode and re.search(
        r"npm (ERR|error).*(ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|network)",
        res.stderr,
        re.IGNORECASE | re.DOTALL,
    ):
        pytest.skip(f"the npm registry is out of reach: {res.stderr[-300:]}")
    assert res.returncode == 0, res.stdout + res.stderr
