"""Write the patch-shortcut benchmark (real Fashion-MNIST/MNIST images, upscaled to RGB, coloured
patches on the benign class in training only, with their masks) as an image folder in CDEP's
ISIC layout; see explainreg.data.patch_benchmark.

    python scripts/make_patch_benchmark.py OUT [--dataset fashion-mnist] [--n-train 1000] [--n-test 500]
"""
from __future__ import annotations

import argparse
import json

from explainreg.data.patch_benchmark import write_patch_benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"))
    p.add_argument("--classes", default="0,6", help="source classes benign,malignant (default 0,6: T-shirt vs shirt)")
    p.add_argument("--n-train", type=int, default=1000, help="training images per class")
    p.add_argument("--n-test", type=int, default=500, help="test images per class")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--patch-fraction", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None)
    a = p.parse_args()
    classes = tuple(int(c) for c in a.classes.split(","))
    out = write_patch_benchmark(a.out, dataset=a.dataset, classes=classes, n_train=a.n_train, n_test=a.n_test,
                                size=a.size, patch_fraction=a.patch_fraction, seed=a.seed, root=a.data_root)
    print(json.dumps(json.loads((out / "benchmark.json").read_text())["counts"]), "->", out)


if __name__ == "__main__":
    main()
