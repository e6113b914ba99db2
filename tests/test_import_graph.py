"""No import cycles among the project's modules (issue 18).

A cycle held together by an import inside a function (settle → staging → settle, settle →
summary → settle) works only as long as nobody moves that import to the top; it also
hides which module does which job. This parses every module of supernova/ and ingestion/
with `ast`, follows every import (at module level and inside functions alike) to the
project module it names, and fails on any cycle, naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("supernova", "ingestion")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    return {
        module_name(p, root): p
        for package in PACKAGES
        for p in sorted((root / package).rglob("*.py"))
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in: `supernova.settle.dbt_invoke` →
    `supernova.settle`; None outside the project."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `module` imports, wherever the import statement stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from supernova import lock` imports the module supernova.lock
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    # a package's __init__ runs on import of any of its modules, but importing a module
    # from its own package's __init__ is not a cycle through that module
    return {t for t in found if not module.startswith(t + ".")}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    sorted list: every one is at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert "supernova.settle" in graph and "ingestion.validate" in graph
    found = cycles(graph)
    assert found == [], "import cycles (each group imports itself through the others): " + (
        "; ".join(" ↔ ".join(c) for c in found)
    )


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    """The checker sees imports inside functions and `from package import module`."""
    pkg = tmp_path / "supernova"
    pkg.mkdir()
    (tmp_path / "ingestion").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from supernova import b\n")
    (pkg / "b.py").write_text("def f():\n    from supernova.c import g\n    return g\n")
    (pkg / "c.py").write_text("def g():\n    from .a import b\n")
    (pkg / "d.py").write_text("import supernova.a\n")
    graph = import_graph(tmp_path)
    assert graph["supernova.b"] == {"supernova.c"}
    assert graph["supernova.c"] == {"supernova.a"}
    assert cycles(graph) == [["supernova.a", "supernova.b", "supernova.c"]]
