"""Where does each model's saliency |∂z_y/∂x| peak, and does it sit on the object or the background?

Finds penalties that are satisfied by a degenerate map (e.g. one spike on a background pixel that
sets the per-sample maximum). For each run folder: the most frequent arg-max pixels over the first
``--images`` test images, the mean input value at the arg-max, and the mean of ĝ = |g| / max|g| on
object pixels (min-max normalised input > 0.1) and on background pixels.

Usage: python scripts/saliency_peaks.py RUN_DIR [RUN_DIR ...] [--images 300] [--data-root ROOT]
"""
from __future__ import annotations

import argparse
from collections import Counter

import torch

from explainreg.attribution import attribute
from explainreg.data import load_dataset
from explainreg.penalties.functional import input_target
from explainreg.runs import load_run


def peaks(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
    a = attribute(model, x, y, "saliency").abs().sum(1).flatten(1)
    top = a.argmax(1)
    width = x.shape[-1]
    ghat = a / a.amax(1, keepdim=True).clamp_min(1e-12)
    image = x.mean(1).flatten(1)
    obj = input_target(x).flatten(1) > 0.1  # locality's target: the channel mean, min-max normalised
    return {"argmax": Counter((int(t) // width, int(t) % width) for t in top).most_common(3),
            "x_at_argmax": float(image.gather(1, top[:, None]).mean()),
            "ghat_object": float(ghat[obj].mean()), "ghat_background": float(ghat[~obj].mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (config.json + checkpoint.pt)")
    p.add_argument("--images", type=int, default=300, help="first N test images (300)")
    p.add_argument("--data-root", default=None, help="data root (default: $EXPLAINREG_DATA)")
    args = p.parse_args()
    print("| run | arg-max pixels (row, col): count | x at arg-max | mean ĝ object | mean ĝ background |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        model, config = load_run(run)
        test = load_dataset(config["dataset"], "test", root=args.data_root, limit=args.images)
        r = peaks(model, test.x, test.y)
        where = ", ".join(f"{pos}: {n}" for pos, n in r["argmax"])
        print(f"| {run} | {where} | {r['x_at_argmax']:.3f} | {r['ghat_object']:.3f} | {r['ghat_background']:.3f} |")


if __name__ == "__main__":
    main()
