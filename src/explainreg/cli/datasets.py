"""``explainreg datasets``: which data sets are available, and where."""
from __future__ import annotations

import argparse

from ..data import DataNotFoundError, locate
from ..data.datasets import available_datasets
from ..data.sources import BUNDLED_DIR, SOURCES, find_split, resolve_data_root
from ._common import HelpFormatter

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add ``explainreg datasets`` to the command line's ``subparsers``."""
    p = subparsers.add_parser("datasets", help="list data sets and where they were found", formatter_class=HelpFormatter,
                              description="List the data sets explainreg can load and where their files are.")
    p.add_argument("--data-root", metavar="PATH", default=None, help="data root to inspect (default: $EXPLAINREG_DATA, "
                                                                     "else ~/.cache/explainreg)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List every data set, split and where its files were found (or "not found"); returns 0."""
    root, how = resolve_data_root(args.data_root)
    print(f"data root: {root} (from {how})")
    for name in available_datasets():
        for split in ("train", "test"):
            try:
                _, where = locate(name, split, args.data_root, download=False)
            except DataNotFoundError:
                where = "not found"
            bundled = "yes" if find_split(BUNDLED_DIR, SOURCES[name], split) else "no"
            print(f"  {name:<14} {split:<5} {where}   (bundled subset: {bundled})")
    for name, base in (("decoy-mnist", "mnist"), ("decoy-fmnist", "fashion-mnist"), ("color-mnist", "mnist")):
        try:
            where = f"generated from {locate(base, 'train', args.data_root, download=False)[1]}"
        except DataNotFoundError:
            where = f"generated from {base}, which is not found"
        print(f"  {name:<14} {'train/val/test':<14} {where}")
    from ..data.text import text_sources

    for name, splits, where in text_sources(args.data_root):
        print(f"  {name:<14} {splits:<14} {where}")
    from ..data.ucr import UCR_DATASETS, locate_ts

    for name in UCR_DATASETS:                       # UCR/UEA archive sets: load_dataset("ucr/NAME")
        for split in ("train", "test"):
            try:
                where = str(locate_ts(name, split, args.data_root))
            except DataNotFoundError:
                where = "not found"
            print(f"  ucr/{name:<18} {split:<5} {where}")
    return 0
