"""The API reference (docs/api/*.rst) lists every public name: each public module has a page, and
the names on it are exactly the module's ``__all__`` (regenerate with ``python docs/_scripts/gen_api.py``)."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import explainreg

pytestmark = pytest.mark.synthetic
API = Path(__file__).resolve().parents[1] / "docs" / "api"
DOCUMENTED = re.compile(r"^\.\. auto(?:function|class|exception|data):: ([\w.]+)$", re.M)
LISTED = re.compile(r"^   \* - ``(\w+)``$", re.M)


def public_modules() -> list[str]:
    names = ["explainreg"]
    for info in pkgutil.walk_packages(explainreg.__path__, "explainreg."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def page_names(text: str, module: str) -> list[str]:
    """The public names a page documents (its autodoc directives) or lists (its re-export table)."""
    documented = [full[len(module) + 1:] for full in DOCUMENTED.findall(text) if full.startswith(module + ".")]
    return documented + LISTED.findall(text)


def test_page_names_reads_directives_and_the_reexport_table():
    text = (".. autofunction:: explainreg.x.f\n\n.. autoclass:: explainreg.x.C\n   :members:\n\n"
            ".. list-table::\n\n   * - ``g``\n     - :py:obj:`explainreg.y.g`\n")
    assert sorted(page_names(text, "explainreg.x")) == ["C", "f", "g"]


def test_every_public_module_has_an_api_page_in_the_index():
    index = (API / "index.rst").read_text()
    missing = [m for m in public_modules() if not (API / f"{m}.rst").exists() or f"   {m}\n" not in index]
    assert not missing, f"no API page for {missing}: run python docs/_scripts/gen_api.py"


@pytest.mark.parametrize("module", public_modules())
def test_api_page_lists_exactly_the_modules_all(module):
    page = API / f"{module}.rst"
    if not page.exists():
        pytest.fail(f"docs/api/{module}.rst is missing: run python docs/_scripts/gen_api.py")
    exported = set(getattr(importlib.import_module(module), "__all__", []))
    on_page = page_names(page.read_text(), module)
    assert len(on_page) == len(set(on_page)), f"{page.name} documents a name twice"
    assert set(on_page) == exported, (f"{page.name}: missing {sorted(exported - set(on_page))}, "
                                      f"extra {sorted(set(on_page) - exported)}; run python docs/_scripts/gen_api.py")
