"""Sphinx configuration of the explainreg documentation (``make docs``)."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))
sys.path.insert(0, str(DOCS / "_scripts"))

import explainreg  # noqa: E402

project = "explainreg"
author = "explainreg developers"
copyright = "explainreg developers"
release = version = explainreg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# Study outputs kept beside the results pages (reports, tables, figures) are linked, not built as pages.
exclude_patterns = ["_build", "_scripts", "constraints/**", "cdep/**", "images/**", "saliency_guided/**",
                    "text/**", "timeseries/**", "xil/**", "gallery/*.ipynb", "gallery/*.py.md5", "gallery/*.zip",
                    "gallery/*.json", "examples/*", "sg_execution_times.rst"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# Pages link to the study outputs beside them (reports, CSVs): plain links, copied into the site below.
myst_all_links_external = True
OUTPUT_FOLDERS = ("constraints", "cdep", "images", "saliency_guided", "text", "timeseries", "xil")

autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}
# Offline builds (CI has no network): the inventories are optional.
intersphinx_disabled_reftypes = ["*"]
if os.environ.get("EXPLAINREG_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

# A local MathJax for reading the site offline (the default loads MathJax from its CDN), e.g.
# EXPLAINREG_DOCS_MATHJAX=file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML
if os.environ.get("EXPLAINREG_DOCS_MATHJAX"):
    mathjax_path = os.environ["EXPLAINREG_DOCS_MATHJAX"]
    mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                   "processEscapes": True, "processClass": "math",
                                   "ignoreClass": "tex2jax_ignore|mathjax_ignore|document"}}

nitpicky = False
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = f"explainreg {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

_DATA = os.environ.get("EXPLAINREG_DATA", str(DOCS.parent.parent / "shared" / "data"))
os.environ["EXPLAINREG_DATA"] = _DATA
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Optional dependencies absent here are mocked, so their modules' pages still build.
import importlib.util  # noqa: E402
autodoc_mock_imports = [name for name in ("transformers", "ray", "pytorch_lightning", "lightning")
                        if importlib.util.find_spec(name) is None]

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "gallery",
    "filename_pattern": os.environ.get("EXPLAINREG_DOCS_EXAMPLES", r"/plot_"),
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}


def _drop_type_docstrings(app, what, name, obj, options, lines):
    """A module constant without a ``#:`` comment would show its type's docstring (dict's, tuple's): drop it."""
    if what in ("data", "attribute") and lines:
        doc = getattr(type(obj), "__doc__", None)
        if isinstance(doc, str) and doc and "\n".join(lines).strip().startswith(doc.strip().split("\n")[0].strip()):
            lines[:] = []


def _copy_study_outputs(app, exception):
    """The study outputs the results pages link to (reports, tables, figures) go into the site as they are."""
    import shutil
    if exception is None and app.builder.format == "html":
        for name in OUTPUT_FOLDERS:
            shutil.copytree(DOCS / name, Path(app.outdir) / name, dirs_exist_ok=True)


_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape(text: str) -> str:
    """Bars, and the stars of ``*args`` / ``**kwargs``, as plain characters."""
    text = text.replace("|", "\\|")
    text = re.sub(r"documentation: ((?:[\w-]+/)?[\w-]+(?:, (?:[\w-]+/)?[\w-]+)*)",
                  lambda m: "documentation: " + ", ".join(f":doc:`/{page}`" for page in m.group(1).split(", ")), text)
    return re.sub(r"(?<![\\\w])(\*\*?)(args|kwargs|options|settings)\b",
                  lambda m: "\\*" * len(m.group(1)) + m.group(2), text)


def _plain_text_bars(app, what, name, obj, options, lines):
    """Docstrings write norms and cardinalities as |x|, which reST would read as substitutions: outside
    literals, roles and doctest lines, a bar is escaped. An ``Example::`` whose doctest lines are not
    indented is a doctest block, not a literal block: its marker becomes a plain colon."""
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith((">>>", "...")) or (stripped[:1] in "+|" and stripped.rstrip()[-1:] in "+|"):
            continue
        parts = _LITERAL.split(line)
        lines[i] = "".join(p if k % 2 else _escape(p) for k, p in enumerate(parts))
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::"):
            following = next((l for l in lines[i + 1:] if l.strip()), "")
            indent = len(line) - len(line.lstrip())
            if following.lstrip().startswith(">>>") and len(following) - len(following.lstrip()) <= indent:
                lines[i] = line.rstrip()[:-1]


def _class_signature(app, what, name, obj, options, signature, return_annotation):
    """A metric class's constructor signature (its metaclass's ``__call__`` takes ``*args, **kwargs``)."""
    import inspect
    if what in ("class", "exception") and signature and "**kwargs" in signature and "validate_args" in signature:
        try:
            params = list(inspect.signature(obj.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        shown = [p.replace(annotation=inspect.Parameter.empty) for p in params]
        return str(inspect.Signature(shown)), return_annotation
    return None


def setup(app):
    app.connect("autodoc-process-signature", _class_signature)
    app.connect("autodoc-process-docstring", _plain_text_bars)
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    app.connect("build-finished", _copy_study_outputs)
