"""The `supernova` command line as a person meets it (subprocess, like a shell): help that
shows defaults, environment variables and exit codes; --version; usage errors in one line,
without a traceback, before Airflow starts; one table of exit codes for every command,
the same in README.md and docs/marts.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supernova import cli_support

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["generate", "ingest", "settle", "demo", "marts", "statements"]
ENV_VARS = [
    "SUPERNOVA_HOME",
    "SUPERNOVA_LANDING",
    "SUPERNOVA_WAREHOUSE",
    "SUPERNOVA_DUCKDB_MEMORY_LIMIT",
    "SUPERNOVA_WAREHOUSE_WAIT_SECONDS",
]


# files generated a moment ago must load now, not after ingestion's quiet period
QUIET_PERIOD_OFF = {"SUPERNOVA_INGEST_QUIET_SECONDS": "0"}


def run(*args, env=None, cwd=ROOT, timeout=120):
    # -X importtime would be noisy; instead the child reports whether Airflow was imported
    code = (
        "import sys, runpy\n"
        "sys.argv = ['supernova', *sys.argv[1:]]\n"
        "try:\n"
        "    from supernova.cli import main\n"
        "    rc = main()\n"
        "except SystemExit as e:\n"
        "    rc = e.code if isinstance(e.code, int) else 1\n"
        "print('AIRFLOW_IMPORTED' if 'airflow' in sys.modules else '', file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **QUIET_PERIOD_OFF, **(env or {})},
        timeout=timeout,
    )


def _err_lines(proc) -> list[str]:
    return [
        line for line in proc.stderr.splitlines() if line.strip() and line != "AIRFLOW_IMPORTED"
    ]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_defaults_environment_and_exit_codes(command):
    proc = run(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for var in ENV_VARS:
        assert var in out, (command, var)
    assert "exit codes" in out and re.search(r"^\s+3\s+warehouse busy", out, flags=re.M), out
    if command in ("settle", "marts", "ingest"):
        assert "default: $SUPERNOVA_WAREHOUSE" in " ".join(out.split())
    if command == "generate":
        assert "(default: tiny)" in out and "(default: csv)" in out


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"supernova {version('supernova')}"


@pytest.mark.parametrize("command", ["settle", "statements"])
@pytest.mark.parametrize("month", ["2026-13", "2026-1", "10-2026", "2026/10", "next"])
def test_a_bad_month_is_one_line_exit_2_without_airflow(command, month):
    proc = run(command, "--month", month)
    assert proc.returncode == 2  # cli_support.EXIT_USAGE
    lines = _err_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert (
        "must be a calendar month written YYYY-MM, e.g. 2026-10" in lines[0]
        and repr(month) in lines[0]
    )
    assert "Traceback" not in proc.stderr and "AIRFLOW_IMPORTED" not in proc.stderr


@pytest.mark.parametrize("command", [["settle", "--month", "2026-10"], ["marts"], ["ingest"]])
def test_a_missing_landing_folder_is_one_line(tmp_path, command):
    proc = run(*command, "--landing", tmp_path / "no-such-folder", "--warehouse", tmp_path / "wh")
    assert proc.returncode == 2  # cli_support.EXIT_USAGE
    lines = _err_lines(proc)
    assert len(lines) == 1 and "landing folder" in lines[0] and "does not exist" in lines[0], (
        proc.stderr
    )
    assert "AIRFLOW_IMPORTED" not in proc.stderr


@pytest.mark.parametrize(
    "command",
    [["settle", "--month", "2026-10"], ["marts"], ["ingest"], ["statements", "--month", "2026-10"]],
)
def test_a_warehouse_path_that_is_a_file_says_so(tmp_path, command):
    (tmp_path / "landing").mkdir()
    afile = tmp_path / "warehouse.txt"
    afile.write_text("not a folder\n")
    landing = [] if command[0] == "statements" else ["--landing", tmp_path / "landing"]
    proc = run(*command, *landing, "--warehouse", afile)
    assert proc.returncode == 2  # cli_support.EXIT_USAGE
    lines = _err_lines(proc)
    assert len(lines) == 1 and "is a file, not a directory" in lines[0], proc.stderr
    assert "another run" not in proc.stderr and "busy" not in proc.stderr


def test_a_warehouse_held_by_another_run_is_exit_3_in_one_line(tmp_path):
    from supernova import lock

    (tmp_path / "landing").mkdir()
    wh = tmp_path / "wh"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom supernova import lock\n"
            f"with lock.held({str(wh)!r}, 'someone-else', log=print):\n"
            "    print('holding', flush=True)\n    time.sleep(600)\n",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        for command in (["settle", "--month", "2026-10"], ["marts"], ["ingest"]):
            proc = run(*command, "--landing", tmp_path / "landing", "--warehouse", wh)
            assert proc.returncode == 3, (command, proc.stdout, proc.stderr)
            lines = _err_lines(proc)
            assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert "AIRFLOW_IMPORTED" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    assert lock  # imported for the holder's API


def test_statements_of_an_unpublished_warehouse_is_exit_1_in_one_line(tmp_path):
    (tmp_path / "wh").mkdir()
    proc = run("statements", "--month", "2026-10", "--warehouse", tmp_path / "wh")
    assert proc.returncode == 1  # cli_support.EXIT_FAILED
    assert len(_err_lines(proc)) == 1, proc.stderr


def _exit_table(text: str) -> dict[int, str]:
    rows = re.findall(r"^\s*\|\s*`?([0-3])`?\s*\|\s*(.+?)\s*\|\s*$", text, flags=re.M)
    return {int(code): " ".join(desc.split()) for code, desc in rows}


def test_one_exit_code_table_in_the_code_the_readme_and_the_marts_doc():
    codes = {
        cli_support.EXIT_OK: 0,
        cli_support.EXIT_FAILED: 1,
        cli_support.EXIT_USAGE: 2,
        cli_support.EXIT_BUSY: 3,
    }
    assert sorted(codes) == [0, 1, 2, 3]
    readme = _exit_table((ROOT / "README.md").read_text(encoding="utf-8"))
    marts_doc = _exit_table((ROOT / "docs" / "marts.md").read_text(encoding="utf-8"))
    assert sorted(readme) == [0, 1, 2, 3]
    assert readme == marts_doc
    for code, desc in readme.items():
        assert re.search(rf"^\s+{code}\s+", cli_support.EXIT_CODES_TEXT, flags=re.M), code
        key = desc.split()[0].lower().strip("*:")
        assert key in cli_support.EXIT_CODES_TEXT.lower(), (code, desc)


def test_ingest_keeps_per_file_lines_in_a_log_and_verbose_shows_them(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    gen = run(
        "generate",
        "--out",
        landing,
        "--start",
        "2026-09-01",
        "--days",
        "1",
        "--scale",
        "tiny",
        timeout=300,
    )
    assert gen.returncode == 0, gen.stderr
    quiet = run("ingest", "--landing", landing, "--warehouse", wh, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert (
        "[loaded]" not in quiet.stdout and "loaded" in quiet.stdout
    )  # the summary, not one line per file
    logs = list((wh / "logs").glob("ingest-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("[loaded]") >= 9
    assert len(quiet.stdout.splitlines()) < 10
    (landing / "orders" / "2026-09-02").mkdir(parents=True)
    (landing / "orders" / "2026-09-02" / "extra.csv").write_text(
        (landing / "orders" / "2026-09-01" / "part-0000.csv")
        .read_text(encoding="utf-8")
        .replace("2026-09-01", "2026-09-02"),
        encoding="utf-8",
    )
    verbose = run("ingest", "--landing", landing, "--warehouse", wh, "--verbose", timeout=300)
    assert "[loaded] orders/2026-09-02/extra.csv" in verbose.stdout, verbose.stdout + verbose.stderr
