"""Docs point only at things that exist: every project path a Markdown file mentions
(`tests/...py`, `supernova/...`, `docs/...md`, `dbt_project/...`, `bench/`, `dags/`,
`ingestion/`, `expectations/`, `plugins/`, `docker/`), every test named as
`tests/test_x.py::test_name`, every fully qualified name in backticks
(`supernova.marts.MART_TABLES`, `ingestion.schema.create_objects()`) and every Markdown
link to a heading (`[...](#why)`, `[...](benchmarks.md#spark)`) must be in the checkout.

A path is read relative to the repository root, or to the Markdown file when it starts with
`./` or `../` (a Markdown link). Paths with a placeholder (`<scale>`, `*`, `{...}`, `…`) and
dbt's generated folders are not checked.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "DEVELOPERS.md", *(ROOT / "docs").glob("*.md")])
TOP = r"(?:tests|supernova|docs|dbt_project|bench|dags|ingestion|expectations|plugins|docker)"
PATH = re.compile(
    rf"(?<![\w/.-])(?P<rel>(?:\.\.?/)*)(?P<path>{TOP}/[\w./-]*[\w/])(?:::(?P<test>\w+))?"
)
PLACEHOLDER = re.compile(r"[<>*{}…]|\.\.\.")
GENERATED = ("dbt_project/target/", "dbt_project/dbt_packages/", "dbt_project/logs/")
QUALIFIED = re.compile(r"`((?:supernova|ingestion|bench)(?:\.\w+)+)(?:\([^`]*\))?`")
FILE_NAME = re.compile(r"\.(?:duckdb|tmp|wal|py|md|sql|ya?ml|json|csv|parquet)$")  # a file
ANCHOR_LINK = re.compile(r"\]\((?P<file>[\w./-]*\.md)?#(?P<anchor>[\w-]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    headings = {slug(m[1]) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}
    return headings | set(re.findall(r'<a id="([\w-]+)">', text))


def resolves(dotted: str) -> bool:
    """Whether a dotted name is an importable module or an attribute of one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def references(text: str):
    """(line number, path as written, resolved-relative?, test name or None) of every
    project path mentioned in a Markdown text."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PATH.finditer(line):
            tail = line[match.end() : match.end() + 1]
            if tail and PLACEHOLDER.match(tail):
                continue  # e.g. dbt_project/models/<layer>/..., tests/test_*.py
            path = match["path"].rstrip(".")
            if path.startswith(GENERATED):
                continue
            yield number, path, bool(match["rel"]), match["test"], match["rel"]


def missing_references(doc: Path, text: str | None = None) -> list[str]:
    """What `doc` (or `text`, read as if it were `doc`) mentions that does not exist."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    problems = []
    for number, path, relative, test, rel in references(text):
        target = (doc.parent / (rel + path)).resolve() if relative else ROOT / path
        where = f"{doc.relative_to(ROOT)}:{number}"
        if not target.exists():
            problems.append(f"{where}: {rel}{path} does not exist")
        elif test and not re.search(
            rf"^\s*(?:async\s+)?def {test}\b", target.read_text(), re.MULTILINE
        ):
            problems.append(f"{where}: {path} has no test {test}")
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{doc.relative_to(ROOT)}:{number}"
        for match in QUALIFIED.finditer(line):
            if not FILE_NAME.search(match[1]) and not resolves(match[1]):
                problems.append(f"{where}: {match[1]} does not exist")
        for match in ANCHOR_LINK.finditer(line):
            target = (doc.parent / match["file"]).resolve() if match["file"] else doc
            if target.exists() and match["anchor"] not in anchors(target):
                problems.append(f"{where}: no heading #{match['anchor']} in {target.name}")
    return problems


# Stale references in docs whose owners are fixing them (strict: the mark must go with the
# fix). Empty: every doc is held to the rule.
BEING_FIXED: set[str] = set()


def _marked(doc: Path):
    name = str(doc.relative_to(ROOT))
    if name in BEING_FIXED:
        return pytest.param(doc, marks=pytest.mark.xfail(strict=True, reason="stale reference"))
    return doc


@pytest.mark.parametrize("doc", [_marked(d) for d in DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_mentions_exists(doc):
    problems = missing_references(doc)
    assert not problems, "\n".join(problems)


def test_the_checker_finds_what_is_missing():
    """The checker itself: a missing file, a missing test, a relative link and placeholders."""
    doc = ROOT / "docs" / "probe.md"  # never written: its text is given
    text = (
        "see tests/test_no_such_file.py and `supernova/warehouse.py`,\n"
        "tests/test_generator.py::test_no_such_test, "
        "tests/test_generator.py::test_bad_arguments_are_refused,\n"
        "[table](../supernova/generator/probabilities.py), [gone](../supernova/report.py),\n"
        "dbt_project/models/<layer>/x.sql, tests/test_*.py, dbt_project/target/manifest.json.\n"
        "`supernova.marts.MART_TABLES`, `supernova.marts.no_such_name()`, "
        "[ok](benchmarks.md#spark), [gone](benchmarks.md#no-such-heading)"
    )
    found = list(references(text))
    assert [(n, p, t) for n, p, _, t, _ in found] == [
        (1, "tests/test_no_such_file.py", None),
        (1, "supernova/warehouse.py", None),
        (2, "tests/test_generator.py", "test_no_such_test"),
        (2, "tests/test_generator.py", "test_bad_arguments_are_refused"),
        (3, "supernova/generator/probabilities.py", None),
        (3, "supernova/report.py", None),
    ]
    problems = [p.split(": ", 1)[1] for p in missing_references(doc, text)]
    assert problems == [
        "tests/test_no_such_file.py does not exist",
        "tests/test_generator.py has no test test_no_such_test",
        "../supernova/report.py does not exist",
        "supernova.marts.no_such_name does not exist",
        "no heading #no-such-heading in benchmarks.md",
    ]
