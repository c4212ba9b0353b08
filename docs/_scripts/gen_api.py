"""Write the API reference pages (docs/api/*.rst) from each public module's ``__all__``.

Run ``python docs/_scripts/gen_api.py`` after adding or removing a public name;
``tests/test_docs_api.py`` fails while a page and its module's ``__all__`` disagree.
Each name is documented once, in the module that defines it; a package or module that
re-exports a name lists it with a link to that page.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
API = DOCS / "api"


def public_modules() -> list[str]:
    """Every importable module of the package whose dotted name has no ``_``-prefixed part."""
    import explainreg
    names = ["explainreg"]
    for info in pkgutil.walk_packages(explainreg.__path__, "explainreg."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def exported_by(obj: object, name: str) -> list[str]:
    """The public modules whose ``__all__`` holds ``name`` bound to ``obj`` itself."""
    found = []
    for modname in public_modules():
        mod = importlib.import_module(modname)
        if name in getattr(mod, "__all__", []) and getattr(mod, name, None) is obj:
            found.append(modname)
    return found


def home(obj: object, default: str, name: str = "") -> str:
    """The public module documenting ``obj``: where a class or function is defined; for an instance
    (a registry, a constant), whose class's module says nothing of where it is made, the deepest
    public module exporting it; else ``default``."""
    if inspect.ismodule(obj):
        return obj.__name__
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return max(exported_by(obj, name) or [default], key=lambda m: (m.count("."), m == default))
    mod = getattr(obj, "__module__", None)
    if mod and mod.startswith("explainreg") and not any(p.startswith("_") for p in mod.split(".")):
        return mod
    return default


def directive(obj: object) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def page(modname: str) -> str:
    mod = importlib.import_module(modname)
    names = list(getattr(mod, "__all__", []))
    title = f"``{modname}``"
    lines = [f".. _api-{modname}:", "", title, "=" * len(title), "",
             f".. automodule:: {modname}", "   :no-members:", ""]
    own, elsewhere = [], []
    for name in names:
        obj = getattr(mod, name)
        where = home(obj, modname, name)
        (own if where == modname and not inspect.ismodule(obj) else elsewhere).append((name, obj, where))
    if elsewhere:
        lines += [".. rubric:: Re-exported names", "", ".. list-table::", "   :widths: 30 70", ""]
        for name, obj, where in elsewhere:
            if inspect.ismodule(obj):
                ref = f":mod:`{obj.__name__}`"
            elif directive(obj) == "data":
                ref = f":data:`{where}.{name}`"
            else:
                ref = f":py:obj:`{where}.{getattr(obj, '__name__', name)}`"
            lines += [f"   * - ``{name}``", f"     - {ref}"]
        lines.append("")
    for name, obj, _ in own:
        kind = directive(obj)
        if kind == "data":
            lines += [f".. autodata:: {modname}.{name}", "   :no-value:", ""]
        elif kind in ("class", "exception"):
            lines += [f".. auto{kind}:: {modname}.{name}", "   :members:", "   :show-inheritance:", ""]
        else:
            lines += [f".. autofunction:: {modname}.{name}", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    sys.path.insert(0, str(DOCS.parent / "src"))
    API.mkdir(exist_ok=True)
    modules = public_modules()
    for stale in API.glob("explainreg*.rst"):
        if stale.stem not in modules:
            stale.unlink()
    for name in modules:
        (API / f"{name}.rst").write_text(page(name))
    toc = ["API reference", "=============", "",
           "Every public name, by module. A package lists the names it re-exports with a link to the",
           "module that documents them.", "", ".. toctree::", "   :maxdepth: 1", ""]
    toc += [f"   {name}" for name in modules]
    (API / "index.rst").write_text("\n".join(toc) + "\n")


if __name__ == "__main__":
    main()
