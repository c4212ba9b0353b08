"""Build the compact real subsets shipped in ``src/explainreg/data/bundled`` from the full IDX files.

Usage: python scripts/make_bundled_subset.py --data-root ../shared/data [--train 3000 --test 1000]
Keeps the first n/10 images of each class, in file order, so the subset is class-balanced.
"""
import argparse
from pathlib import Path

import torch

from explainreg.data import SOURCES, locate, read_idx, write_idx
from explainreg.data.sources import file_in

OUT = Path(__file__).resolve().parents[1] / "src" / "explainreg" / "data" / "bundled"


def balanced_first(labels: torch.Tensor, n: int) -> torch.Tensor:
    per_class = n // 10
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)])
    return keep.sort().values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    for name, source in SOURCES.items():
        for split, n in (("train", args.train), ("test", args.test)):
            folder, _ = locate(name, split, args.data_root, download=False)
            image_file, label_file = source.split_files(split)
            images, labels = read_idx(file_in(folder, image_file)), read_idx(file_in(folder, label_file))
            keep = balanced_first(labels, n)
            (OUT / name).mkdir(parents=True, exist_ok=True)
            write_idx(OUT / name / image_file, images[keep])
            write_idx(OUT / name / label_file, labels[keep])
            print(f"{name} {split}: {len(keep)} images -> {OUT / name}")


if __name__ == "__main__":
    main()
