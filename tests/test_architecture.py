"""The package's shape: no import cycles among explainreg's modules, counting the imports inside
functions too; an import of an explainreg module inside a function only where :data:`LAZY_IMPORTS`
declares why; and ``__all__`` in every public module.

All read the source with ``ast`` (nothing is imported), so they need no data sets (marked ``synthetic``).
An import inside a function runs when it is called, and hides a cycle rather than breaking it, so the
cycle test counts it as an edge. A module's edge to its own parent packages is left out (Python loads
them first whatever the module imports).
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


def in_function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import nodes that run only when a function (or method) is called."""
    top = set(map(id, _module_level_imports(tree)))
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]


def import_graph(in_functions: bool = True) -> dict[str, set[str]]:
    """module → the explainreg modules it imports when it loads (and, with ``in_functions``, in its functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        nodes = list(_module_level_imports(tree)) + (in_function_imports(tree) if in_functions else [])
        for node in nodes:
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


def test_graph_sees_relative_and_absolute_imports_and_those_in_functions():
    graph = import_graph()
    assert "explainreg.metrics._core" in graph["explainreg.metrics.perturbation"]  # from ._core import ...
    assert "explainreg.modes" in graph["explainreg.metrics._core"]                   # from ..modes import ...
    lazy = {(m, t) for m, reason in LAZY_IMPORTS.items() for t in import_graph()[m] - import_graph(False)[m]}
    assert ("explainreg.studies.transformer_studies", "explainreg.hf") in lazy     # inside _hf()


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among explainreg modules (imports inside functions included):\n" + "\n".join(
        " ↔ ".join(c) for c in found)


#: the modules allowed to import explainreg modules inside functions, and why. Every other module imports
#: them at module level (the command line loads every subcommand's and study's module to build its parser,
#: so nothing is saved by deferring there). A new in-function import elsewhere fails, and so does an entry
#: here once its module has none.
LAZY_IMPORTS: dict[str, str] = {
    "explainreg.studies.transformer_studies":
        "explainreg.hf imports the optional transformers and tokenizers packages: _hf() loads it when the study "
        "runs and turns a missing package into the study's error message. Its other in-function imports are a "
        "ratchet entry (module level forms no cycle)",
    # ratchet entries: module level forms no cycle for these; each import moves up with its module's next change
    "explainreg.metrics.functional.retraining": "a ratchet entry: ROAR's retraining from explainreg.training",
}


def test_in_function_imports_of_explainreg_modules_are_declared():
    modules = _modules()
    found: dict[str, list[str]] = {}
    for name, path in modules.items():
        for node in in_function_imports(ast.parse(path.read_text(), str(path))):
            target = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if (isinstance(node, ast.ImportFrom) and node.level) or (target or "").startswith("explainreg"):
                found.setdefault(name, []).append(f"line {node.lineno}: {'.' * getattr(node, 'level', 0)}{target or ''}")
    undeclared = {m: lines for m, lines in found.items() if m not in LAZY_IMPORTS}
    stale = sorted(set(LAZY_IMPORTS) - set(found))
    assert not undeclared, "explainreg modules imported inside functions (import them at module level, or declare " \
        "why in LAZY_IMPORTS):\n" + "\n".join(f"{m}: {', '.join(v)}" for m, v in undeclared.items())
    assert not stale, f"these modules import no explainreg module inside a function: remove them from LAZY_IMPORTS: {stale}"


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
