"""``explainreg study NAME``: run a registered study (see ``explainreg.studies``)."""
from __future__ import annotations

from ..studies import discover
from ._common import HelpFormatter

__all__ = ["register"]


def register(subparsers) -> None:
    """Add ``explainreg study STUDY`` with one sub-command per registered study (:mod:`explainreg.studies`)."""
    parser = subparsers.add_parser("study", help="run a reproducible study and write its report",
                                   description="Run a named study: trains the models, evaluates them and "
                                               "writes tables, figures and a Markdown summary.")
    names = parser.add_subparsers(dest="study", metavar="STUDY")
    for study in sorted(discover().values(), key=lambda s: s.name):
        sub = names.add_parser(study.name, help=study.help, description=study.help, formatter_class=HelpFormatter)
        study.add_arguments(sub)
        sub.set_defaults(func=study.run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
