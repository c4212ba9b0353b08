"""The docstrings' examples run (doctest), and the documented modules give every public name an example.

Every module of the ``explainreg`` package is imported (``pkgutil.walk_packages``) and its doctests
are run with ``ELLIPSIS | NORMALIZE_WHITESPACE``, one test per module; a failure shows doctest's
report. Examples that need the data sets or take long are marked ``# doctest: +SKIP`` in their
docstring, so the file needs no data (marked ``synthetic``).
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import explainreg

pytestmark = pytest.mark.synthetic

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = [explainreg.__name__]
    for info in pkgutil.walk_packages(explainreg.__path__, prefix=explainreg.__name__ + "."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()

#: modules in which every public class and function (those in ``__all__`` defined there) has a docstring
#: with an example; owners add their modules as they document them.
DOCUMENTED = frozenset("""
    explainreg.attribution explainreg.layers explainreg.modes explainreg.transforms
    explainreg.metrics.complexity explainreg.metrics.effective_complexity explainreg.metrics.functional
    explainreg.metrics.perturbation explainreg.metrics.registry explainreg.metrics.road explainreg.metrics.roar
    explainreg.metrics.robustness
    explainreg.decomposition.rules explainreg.decomposition.recurrent
    explainreg.models explainreg.models.backbones explainreg.models.reference explainreg.models.text explainreg.registry
    explainreg.data.idx explainreg.data.image_ops explainreg.data.datasets explainreg.data.sources
    explainreg.data.arrays explainreg.data.catalog explainreg.data.mnist
    explainreg.data.counterexamples explainreg.data.patch_benchmark explainreg.data.folder
    explainreg.data.ucr explainreg.data.text
    explainreg.metrics.localisation explainreg.lightning explainreg.hf
""".split())


def run_doctests(module) -> tuple[int, int, str]:
    """(failures, examples tried, doctest's report) of the examples in ``module``'s docstrings."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    return result.failed, result.attempted, report.getvalue()


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    failed, _, report = run_doctests(module)
    assert not failed, f"{failed} doctest example(s) of {name} failed:\n{report}"


def _example_missing(module) -> list[str]:
    """Public classes and functions defined in ``module`` (its ``__all__``) whose docstring has no example."""
    missing = []
    for attr in getattr(module, "__all__", ()):
        obj = getattr(module, attr)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or getattr(obj, "__module__", None) != module.__name__:
            continue
        doc = inspect.getdoc(obj) or ""
        if "Example" not in doc or ">>>" not in doc:
            missing.append(attr)
    return missing


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_modules_give_every_public_name_an_example(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = _example_missing(module)
    assert not missing, f"{name}: public names without an 'Example' section in their docstring: {', '.join(missing)}"


def test_the_checks_can_fail():
    """A planted failing example and a planted undocumented function are caught."""
    import types

    planted = types.ModuleType("planted")
    exec('def f():\n    """Example::\n\n        >>> 1 + 1\n        3\n    """\n\ndef g():\n    """No example."""\n'
         '__all__ = ["f", "g"]\n', planted.__dict__)
    failed, attempted, report = run_doctests(planted)
    assert (failed, attempted) == (1, 1) and "Expected:\n    3\nGot:\n    2" in report
    assert _example_missing(planted) == ["g"]
    assert DOCUMENTED <= set(MODULES)
