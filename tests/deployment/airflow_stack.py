"""docker-compose.yml's Airflow stack started natively: PostgreSQL from the Debian package,
`airflow-init`, then api-server, scheduler, dag-processor and triggerer as separate
processes, run as an unprivileged user, bound to 127.0.0.1.

The settings are not written here: each process gets the `environment` and `command` of
its compose service, with `${VAR}` filled from a generated env file (the names of
.env.example) and only what must differ outside containers rewritten:

- container paths → host paths, from the service's own `volumes` (bind mounts to their
  source, named volumes to a folder each) and, for paths inside the image such as
  AIRFLOW_HOME, to a copy of the image's tree under the stack's base folder;
- service host names and container ports (`postgres:5432`, `airflow-api-server:8080`,
  `--port 8080`, `--host 0.0.0.0`) → 127.0.0.1 and free ports.

Everything else (executor, auth manager, pools, secrets) is compose's, so the test and the
compose file cannot drift. TEST_TUNING lists the few settings added for speed.

Every process is started in its own process group and stopped by its PID (and the PIDs
of its descendants, which LocalExecutor task processes are); `Stack.stop` is safe to call
twice and is also registered with atexit.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CI_USER = "supernova-ci"
AIRFLOW_SERVICES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
LOOPBACK = "127.0.0.1"

# Added for a quick test only (not deployment settings): poll often, parse the DAG folder
# often, run two tasks at a time at most (2 cores, and the warehouse admits one anyway).
TEST_TUNING = {
    "AIRFLOW__CORE__PARALLELISM": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}

_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


# ---------------------------------------------------------------------------- compose


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:?err}, ${VAR:-default}, $VAR, $$."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        val = env.get(name)
        empty = val is None or (op or "").startswith(":") and val == ""
        if op in (":?", "?") and empty:
            raise KeyError(f"compose needs {name}: {arg}")
        if op in (":-", "-") and empty:
            return arg
        if op in (":+", "+"):
            return "" if empty else arg
        return val or ""

    return _VAR.sub(sub, str(value))


def generated_env_file(landing: Path, warehouse: Path) -> dict[str, str]:
    """Every name of .env.example, filled as an operator would: fresh secrets, the host
    folders of this stack; optional settings keep their example value."""
    from cryptography.fernet import Fernet

    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, default = line.partition("=")
            values[name.strip()] = default.strip()
    values.update(
        POSTGRES_PASSWORD=secrets.token_urlsafe(24),
        AIRFLOW_ADMIN_PASSWORD=secrets.token_urlsafe(24),
        AIRFLOW_API_SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW_JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW_FERNET_KEY=Fernet.generate_key().decode(),
        MB_ADMIN_EMAIL="admin@example.invalid",
        MB_ADMIN_PASSWORD=secrets.token_urlsafe(24),
        SUPERNOVA_LANDING_DIR=str(landing),
        SUPERNOVA_WAREHOUSE_DIR=str(warehouse),
    )
    # optional values stay empty (e.g. the alert webhook); a required one left empty makes
    # interpolate() fail with compose's own message
    return values


@dataclass
class NativeService:
    """One compose service as a native process: its command and environment."""

    name: str
    command: list[str]
    environment: dict[str, str]
    path_map: dict[str, Path]


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def native_service(
    compose: dict, name: str, env_file: dict[str, str], base: Path, ports: dict[str, dict[int, int]]
) -> NativeService:
    """The compose service `name` rewritten for this host (see the module docstring)."""
    svc = compose["services"][name]
    image_root = base / "image"
    path_map: dict[str, Path] = {}
    for vol in svc.get("volumes") or []:
        parts = interpolate(vol, env_file).split(":")
        src, dst = parts[0], parts[1]
        if src.startswith((".", "/")):
            path_map[dst] = (ROOT / src).resolve()
        else:  # a named volume: a folder at its mount point in the image's tree
            path_map[dst] = Path(str(image_root) + dst)

    def host_path(p: str) -> str:
        for dst in sorted(path_map, key=len, reverse=True):
            if p == dst or p.startswith(dst.rstrip("/") + "/"):
                return str(path_map[dst]) + p[len(dst.rstrip("/")) :]
        return str(image_root) + p  # inside the image (e.g. AIRFLOW_HOME)

    def host_ports(value: str) -> str:
        def sub(m: re.Match) -> str:
            host, port = m.group(1), int(m.group(2))
            if host in ports and port in ports[host]:
                return f"{LOOPBACK}:{ports[host][port]}"
            return m.group(0)

        return re.sub(r"(?<=[/@])([a-z][a-z0-9-]*):(\d+)(?=[/?]|$)", sub, value)

    def nativize(value: str) -> str:
        value = interpolate(value, env_file)
        if value.startswith("/"):
            return os.pathsep.join(host_path(p) for p in value.split(os.pathsep))
        return host_ports(value)

    environment = {k: nativize(v) for k, v in service_env(svc).items()}
    command = []
    own_ports = ports.get(name, {})
    prev = None
    for arg in svc["command"]:
        arg = interpolate(arg, env_file)
        if prev == "--port" and int(arg) in own_ports:
            arg = str(own_ports[int(arg)])
        elif prev == "--host":
            arg = LOOPBACK
        elif arg.startswith("/"):
            arg = host_path(arg)
        command.append(arg)
        prev = arg
    return NativeService(name, command, environment, path_map)


# ------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        kids.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class RunAs:
    """Who the stack's processes run as: a dedicated unprivileged user when we are root
    (PostgreSQL refuses to run as root, and so does a careful deployment), else ourselves."""

    uid: int
    gid: int
    name: str

    @classmethod
    def for_tests(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls(os.getuid(), os.getgid(), os.environ.get("USER", "self"))
        import pwd

        try:
            pw = pwd.getpwnam(CI_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    CI_USER,
                ],
                check=True,
            )
            pw = pwd.getpwnam(CI_USER)
        return cls(pw.pw_uid, pw.pw_gid, CI_USER)

    def popen_kwargs(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        for top in paths:
            os.chown(top, self.uid, self.gid)
            for dirpath, dirnames, filenames in os.walk(top):
                for n in dirnames + filenames:
                    os.chown(os.path.join(dirpath, n), self.uid, self.gid, follow_symlinks=False)


@dataclass
class Stack:
    """PostgreSQL + the Airflow services of docker-compose.yml under `base`."""

    base: Path
    landing: Path
    warehouse: Path
    run_as: RunAs
    compose: dict = field(default_factory=load_compose)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    env_file: dict[str, str] = field(default_factory=dict)
    ports: dict[str, dict[int, int]] = field(default_factory=dict)
    services: dict[str, NativeService] = field(default_factory=dict)

    # --- setup ------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self.logs = self.base / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env_file = generated_env_file(self.landing, self.warehouse)
        self.ports = {"postgres": {5432: free_port()}, "airflow-api-server": {8080: free_port()}}
        for name in ("airflow-init", *AIRFLOW_SERVICES):
            self.services[name] = native_service(
                self.compose, name, self.env_file, self.base, self.ports
            )
        self.python_env = self.base / "venv"
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['airflow-api-server'][8080]}"

    @property
    def airflow_home(self) -> Path:
        return Path(self.services["airflow-scheduler"].environment["AIRFLOW_HOME"])

    @property
    def admin(self) -> tuple[str, str]:
        return self.env_file["AIRFLOW_ADMIN_USER"], self.env_file["AIRFLOW_ADMIN_PASSWORD"]

    def _prepare_tree(self) -> None:
        """The image's layout for the airflow user: AIRFLOW_HOME and the named volumes
        exist and are owned by it (docker/airflow.Dockerfile does the same)."""
        for svc in self.services.values():
            Path(svc.environment["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
            for _dst, src in svc.path_map.items():
                if src.is_relative_to(self.base):
                    src.mkdir(parents=True, exist_ok=True)
        (self.base / "home").mkdir(exist_ok=True)
        self.warehouse.mkdir(parents=True, exist_ok=True)
        self.run_as.own(self.base)

    def _python_for_user(self) -> None:
        """A virtualenv the unprivileged user can execute, reading the project's locked
        environment (.venv's site-packages): the image's /opt/venv. .venv's own interpreter
        may live where that user cannot go (e.g. pyenv under /root), so the venv is made
        from the first Python of the same version the user can run."""
        import sysconfig

        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        candidates = [
            os.path.realpath(sys.executable),
            f"/usr/bin/python{version}",
            f"/usr/local/bin/python{version}",
        ]
        for interp in dict.fromkeys(candidates):
            if not os.path.exists(interp):
                continue
            try:
                probe = self._run(
                    [interp, "-c", "import sys; print(sys.version_info[:2])"],
                    check=False,
                    capture=True,
                )
            except PermissionError:
                continue
            if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
                break
        else:
            raise RuntimeError(
                f"no Python {version} that {self.run_as.name} may execute (tried {candidates})"
            )
        self._run([interp, "-m", "venv", "--without-pip", str(self.python_env)])
        site = self.python_env / "lib" / f"python{version}" / "site-packages"
        (site / "supernova_project_env.pth").write_text(
            f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
        )
        airflow = self.python_env / "bin" / "airflow"
        airflow.write_text(f'#!/bin/sh\nexec "{self.python_env}/bin/python" -m airflow "$@"\n')
        airflow.chmod(0o755)
        self.run_as.own(self.python_env)
        probe = self._run(
            [
                str(self.python_env / "bin" / "python"),
                "-c",
                "import airflow, asyncpg, psycopg2, supernova",
            ],
            check=False,
            capture=True,
        )
        if probe.returncode:
            raise RuntimeError(
                f"{self.run_as.name} cannot import the project environment "
                f"(is {ROOT} readable to it?): {probe.stderr[-2000:]}"
            )

    def _base_env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.python_env / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.base / "home"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",  # the image's ENV
        }

    def _run(self, cmd, env=None, check=True, capture=False, timeout=600):
        res = subprocess.run(
            cmd,
            env=env or self._base_env(),
            cwd=self.base,
            text=True,
            capture_output=capture,
            timeout=timeout,
            **self.run_as.popen_kwargs(),
        )
        if check and res.returncode:
            raise RuntimeError(f"{cmd} failed ({res.returncode}): {res.stderr}")
        return res

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=self.base,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **self.run_as.popen_kwargs(),
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    # --- PostgreSQL, as the postgres image would set it up -----------------------------

    def start_postgres(self) -> None:
        pg = postgres_bin()
        if pg is None:
            raise FileNotFoundError(
                "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/pg_ctl)"
            )
        user, password, db = (
            self.env_file[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
        )
        data, sock = self.base / "volumes" / "postgres-data", self.base / "pg-socket"
        sock.mkdir(exist_ok=True)
        pwfile = self.base / "pg-password"
        pwfile.write_text(password + "\n")
        self.run_as.own(sock, pwfile)
        shutil.rmtree(data, ignore_errors=True)
        self._run(
            [
                str(pg / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture=True,
        )
        pwfile.unlink()
        port = self.ports["postgres"][5432]
        self._spawn(
            "postgres",
            [
                str(pg / "postgres"),
                "-D",
                str(data),
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-k",
                str(sock),
            ],
            self._base_env(),
        )
        env = {**self._base_env(), "PGPASSWORD": password}
        self.wait_for(
            lambda: (
                self._run(
                    [str(pg / "pg_isready"), "-h", LOOPBACK, "-p", str(port)],
                    check=False,
                    capture=True,
                ).returncode
                == 0
            ),
            60,
            "PostgreSQL accepting connections",
        )
        self._run(
            [str(pg / "createdb"), "-h", LOOPBACK, "-p", str(port), "-U", user, db],
            env=env,
            capture=True,
        )

    # --- Airflow ------------------------------------------------------------------------

    def service_env(self, name: str) -> dict[str, str]:
        return {**self._base_env(), **self.services[name].environment, **TEST_TUNING}

    def start_airflow(self) -> None:
        init = self.services["airflow-init"]
        res = self._run(
            init.command,
            env=self.service_env("airflow-init"),
            check=False,
            capture=True,
            timeout=900,
        )
        (self.logs / "airflow-init.log").write_text(res.stdout + res.stderr)
        if res.returncode:
            raise RuntimeError(f"airflow-init failed: {res.stderr[-4000:]}")
        for name in AIRFLOW_SERVICES:
            self._spawn(name, self.services[name].command, self.service_env(name))

    def _grant_traverse(self) -> None:
        """The unprivileged user must reach the checkout and its .venv. A clone under a
        private directory (e.g. /root, mode 700) is out of its reach: when we are root, add
        only the search bit (o+x: pass through, not list) to such ancestors for the
        duration of the stack; stop() restores the modes."""
        self._restore_modes: list[tuple[Path, int]] = getattr(self, "_restore_modes", [])
        if os.geteuid() != 0:
            return
        for d in [*reversed(ROOT.parents), ROOT]:
            mode = d.stat().st_mode & 0o7777
            if not mode & 0o001:
                d.chmod(mode | 0o001)
                self._restore_modes.append((d, mode))

    def _restore_traverse(self) -> None:
        for d, mode in reversed(getattr(self, "_restore_modes", [])):
            try:
                d.chmod(mode)
            except OSError:
                pass
        self._restore_modes = []

    def start(self) -> None:
        self._grant_traverse()
        self._prepare_tree()
        self._python_for_user()
        self.start_postgres()
        self.start_airflow()

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({proc.returncode}) while waiting for "
                        f"{what}:\n{self.log_tail(name)}"
                    )
            try:
                result = predicate()
            except (OSError, urllib.error.URLError):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def task_logs(self, dag_id: str, run_id: str, chars: int = 4000) -> str:
        """The task logs of one run (for assertion messages)."""
        out = []
        for p in sorted(
            (self.airflow_home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/*/*.log")
        ):
            out.append(f"--- {p.parent.name}/{p.name}\n{p.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def stop(self) -> None:
        """Stop every process started here, by PID: SIGTERM to each process group and each
        descendant (task processes), then SIGKILL whatever is left."""
        procs, self.procs = self.procs, []
        self._restore_traverse()
        for name, proc in reversed(procs):
            if proc.poll() is not None:
                continue
            pids = [proc.pid, *descendants(proc.pid)]
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM  # SIGINT: fast shutdown
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


# ------------------------------------------------------------------------- REST API


class ApiError(AssertionError):
    pass


class Api:
    """Airflow's public REST API (v2) with a JWT from the simple auth manager."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url, self.username, self.password = base_url, username, password
        self.token: str | None = None

    def _send(self, method: str, path: str, body=None, auth=True) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            if self.token is None:
                self.login()
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, payload

    def login(self) -> None:
        status, payload = self._send(
            "POST",
            "/auth/token",
            {"username": self.username, "password": self.password},
            auth=False,
        )
        if status not in (200, 201):
            raise ApiError(f"POST /auth/token: {status} {payload}")
        self.token = payload["access_token"]

    def request(self, method: str, path: str, body=None) -> tuple[int, object]:
        status, payload = self._send(method, path, body)
        if status == 401:  # token expired
            self.token = None
            status, payload = self._send(method, path, body)
        return status, payload

    def ok(self, method: str, path: str, body=None):
        status, payload = self.request(method, path, body)
        if status >= 300:
            raise ApiError(f"{method} {path}: {status} {payload}")
        return payload

    # --- conveniences ---------------------------------------------------------------------

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict) -> tuple[int, object]:
        return self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf}
        )

    def runs(self, dag_id: str) -> list[dict]:
        return self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")[
            "dag_runs"
        ]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.ok(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.ok("GET", path)["task_instances"]

    def asset_events(self, uri: str) -> list[dict]:
        assets = self.ok("GET", f"/api/v2/assets?uri_pattern={urllib.parse.quote(uri)}")["assets"]
        ids = [a["id"] for a in assets if a["uri"] == uri]
        if not ids:
            return []
        return self.ok("GET", f"/api/v2/assets/events?asset_id={ids[0]}&limit=100")["asset_events"]
