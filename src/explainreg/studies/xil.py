"""``explainreg study xil``: the XIL typology's comparison (Friedrich et al. 2023; methods.md A.11).

Trains vanilla, RRR, RRR-GradCAM, RBR, HINT, CDEP, counterexamples and Expected Gradients on
DecoyMNIST or Decoy-FMNIST with XIL's settings (CDEP's DecoyMNIST net = XIL's SimpleConvNet, Adam
1e-3, weight decay 1e-4, batch 256, each penalty weighted by its regularisation rate (× its
normalisation rate computed over one pass of the training data for CDEP, whose rate 2e6 is given
with it; ``--normalise all`` as XIL's ``Learner.fit`` default), and reports test accuracy and the
wrong-reason score WR of Grad-CAM and of input gradients (XIL's "IG", ``ig_ross``), mean ± std over
seeds, in ``results.csv`` (one row per run) and ``report.md``. ``--feedback random|incomplete`` gives
every method XIL's corrupted masks (random: each pixel 1 with probability ½; incomplete: the first
half of each mask's pixels, in raster order, removed). The masks are the patch's corner (XIL's E);
WR is measured on the test images with the same kind of mask.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..runs import atomic_write_bytes
from . import register_study

#: XIL's regularisation rates (issue 17 / methods.md A.11); EG is not in XIL: λ = 1 is our choice
RATES = {"rrr": 10.0, "rrr_gradcam": 10.0, "rbr": 1e6, "cdep": 2e6, "hint": 1e4, "expected_gradients": 1.0}
#: the penalties whose rate is multiplied by the normalisation rate by default (CDEP's 2e6 is given with it)
NORMALISED = ("cdep",)
METHODS = ("vanilla", "rrr", "rrr_gradcam", "rbr", "hint", "cdep", "counterexamples", "expected_gradients")
DATASETS = ("decoy-mnist", "decoy-fmnist")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="decoy-mnist", choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (XIL: 50 with early stopping)")
    parser.add_argument("--train-limit", type=int, default=None, metavar="N")
    parser.add_argument("--test-limit", type=int, default=None, metavar="N")
    parser.add_argument("--feedback", default="correct", choices=("correct", "random", "incomplete"))
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 1,024 train / 512 test images")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: results/xil-DATASET)")
    parser.add_argument("--data-root", default=None, metavar="PATH")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--normalise", default="cdep", choices=("cdep", "all", "none"),
                        help="which penalties get XIL's normalisation rate (default: CDEP only, as the rates are given)")


def corrupt(mask: torch.Tensor, feedback: str, generator: torch.Generator) -> torch.Tensor:
    """XIL's feedback-quality masks: ``"random"`` Bernoulli(½) per pixel; ``"incomplete"`` the first
    ⌊n/2⌋ of each mask's n pixels (raster order) removed; ``"correct"`` unchanged."""
    if feedback == "correct":
        return mask
    if feedback == "random":
        return torch.rand(mask.shape, generator=generator) < 0.5
    flat = mask.flatten(1)
    rank = flat.long().cumsum(1)
    keep = flat & (rank > (flat.sum(1, keepdim=True) // 2))
    return keep.view_as(mask)


def _data(args: argparse.Namespace):
    from ..data.shortcuts import decoy_mnist

    source = "mnist" if args.dataset == "decoy-mnist" else "fashion-mnist"
    train = decoy_mnist("train", args.data_root, limit=args.train_limit, mask="patch", reward_mask=True, source=source)
    test = decoy_mnist("test", args.data_root, limit=args.test_limit, mask="patch", source=source)
    generator = torch.Generator().manual_seed(12345)
    train.extras["mask"] = corrupt(train.extras["mask"], args.feedback, generator)
    train.extras["reward_mask"] = corrupt(train.extras["reward_mask"], args.feedback, generator)
    return train, test


def _objective(method: str):
    from ..objective import Objective
    from ..penalties import CDEP, HINT, RBR, RRR, ExpectedGradients, RRRGradCAM

    penalty = {"rrr": RRR, "rrr_gradcam": RRRGradCAM, "rbr": RBR, "hint": HINT, "cdep": CDEP,
               "expected_gradients": ExpectedGradients}.get(method)
    return Objective() if penalty is None else Objective({penalty(): RATES[method]})


def run_one(method: str, seed: int, train_set, test_set, args: argparse.Namespace) -> dict[str, Any]:
    """Train one model and measure its test accuracy and WR (Grad-CAM, input gradients)."""
    from ..data.counterexamples import counterexamples
    from ..metrics.localisation import WrongReason, wrong_reason_maps
    from ..models import cdep_decoymnist_net
    from ..training import TrainConfig, evaluate_accuracy, train
    from ..training.rates import normalisation_rates

    torch.manual_seed(seed)
    model = cdep_decoymnist_net()
    objective = _objective(method)
    data = counterexamples(train_set, 1, seed=seed) if method == "counterexamples" else train_set
    started = time.perf_counter()
    normalise = args.normalise == "all" or (args.normalise == "cdep" and method in NORMALISED)
    rates = normalisation_rates(model, objective, data, batch_size=256) if objective.penalties and normalise else {}
    objective.set_rates(rates or None)
    config = TrainConfig(epochs=args.epochs, batch_size=256, lr=1e-3, weight_decay=1e-4, optimizer="adam",
                         seed=seed, device=args.device, progress=False)
    train(model, objective, data, None, config=config)
    seconds = time.perf_counter() - started
    model.eval()
    row: dict[str, Any] = {"method": method, "seed": seed, "accuracy": 100 * evaluate_accuracy(model, test_set),
                           "seconds": seconds, "rate": next(iter(rates.values()), math.nan)}
    for kind, column in (("gradcam", "wr_gradcam"), ("input_gradient", "wr_ig")):
        metric = WrongReason()
        for start in range(0, len(test_set), 500):
            x = test_set.x[start:start + 500]
            metric.update(None, None, None, wrong_reason_maps(model, x, kind),
                          test_set.extras["mask"][start:start + 500])
        row[column] = metric.compute().value
    return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std (population over seeds, as ``np.std``) per method."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "runs": len(group)}
        for key in ("accuracy", "wr_gradcam", "wr_ig", "seconds"):
            v = torch.tensor([float(r[key]) for r in group], dtype=torch.float64)
            entry[key] = float(v.mean())
            entry[key + "_std"] = float(v.std(unbiased=False)) if len(v) > 1 else 0.0
        out.append(entry)
    return out


def write_report(out: Path, rows: list[dict[str, Any]], args: argparse.Namespace, config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    lines = [f"# XIL study on {args.dataset} (feedback: {args.feedback})", "",
             f"{len(args.seeds)} seed(s), {args.epochs} epoch(s), "
             f"{config['train_images']} train / {config['test_images']} test images"
             + (" — **quick mode: a smoke test, not a result**" if args.quick else ""), "",
             "| method | test accuracy % | WR Grad-CAM (lower better) | WR IG | s/run |", "|---|---|---|---|---|"]
    for e in summarise(rows):
        lines.append(f"| {e['method']} | {e['accuracy']:.2f} ± {e['accuracy_std']:.2f} | "
                     f"{e['wr_gradcam']:.2f} ± {e['wr_gradcam_std']:.2f} | {e['wr_ig']:.2f} ± {e['wr_ig_std']:.2f} | "
                     f"{e['seconds']:.0f} |")
    lines += ["", "Settings: " + json.dumps({k: v for k, v in config.items() if k != "command"}), "",
              "Reproduce: `" + config["command"] + "`", ""]
    (out / "report.md").write_text("\n".join(lines))


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 1
        args.train_limit, args.test_limit = args.train_limit or 1024, args.test_limit or 512
    out = Path(args.out or f"results/xil-{args.dataset}" + ("" if args.feedback == "correct" else f"-{args.feedback}"))
    train_set, test_set = _data(args)
    config = {"dataset": args.dataset, "methods": args.methods, "seeds": args.seeds, "epochs": args.epochs,
              "feedback": args.feedback, "rates": {m: RATES[m] for m in args.methods if m in RATES},
              "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 256, "model": "cdep_decoymnist",
              "normalisation_rate": args.normalise, "train_images": len(train_set), "test_images": len(test_set),
              "command": "explainreg study xil " + " ".join(
                  [f"--dataset {args.dataset}", f"--epochs {args.epochs}", "--seeds " + " ".join(map(str, args.seeds)),
                   f"--feedback {args.feedback}", f"--normalise {args.normalise}"] + (["--quick"] if args.quick else [])
                  + ([f"--train-limit {args.train_limit}"] if args.train_limit and not args.quick else [])
                  + ([f"--test-limit {args.test_limit}"] if args.test_limit and not args.quick else []))}
    rows = []
    key = {k: config[k] for k in ("dataset", "epochs", "feedback", "normalisation_rate", "train_images", "test_images")}
    for seed in args.seeds:
        for method in args.methods:
            cached = out / "runs" / f"{method}_seed{seed}.json"
            if cached.is_file() and json.loads(cached.read_text()).get("settings") == key:
                rows.append(json.loads(cached.read_text())["row"])  # finished before: an interrupted grid resumes
                continue
            row = run_one(method, seed, train_set, test_set, args)
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cached, json.dumps({"settings": key, "row": row}, indent=2).encode())
            print(f"{method} seed {seed}: acc {row['accuracy']:.2f} % WR(Grad-CAM) {row['wr_gradcam']:.2f} "
                  f"WR(IG) {row['wr_ig']:.2f} ({row['seconds']:.0f} s)", flush=True)
            rows.append(row)
            write_report(out, rows, args, config)
    print(f"report: {out / 'report.md'}")
    return 0


register_study("xil", "XIL typology: vanilla, RRR, RRR-G, RBR, HINT, CDEP, counterexamples, EG on Decoy(F)MNIST "
                      "(Friedrich et al. 2023): accuracy and wrong-reason scores", add_arguments, run)
