"""The package's shape: no import cycles among explainreg's modules, and ``__all__`` in every public module.

Both read the source with ``ast`` (nothing is imported), so they need no data sets (marked ``synthetic``).
Only module-level imports count: an import inside a function runs when it is called, after every
module has loaded, and is the usual way to break a cycle. A module's edge to its own parent packages
is left out (Python loads them first whatever the module imports).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.synthetic

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = ROOT / "explainreg"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _module_level_imports(tree: ast.Module):
    """Import nodes executed when the module loads (module body, also inside if/try; not in defs)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, set[str]]:
    """module → the explainreg modules it imports when it loads."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                # a module's own ancestor packages are loaded before it in any case: not an edge
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "explainreg.metrics._core" in graph["explainreg.metrics.perturbation"]  # from ._core import ...
    assert "explainreg.modes" in graph["explainreg.metrics._core"]                   # from ..modes import ...


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among explainreg modules (module-level imports):\n" + "\n".join(
        " ↔ ".join(c) for c in found)


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


#: public modules that had no ``__all__`` when this test was written (their owners were busy with other
#: work): a ratchet. A new module without ``__all__`` fails, and so does an entry here once it has one.
WITHOUT_ALL: frozenset[str] = frozenset()


def test_every_public_module_defines_all():
    missing = []
    for name, path in _modules().items():
        if not _public(name):
            continue
        tree = ast.parse(path.read_text(), str(path))
        assigned = any(isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])) for node in tree.body)
        if not assigned:
            missing.append(name)
    new = sorted(set(missing) - WITHOUT_ALL)
    done = sorted(WITHOUT_ALL - set(missing))
    assert not new, f"public modules without __all__: {', '.join(new)}"
    assert not done, f"these modules define __all__ now: remove them from WITHOUT_ALL: {', '.join(done)}"
