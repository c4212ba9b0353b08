"""Explanation share vs behaviour over λ on the README's corner-shortcut example (documentation: methods/shortcuts).

MNIST digits with a 4×4 corner whose brightness is label / 9 (3,000 training images), the README's
small CNN, 2 epochs; CDEP and RRR over λ and seeds. For each model, on 1,000 test digits with each
class's corner value planted: the corner's CD share of the true class's logit and of its margin,
gradient × input's margin share, accuracy with the corner agreeing / disagreeing with the label,
their gap (reliance), the flip rate and the worst-group accuracy; and the accuracy on clean test
digits (no corner). Prints a Markdown table and writes it as CSV.

    OMP_NUM_THREADS=1 python scripts/shortcut_lambda_sweep.py --data-root ../shared/data --out sweep.csv
"""
from __future__ import annotations

import argparse
import csv
import time

import torch
from torch import nn

import explainreg as er
from explainreg.data import load_dataset, masked_dataset
from explainreg.metrics import DecisionShare, ShortcutReliance
from explainreg.penalties import CDEP, RRR
from explainreg.training import TrainConfig, train


def plant(images: torch.Tensor, mask, target: torch.Tensor, index) -> torch.Tensor:
    """Class ``target``'s corner value (target / 9) in the top-left 4×4 corner."""
    out = images.clone()
    out[:, :, :4, :4] = (target.float() / 9).view(-1, 1, 1, 1).to(out)
    return out


def one_run(method: str, lam: float, seed: int, data, test, corner) -> dict:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 12 * 12, 10))
    penalty = {"cdep": CDEP, "rrr": RRR}.get(method)
    objective = er.Objective({penalty(): lam} if penalty and lam else {}, seed=seed)
    started = time.perf_counter()
    train(model, objective, data, config=TrainConfig(epochs=2, batch_size=64, seed=seed, progress=False))
    model.eval()
    reliance = ShortcutReliance(plant, seed=seed)(model, test.x, test.y, mask=corner)
    own = plant(test.x, corner, test.y, None)                       # the training distribution
    cd = DecisionShare("cd")(model, own, test.y, mask=corner)
    gxi = DecisionShare("grad_x_input")(model, own, test.y, mask=corner)
    with torch.no_grad():
        clean = float((model(test.x).argmax(1) == test.y).float().mean())
    return {"method": method, "lambda": lam, "seed": seed, "clean_accuracy": 100 * clean,
            "acc_agree": 100 * reliance.extra["accuracy_agreeing"],
            "acc_disagree": 100 * reliance.extra["accuracy_disagreeing"], "reliance": 100 * reliance.value,
            "flip": 100 * reliance.extra["flip_rate"], "worst_group": 100 * reliance.extra["worst_group_accuracy"],
            "cd_logit_share": cd.extra["logit_share"], "cd_margin_share": cd.value,
            "gxi_margin_share": gxi.value, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--methods", nargs="+", default=["cdep", "rrr"], choices=["cdep", "rrr"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="shortcut_lambda_sweep.csv")
    args = parser.parse_args()
    digits = load_dataset("mnist", "train", args.data_root, limit=3000)
    x = digits.x.clone()
    x[:, :, :4, :4] = (digits.y.float() / 9).view(-1, 1, 1, 1)
    corner = torch.zeros(28, 28)
    corner[:4, :4] = 1
    data = masked_dataset(x, digits.y, corner)
    test = load_dataset("mnist", "test", args.data_root, limit=1000)
    jobs = [("vanilla", 0.0)] + [(m, lam) for m in args.methods for lam in args.lambdas]
    rows = [one_run(m, lam, s, data, test, corner) for m, lam in jobs for s in args.seeds]
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    keys = ["clean_accuracy", "acc_agree", "acc_disagree", "reliance", "flip", "worst_group", "cd_logit_share",
            "cd_margin_share", "gxi_margin_share"]
    print("| method | λ | seeds | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 3) + "|")
    for m, lam in jobs:
        part = [r for r in rows if r["method"] == m and r["lambda"] == lam]
        cells = []
        for k in keys:
            v = torch.tensor([r[k] for r in part], dtype=torch.float64)
            digits_shown = 3 if k.endswith("share") else 1
            spread = f" ± {float(v.std()):.{digits_shown}f}" if len(v) > 1 else ""
            cells.append(f"{float(v.mean()):.{digits_shown}f}{spread}")
        print(f"| {m} | {lam:g} | {len(part)} | " + " | ".join(cells) + " |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
