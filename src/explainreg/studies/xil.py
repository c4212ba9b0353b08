"""``explainreg study xil``: the XIL typology's comparison (Friedrich et al. 2023; documentation: methods/xil).

Trains vanilla, RRR, RRR-GradCAM, RBR, HINT, CDEP, counterexamples and Expected Gradients (and
Saliency Guided Training, λ = 1, which takes no mask) on DecoyMNIST or Decoy-FMNIST and reports test accuracy and the wrong-reason score WR of Grad-CAM and of
input gradients (XIL's "IG", ``ig_ross``), mean ± std over seeds, in ``results.csv`` (one row per
run) and ``report.md``.

The defaults follow XIL's paper-era code (ml-research/A-Typology-for-Exploring-the-Mitigation-of-
Shortcut-Behavior @922a054: ``main_MNIST.py``, ``xil_methods/xil_loss.py``, ``learner/learner.py``;
the documentation's XIL results, "Faithful settings"): loss = CE + λ·R with **no normalisation rate**, the per-data-set
rates of :data:`PAPER_RATES`, RRR and HINT **summed** over the batch (HINT ``reduction="sum"``;
RRR, whose class averages over the batch, with λ × the batch size 256), Grad-CAM α **detached** as
Captum's ``LayerGradCam``, **raw 0–255 pixels**, all 60,000 training images, Adam 1e-3 **without
weight decay**, batch 256, 50 epochs, the last epoch's model (XIL's "best on train" file is
overwritten by the last epoch's). Every setting is an option (``--rates issue``, ``--rate rrr=10``,
``--normalise``, ``--reduction``, ``--gradcam``, ``--pixels``, ``--train-split``,
``--weight-decay``, ``--epochs``); the XIL results page of the documentation gives the flags of the
library settings (the notebook's rates, CDEP normalised, batch means, α differentiated, [−1, 1] pixels).

``--feedback random|incomplete`` gives every method XIL's corrupted masks (random: each pixel 1 with
probability ½; incomplete: the first half of each mask's pixels, in raster order, removed). The masks
are the patch's corner (XIL's E); WR is measured on the test images with the same kind of mask.
Finished runs are cached in ``OUT/runs``; a folder made with other settings is refused.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .._validation import check_choice
from ..report import mean_std
from ..runs import atomic_save, atomic_write_bytes, atomic_write_json
from . import register_study
from .behaviour import COLUMNS, format_row
from .skeleton import cached_run, refuse_other_settings, settings_differences, settings_from_namespace
from ..data.counterexamples import counterexamples
from ..data.datasets import ArrayDataset
from ..data.shortcuts import decoy_mnist, DecoyShortcut
from ..metrics.functional.localisation import wrong_reason_maps
from ..metrics.localisation import WrongReason
from ..models import cdep_decoymnist_net
from ..objective import Objective
from ..penalties import CDEP, ExpectedGradients, HINT, RBR, RRR, RRRGradCAM, SaliencyGuided
from ..report import map_grid
from ..training import evaluate_accuracy, train, TrainConfig
from ..training.rates import normalisation_rates
from .behaviour import shortcut_evidence

__all__ = ["BATCH_SIZE", "DATASETS", "ISSUE_RATES", "KEY_SETTINGS", "METHODS", "PAPER_RATES", "PENALISED",
           "SGT_WEIGHT", "XILSettings", "add_arguments", "corrupt", "effective_rate", "example_maps", "pixel_range", "run", "run_one", "run_xil",
           "study_rates", "summarise", "to_pixels", "write_report"]

METHODS = ("vanilla", "rrr", "rrr_gradcam", "rbr", "hint", "cdep", "counterexamples", "expected_gradients",
           "saliency_guided")
#: Saliency Guided Training's weight (Ismail et al. 2021, λ = 1; not in XIL, and it takes no mask)
SGT_WEIGHT = 1.0
PENALISED = ("rrr", "rrr_gradcam", "rbr", "hint", "cdep", "expected_gradients")
DATASETS = ("decoy-mnist", "decoy-fmnist")
FEEDBACK = ("correct", "random", "incomplete")
BATCH_SIZE = 256
#: XIL's paper-era rates (main_MNIST.py and wrong_reason_MNIST.py @922a054), per data set; HINT on
#: Decoy-FMNIST is 1e-5 there (robustness.ipynb @7d30d91 used 10: ``--rate hint=10``). EG is not in
#: XIL: λ = 1 is our choice.
PAPER_RATES = {
    "decoy-mnist": {"rrr": 10.0, "rbr": 1e5, "rrr_gradcam": 1.0, "hint": 100.0, "cdep": 1e6, "expected_gradients": 1.0},
    "decoy-fmnist": {"rrr": 10.0, "rbr": 1e6, "rrr_gradcam": 10.0, "hint": 1e-5, "cdep": 2e6, "expected_gradients": 1.0},
}
#: the rates listed in XIL's visualize_explanations.ipynb (its model file names; ``--rates issue``)
ISSUE_RATES = {"rrr": 10.0, "rrr_gradcam": 10.0, "rbr": 1e6, "cdep": 2e6, "hint": 1e4, "expected_gradients": 1.0}
#: the settings a results folder is keyed by: a cached run or folder made with other values is refused
KEY_SETTINGS = ("dataset", "epochs", "feedback", "normalisation_rate", "train_images", "test_images", "rates",
                "reduction", "gradcam", "pixels", "weight_decay", "train_split", "selection")


def _rate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in PENALISED:
        raise argparse.ArgumentTypeError(f"--rate must be METHOD=VALUE with METHOD one of {', '.join(PENALISED)}; "
                                         f"got {text!r}")
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate {name}=VALUE needs a number, got {value!r}") from None
    if not rate >= 0 or math.isinf(rate):
        raise argparse.ArgumentTypeError(f"--rate {name} must be a finite number ≥ 0, got {value!r}")
    return name, rate


@dataclass
class XILSettings:
    """The study's settings, named as the command line's options (the defaults: XIL's paper-era code,
    see the module doc). ``quick`` keeps the first seed, 1 epoch, and (unless given) 1,024 train /
    512 test images. ``rate``: ``(method, λ)`` overrides of the ``rates`` table.

    Example::

        >>> s = XILSettings(quick=True, seeds=[3, 4], rate=[("hint", 10.0)])
        >>> s.seeds, s.epochs, s.train_limit, s.test_limit, s.output, study_rates(s)["hint"]
        ([3], 1, 1024, 512, 'results/xil-decoy-mnist', 10.0)
        >>> XILSettings(feedback="noisy")
        Traceback (most recent call last):
        ...
        ValueError: feedback must be one of 'correct', 'random', 'incomplete'; got 'noisy'
    """

    dataset: str = "decoy-mnist"
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    epochs: int = 50
    train_limit: int | None = None
    test_limit: int | None = None
    feedback: str = "correct"
    quick: bool = False
    out: str | None = None
    data_root: str | None = None
    device: str = "cpu"
    rates: str = "paper"
    rate: Sequence[tuple[str, float]] = field(default_factory=list)
    normalise: str = "none"
    reduction: str = "xil"
    gradcam: str = "captum"
    pixels: str = "raw"
    train_split: str = "full"
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        for name, value, allowed in (("dataset", self.dataset, DATASETS), ("feedback", self.feedback, FEEDBACK),
                                     ("rates", self.rates, ("paper", "issue")),
                                     ("normalise", self.normalise, ("none", "cdep", "all")),
                                     ("reduction", self.reduction, ("xil", "library")),
                                     ("gradcam", self.gradcam, ("captum", "differentiable")),
                                     ("pixels", self.pixels, ("raw", "unit")),
                                     ("train_split", self.train_split, ("full", "train"))):
            check_choice(name, value, allowed)
        for method in self.methods:
            check_choice("methods", method, METHODS)
        self.methods, self.seeds, self.rate = list(self.methods), list(self.seeds), list(self.rate)
        if self.quick:
            self.seeds, self.epochs = self.seeds[:1], 1
            self.train_limit, self.test_limit = self.train_limit or 1024, self.test_limit or 512

    @property
    def output(self) -> str:
        """The study folder: ``out``, else ``results/xil-DATASET[-FEEDBACK]``."""
        return self.out or f"results/xil-{self.dataset}" + ("" if self.feedback == "correct" else f"-{self.feedback}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> XILSettings:
        """The settings of a parsed ``explainreg study xil`` command line."""
        return settings_from_namespace(cls, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="decoy-mnist", choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=50, help="epochs per run (XIL: 50, the last epoch's model)")
    parser.add_argument("--train-limit", type=int, default=None, metavar="N")
    parser.add_argument("--test-limit", type=int, default=None, metavar="N")
    parser.add_argument("--feedback", default="correct", choices=FEEDBACK)
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 1,024 train / 512 test images")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: results/xil-DATASET)")
    parser.add_argument("--data-root", default=None, metavar="PATH")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rates", default="paper", choices=("paper", "issue"),
                        help="paper: XIL's per-data-set rates (main_MNIST.py @922a054); issue: the list in XIL's "
                             "visualize_explanations.ipynb")
    parser.add_argument("--rate", type=_rate, action="append", default=[], metavar="METHOD=VALUE",
                        help="override one method's rate (repeatable), e.g. --rate hint=10")
    parser.add_argument("--normalise", default="none", choices=("none", "cdep", "all"),
                        help="which penalties get the normalisation rate Σ CE / Σ R / n (XIL's paper-era code: none; "
                             "the library settings: cdep)")
    parser.add_argument("--reduction", default="xil", choices=("xil", "library"),
                        help="xil: RRR and HINT summed over the batch (RRR via λ × 256); library: the classes' "
                             "batch means (the library settings)")
    parser.add_argument("--gradcam", default="captum", choices=("captum", "differentiable"),
                        help="captum: Grad-CAM weights α detached (XIL); differentiable: α differentiated (the library settings)")
    parser.add_argument("--pixels", default="raw", choices=("raw", "unit"),
                        help="raw: 0–255 pixels (XIL); unit: the library's DecoyMNIST scaling to [−1, 1]")
    parser.add_argument("--train-split", default="full", choices=("full", "train"),
                        help="full: all 60,000 training images (XIL); train: the 54,000 of the 90/10 split (the library's)")
    parser.add_argument("--weight-decay", type=float, default=0.0,
                        help="Adam's weight decay (XIL's paper-era code: 0; the library settings: 1e-4)")


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


def study_rates(args: XILSettings) -> dict[str, float]:
    """λ per penalised method as given (before the RRR batch-size factor and any normalisation rate)."""
    rates = dict(PAPER_RATES[args.dataset] if args.rates == "paper" else ISSUE_RATES)
    rates.update(dict(args.rate))
    return rates


def effective_rate(method: str, rates: dict[str, float], reduction: str) -> float:
    """The weight the study gives the penalty class: RRR's batch mean × 256 equals XIL's batch sum
    (the last, shorter batch excepted: 60,000 = 234·256 + 96, whose rows weigh 256/96 more)."""
    return rates[method] * (BATCH_SIZE if method == "rrr" and reduction == "xil" else 1)


def to_pixels(dataset, pixels: str):
    """``pixels="raw"``: the library's [−1, 1] images mapped back to XIL's 0–255 (x ↦ (x + 1)·127.5)."""
    if pixels == "unit":
        return dataset
    return ArrayDataset((dataset.x + 1.0) * 127.5, dataset.y, dataset.extras, name=dataset.name,
                        source=dataset.source + ", raw 0–255 pixels", mask_meanings=dict(dataset.mask_meanings))


def pixel_range(pixels: str) -> tuple[float, float]:
    """The counterexamples' uniform value range: XIL draws 0–255 (``ce.correct_one``)."""
    return (0.0, 255.0) if pixels == "raw" else (-1.0, 1.0)


def _data(args: XILSettings):
    source = "mnist" if args.dataset == "decoy-mnist" else "fashion-mnist"
    options = dict(mask="patch", reward_mask=True, source=source)
    train = decoy_mnist("train", args.data_root, **options)
    if args.train_split == "full":  # the 90/10 split's two parts: all 60,000 training images, as XIL
        val = decoy_mnist("val", args.data_root, **options)
        train = ArrayDataset(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]),
                             {k: torch.cat([v, val.extras[k]]) for k, v in train.extras.items()}, name=train.name,
                             source=train.source.replace("train", "train + val", 1),
                             mask_meanings=dict(train.mask_meanings))
    if args.train_limit is not None:
        train = ArrayDataset(train.x[:args.train_limit], train.y[:args.train_limit],
                             {k: v[:args.train_limit] for k, v in train.extras.items()}, name=train.name,
                             source=f"{train.source}, first {args.train_limit}",
                             mask_meanings=dict(train.mask_meanings))
    test = decoy_mnist("test", args.data_root, limit=args.test_limit, mask="patch", source=source)
    generator = torch.Generator().manual_seed(12345)
    train.extras["mask"] = corrupt(train.extras["mask"], args.feedback, generator)
    train.extras["reward_mask"] = corrupt(train.extras["reward_mask"], args.feedback, generator)
    return to_pixels(train, args.pixels), to_pixels(test, args.pixels)


def _objective(method: str, args: XILSettings):
    detach = args.gradcam == "captum"
    build = {"rrr": RRR, "rbr": RBR, "cdep": CDEP, "expected_gradients": ExpectedGradients,
             "rrr_gradcam": lambda: RRRGradCAM(detach_weights=detach),
             "hint": lambda: HINT(reduction="sum" if args.reduction == "xil" else "mean", detach_weights=detach)}
    if method == "saliency_guided":
        return Objective({SaliencyGuided(): SGT_WEIGHT}), SGT_WEIGHT
    if method not in build:
        return Objective(), math.nan
    rate = effective_rate(method, study_rates(args), args.reduction)
    return Objective({build[method](): rate}), rate


def run_one(method: str, seed: int, train_set, test_set, args: XILSettings) -> dict[str, Any]:
    """Train one model and measure its test accuracy and WR (Grad-CAM, input gradients)."""
    torch.manual_seed(seed)
    model = cdep_decoymnist_net()
    objective, reg_rate = _objective(method, args)
    data = counterexamples(train_set, 1, seed=seed, value_range=pixel_range(args.pixels)) \
        if method == "counterexamples" else train_set
    started = time.perf_counter()
    normalise = args.normalise == "all" or (args.normalise == "cdep" and method == "cdep")
    rates = normalisation_rates(model, objective, data, batch_size=BATCH_SIZE) \
        if objective.penalties and normalise else {}
    objective.set_rates(rates or None)
    config = TrainConfig(epochs=args.epochs, batch_size=BATCH_SIZE, lr=1e-3, weight_decay=args.weight_decay,
                         optimizer="adam", select="last", seed=seed, device=args.device, progress=False)
    train(model, objective, data, None, config=config)
    seconds = time.perf_counter() - started
    model.eval()
    # the weights, for the report's example maps (written before the run's JSON, which marks it finished)
    atomic_save(model.state_dict(), Path(args.output) / "runs" / f"{method}_seed{seed}.pt")
    row: dict[str, Any] = {"method": method, "seed": seed, "accuracy": 100 * evaluate_accuracy(model, test_set),
                           "seconds": seconds, "rate": next(iter(rates.values()), math.nan), "reg_rate": reg_rate}
    for kind, column in (("gradcam", "wr_gradcam"), ("input_gradient", "wr_ig")):
        metric = WrongReason()
        for start in range(0, len(test_set), 500):
            x = test_set.x[start:start + 500]
            metric.update(None, None, None, wrong_reason_maps(model, x, kind),
                          test_set.extras["mask"][start:start + 500])
        row[column] = metric.compute().value
    return {**row, **_shortcut_columns(model, test_set, args)}


def _shortcut_columns(model, test_set, args: XILSettings) -> dict[str, float]:
    """The behavioural shortcut evidence on the test set (documentation: methods/shortcuts): accuracy with the label's
    own training decoy vs another class's in a corner, flips, group accuracies, and the patch's CD and
    gradient × input shares of the logit and of the margin."""
    return shortcut_evidence(model, test_set.x, test_set.y, test_set.extras["mask"],
                             meaning=test_set.mask_meanings.get("mask"), shortcut=DecoyShortcut(pixels=args.pixels),
                             source=test_set.source)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std (population over seeds, as ``np.std``) per method."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "runs": len(group)}
        for key in ("accuracy", "wr_gradcam", "wr_ig", "seconds", *(c for c in COLUMNS if c in group[0])):
            v = torch.tensor([float(r.get(key, math.nan)) for r in group], dtype=torch.float64)
            entry[key] = float(v.mean())
            entry[key + "_std"] = float(v.std(unbiased=False)) if len(v) > 1 else 0.0
        out.append(entry)
    return out


def write_report(out: Path, rows: list[dict[str, Any]], args: XILSettings, config: dict[str, Any],
                 figures: Sequence[tuple[str, str]] = ()) -> None:
    """``results.csv`` (one row per run), ``config.json`` and ``report.md`` (mean ± std per method, then
    ``figures``: ``(file name, caption)`` pairs in ``out``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / "results.csv", table.getvalue().encode())  # readers never see half a file
    atomic_write_json(out / "config.json", config)
    lines = [f"# XIL study on {args.dataset} (feedback: {args.feedback})", "",
             f"{len(args.seeds)} seed(s), {args.epochs} epoch(s), "
             f"{config['train_images']} train / {config['test_images']} test images"
             + (" — **quick mode: a smoke test, not a result**" if args.quick else ""), "",
             "Mean ± std (population, as XIL's `np.std`) over the seeds each method has finished.", "",
             "| method | seeds | test accuracy % | WR Grad-CAM (lower better) | WR IG | s/run |",
             "|---|---|---|---|---|---|"]
    for e in summarise(rows):
        cells = [mean_std(e[k], e[k + "_std"], e["runs"]) for k in ("accuracy", "wr_gradcam", "wr_ig")]
        lines.append(f"| {e['method']} | {e['runs']} | " + " | ".join(cells) + f" | {e['seconds']:.0f} |")
    shown = [c for c in COLUMNS if all(c in e for e in summarise(rows))]
    if shown:
        lines += ["", "Does the model still use the decoy? (documentation: methods/shortcuts; test images, %; reliance = accuracy "
                  "with the label's own training decoy in a corner − with another class's; shares of the true "
                  "class's logit and of its margin over the runner-up)", "",
                  "| method | " + " | ".join(COLUMNS[c] for c in shown) + " |", "|---" * (len(shown) + 1) + "|"]
        lines += [f"| {e['method']} | " + " | ".join(format_row(e, shown)) + " |" for e in summarise(rows)]
    lines += ["", "Rates λ as given (" + config["rates_source"] + "): " + json.dumps(config["rates"])
              + (". RRR's penalty class averages over the batch, so the study weights it by λ × 256 "
                 "(= XIL's batch sum)" if config["reduction"] == "xil" else ""), "",
              "Settings: " + json.dumps({k: v for k, v in config.items() if k != "command"}), "",
              "Reproduce: `" + config["command"] + "`", ""]
    lines += [f"![{caption}]({name})\n" for name, caption in figures]
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode())


def example_maps(out: Path, test_set, methods: Sequence[str], seed: int, n: int = 6) -> list[tuple[str, str]]:
    """``maps_gradcam.png`` and ``maps_ig.png``: the first ``n`` test images and each method's Grad-CAM
    and |input gradient| (XIL's two WR maps, predicted class) for the models of ``seed`` whose weights are
    in ``runs/`` (cyan: the annotated region). Returns ``(file name, caption)`` per figure written."""
    models = {}
    for method in methods:
        weights = out / "runs" / f"{method}_seed{seed}.pt"
        if weights.is_file():
            models[method] = cdep_decoymnist_net()
            models[method].load_state_dict(torch.load(weights, weights_only=True))
            models[method].eval()
    if not models:
        return []
    x, y, mask = test_set.x[:n], test_set.y[:n], test_set.extras["mask"][:n].flatten(1, -3).amax(1)
    figures = []
    for kind, name, label in (("gradcam", "maps_gradcam.png", "Grad-CAM"),
                              ("input_gradient", "maps_ig.png", "|input gradient|")):
        rows = {m: wrong_reason_maps(model, x, kind).abs() for m, model in models.items()}
        map_grid(out / name, x, rows, titles=[f"label {int(v)}" for v in y], outlines=mask,
                 title=f"{label} of the predicted class, seed {seed} (cyan: the annotated region)")
        figures.append((name, f"{label}, seed {seed}"))
    return figures


def _command(args: XILSettings) -> str:
    parts = [f"--dataset {args.dataset}", "--methods " + " ".join(args.methods), f"--epochs {args.epochs}",
             "--seeds " + " ".join(map(str, args.seeds)), f"--feedback {args.feedback}", f"--rates {args.rates}",
             *[f"--rate {m}={r:g}" for m, r in args.rate], f"--normalise {args.normalise}",
             f"--reduction {args.reduction}", f"--gradcam {args.gradcam}", f"--pixels {args.pixels}",
             f"--train-split {args.train_split}", f"--weight-decay {args.weight_decay:g}"]
    parts += ["--quick"] if args.quick else []
    parts += [f"--train-limit {args.train_limit}"] if args.train_limit and not args.quick else []
    parts += [f"--test-limit {args.test_limit}"] if args.test_limit and not args.quick else []
    return "explainreg study xil " + " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """``explainreg study xil``: :func:`run_xil` with the command line's settings."""
    run_xil(XILSettings.from_args(args))
    return 0


def run_xil(settings: XILSettings) -> list[dict[str, Any]]:
    """The study's Python API: train and measure every (seed, method) not in ``runs/`` yet
    (``runs/METHOD_seedN.json``, keyed by :data:`KEY_SETTINGS`), writing ``results.csv``,
    ``config.json`` and ``report.md``. A folder or run made with other settings is refused
    (``SystemExit`` listing the differences). Returns the rows.

    Example::

        >>> rows = run_xil(XILSettings(quick=True, methods=["vanilla", "hint"]))  # doctest: +SKIP
    """
    args = settings
    torch.set_num_threads(1)
    if args.weight_decay < 0 or math.isinf(args.weight_decay):
        raise SystemExit(f"--weight-decay must be a finite number ≥ 0, got {args.weight_decay}")
    out = Path(args.output)
    train_set, test_set = _data(args)
    config = {"dataset": args.dataset, "methods": args.methods, "seeds": args.seeds, "epochs": args.epochs,
              "feedback": args.feedback, "rates_source": args.rates, "rates": study_rates(args),
              "effective_rates": {m: effective_rate(m, study_rates(args), args.reduction) for m in PENALISED},
              "reduction": args.reduction, "gradcam": args.gradcam, "pixels": args.pixels,
              "train_split": args.train_split, "selection": "last", "optimizer": "adam", "lr": 1e-3,
              "weight_decay": args.weight_decay, "batch_size": BATCH_SIZE, "model": "cdep_decoymnist",
              "normalisation_rate": args.normalise, "train_images": len(train_set), "test_images": len(test_set),
              "command": _command(args)}
    key = {k: config[k] for k in KEY_SETTINGS}
    if (out / "config.json").is_file():
        differences = settings_differences(json.loads((out / "config.json").read_text()), key)
        if differences:
            refuse_other_settings(out, "The study", differences)
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            name = f"{method}_seed{seed}.json"
            # finished before with these settings: an interrupted grid resumes; other settings are refused
            row, fresh = cached_run(out / "runs" / name, lambda: run_one(method, seed, train_set, test_set, args), key,
                                    value_field="row")
            rows.append(row)
            if fresh:
                print(f"{method} seed {seed}: acc {row['accuracy']:.2f} % WR(Grad-CAM) {row['wr_gradcam']:.2f} "
                      f"WR(IG) {row['wr_ig']:.2f} ({row['seconds']:.0f} s)", flush=True)
                write_report(out, rows, args, config)
    if rows:
        write_report(out, rows, args, config, example_maps(out, test_set, args.methods, args.seeds[0]))
    print(f"report: {out / 'report.md'}")
    return rows


register_study("xil", "XIL typology: vanilla, RRR, RRR-G, RBR, HINT, CDEP, counterexamples, EG (and SGT) on Decoy(F)MNIST "
                      "(Friedrich et al. 2023): accuracy and wrong-reason scores", add_arguments, run)
