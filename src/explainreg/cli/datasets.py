"""``explainreg datasets``: which data sets are available, and where."""
from __future__ import annotations

import argparse

from ..data import DATASETS
from ..data.sources import resolve_data_root
from ..data.text import text_sources
from ._common import HelpFormatter

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add ``explainreg datasets`` to the command line's ``subparsers``."""
    p = subparsers.add_parser("datasets", help="list data sets and where they were found", formatter_class=HelpFormatter,
                              description="List the data sets explainreg can load (explainreg.data.DATASETS): "
                                          f"{', '.join(DATASETS)}; each with its description, splits and where "
                                          "their files are.")
    p.add_argument("--data-root", metavar="PATH", default=None, help="data root to inspect (default: $EXPLAINREG_DATA, "
                                                                     "else ~/.cache/explainreg)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List every registered data set with its description, then each split and where its files were
    found (or "not found"); returns 0."""
    root, how = resolve_data_root(args.data_root)
    print(f"data root: {root} (from {how})")
    for family in DATASETS.values():
        trains = f"explainreg train: model {family.model}" if family.model else f"prepared by {family.prepared_by}"
        print(f"{family.name}: {family.help} ({trains})")
        for name, splits, where in family.where(family.name, args.data_root):
            print(f"  {name:<20} {splits:<14} {where}")
    for name, splits, where in text_sources(args.data_root):
        if name not in DATASETS:                    # the word vectors the text studies read
            print(f"  {name:<20} {splits:<14} {where}")
    return 0
