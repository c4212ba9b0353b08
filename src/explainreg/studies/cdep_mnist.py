"""CDEP's MNIST studies (the CDEP code): ``decoymnist`` and ``colormnist``.

Each trains the unpenalised net and CDEP / RRR / Expected Gradients over the paper's λ grid and
seeds with the paper's settings, then writes ``runs.csv`` (one row per run), ``results.csv``
(mean ± std per method and λ), ``accuracy_vs_lambda.png`` and ``summary.md`` with its HTML twin
``summary.html`` (the paper's numbers beside ours). Finished runs (``runs/NAME/result.json``) of the
same settings are skipped on a rerun; unfinished ones, and finished ones asked for more epochs,
resume from their checkpoint; the report holds only the runs of the settings asked.

λ is given on the paper's scale. CDEP's penalty equals the seed's. RRR (target "nll", channel sum)
is the seed's "Grad" × B (the seed differentiates the batch-mean NLL), so its weight is λ / B.
EG uses the seed's sum (``convention="seed"``) over ``n_refs`` references; the seed summed over 200
(DecoyMNIST) or 50 (ColorMNIST), so the weight is λ · seed_refs / n_refs.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .._validation import check_choice, nonnegative_float, nonnegative_int, positive_int
from ..report import Report, Table, mean_std, new_figure, save_figure
from ..runs import atomic_write_bytes
from . import register_study
from .skeleton import cached, settings_from_namespace, settings_hash
from ..data import color_mnist, color_mnist_blob_sampler, decoy_mnist
from ..data.shortcuts import color_mnist_stats, ColorShortcut, DecoyShortcut
from ..inputs import MUST_NOT_USE
from ..models import build_model
from ..objective import Objective
from ..penalties import CDEP, ExpectedGradients, RRR
from ..runs import load_run
from ..training import train, TrainConfig
from .behaviour import COLUMNS, format_row, shortcut_evidence

__all__ = ["LABELS", "METHODS", "PAPER", "PAPER_NOTES", "SETTINGS", "GridSettings", "Setting", "add_arguments",
           "build_penalty", "collect", "load_data", "run_cdep_mnist", "run_grid", "write_report"]

#: the paper's mean test accuracies (%) per method and λ (B.2 §2.7)
PAPER = {
    "decoymnist": {
        "vanilla": {0: 60.97},
        "cdep": {1: 72.95, 10: 76.93, 100: 95.71, 1000: 97.24, 10000: 96.69},
        "rrr": {1: 56.93, 10: 64.00, 100: 92.42, 1000: 98.89, 10000: 98.94},
        "eg": {0.1: 97.77, 1: 93.83, 10: 43.16, 100: 10.09},
    },
    "colormnist": {
        "vanilla": {0: 0.26},
        "cdep": {0.1: 2.88, 1: 5.47, 5: 13.75, 10: 16.69, 50: 22.28, 100: 22.90, 500: 25.12, 1000: 23.09,
                 5000: 24.90},
        "rrr": {},  # 0.00–0.33 for every λ
        "eg": {},  # ≈ 0.1–4.2
    },
}
PAPER_NOTES = {
    "decoymnist": "notebook @ 4e5a352, mean of 5 seeds; ICML table ≈ vanilla 60.1, CDEP 97.2, RRR 99.0, EG 97.8",
    "colormnist": "notebook @ 979761e (1 epoch); RRR 0.00–0.33 and EG ≈ 0.1–4.2 for every λ; the 5-epoch demo "
                  "(02_make_demo.py, seed 10) reaches 34.25 % with CDEP λ = 5000",
}


@dataclass
class Setting:
    """The paper's settings for one study."""

    name: str
    model: str
    batch_size: int
    weight_decay: float
    epochs: int
    patience: int | None
    select: str
    lambdas: dict[str, list[float]]
    seeds: list[int]
    eg_seed_refs: int
    n_refs: int
    quick: dict[str, Any] = field(default_factory=dict)


SETTINGS = {
    "decoymnist": Setting(
        "decoymnist", "cdep_decoymnist", 64, 1e-4, 5, 2, "best_val_loss",
        {"cdep": [1, 10, 100, 1000, 10000], "rrr": [1, 10, 100, 1000, 10000], "eg": [0.1, 1, 10, 100]},
        [0, 1, 2, 3, 4], eg_seed_refs=200, n_refs=10,
        quick={"limit": 3000, "test_limit": 2000, "epochs": 1, "seeds": [0], "n_refs": 4,
               "lambdas": {"cdep": [1000], "rrr": [1000], "eg": [0.1]}},
    ),
    "colormnist": Setting(
        "colormnist", "cdep_colormnist", 256, 1e-3, 1, 0, "last",
        {"cdep": [1, 10, 100, 500, 1000, 5000], "rrr": [1, 100, 10000], "eg": [1, 100, 10000]},
        [0, 1, 2, 3, 4], eg_seed_refs=50, n_refs=10,
        quick={"limit": 3000, "test_limit": 2000, "epochs": 1, "seeds": [0], "n_refs": 4,
               "lambdas": {"cdep": [1000], "rrr": [100], "eg": [100]}},
    ),
}
METHODS = ("vanilla", "cdep", "cdep_seed", "rrr", "eg")
DEFAULT_METHODS = tuple(m for m in METHODS if m != "cdep_seed")
LABELS = {"vanilla": "unpenalised", "cdep": "CDEP", "cdep_seed": "CDEP, seed's CD order (conv → pool → ReLU)",
          "rrr": "RRR (Grad)", "eg": "Expected Gradients"}


@dataclass
class GridSettings:
    """One run of a CDEP MNIST study, named as the command line's options; a setting left at None
    takes the paper's value of :data:`SETTINGS` ``[study]`` (or its ``quick`` subset run's).

    Args:
        study: ``"decoymnist"`` or ``"colormnist"``.
        out: the output folder (default ``results/STUDY[-quick]``).
        methods: of :data:`METHODS`. lambdas: λ (paper scale) for every penalised method instead of
            the paper's grid. seeds, epochs, n_refs (EG references), limit (first N training images).
        threads, device, progress: how to run (not part of the results).

    Example::

        >>> GridSettings("colormnist", quick=True).output
        'results/colormnist-quick'
        >>> GridSettings("mnist")
        Traceback (most recent call last):
        ...
        ValueError: study must be one of 'decoymnist', 'colormnist'; got 'mnist'
    """

    study: str
    out: str | None = None
    data_root: str | None = None
    quick: bool = False
    methods: Sequence[str] = DEFAULT_METHODS
    lambdas: Sequence[float] | None = None
    seeds: Sequence[int] | None = None
    epochs: int | None = None
    n_refs: int | None = None
    limit: int | None = None
    threads: int | None = None
    device: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        check_choice("study", self.study, tuple(SETTINGS))
        for method in self.methods:
            check_choice("methods", method, METHODS)

    @property
    def output(self) -> str:
        return self.out or f"results/{self.study}{'-quick' if self.quick else ''}"

    @classmethod
    def from_args(cls, args: argparse.Namespace, study: str) -> GridSettings:
        """The settings of a parsed ``explainreg study decoymnist|colormnist`` command line."""
        return settings_from_namespace(cls, args, study=study)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default: results/<study>)")
    parser.add_argument("--data-root", default=None, help="folder holding mnist/ (default: $EXPLAINREG_DATA)")
    parser.add_argument("--quick", action="store_true", help="a few-minute CPU run on a real subset")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(DEFAULT_METHODS),
                        help="cdep_seed: CDEP with the seed's CD order (conv → pool → ReLU)")
    parser.add_argument("--lambdas", nargs="+", type=nonnegative_float, default=None,
                        help="λ values (paper scale) for every penalised method instead of the paper's grid")
    parser.add_argument("--seeds", nargs="+", type=nonnegative_int, default=None)
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument("--n-refs", type=positive_int, default=None, help="EG references per sample (paper: 200 / 50)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first N training images")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None)
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")


def _fmt(lam: float) -> str:
    return f"{lam:g}"


def build_penalty(method: str, lam: float, setting: Setting, n_refs: int, sampler):
    """The penalty object and its weight on explainreg's scale for a λ on the paper's scale."""
    if method in ("cdep", "cdep_seed"):
        return CDEP(blob_sampler=sampler, order="seed" if method == "cdep_seed" else "forward"), lam
    if method == "rrr":
        return RRR(score="nll", blob_sampler=sampler), lam / setting.batch_size
    if method == "eg":
        return ExpectedGradients(n_refs, blob_sampler=sampler, convention="seed"), lam * setting.eg_seed_refs / n_refs
    raise ValueError(f"unknown method {method!r}")


def load_data(study: str, root, limit: int | None, test_limit: int | None):
    """``(train, val, test, blob_sampler)`` of DecoyMNIST or ColorMNIST (the sampler: ColorMNIST's 8 blobs)."""
    if study == "decoymnist":
        return (decoy_mnist("train", root, limit=limit), decoy_mnist("val", root),
                decoy_mnist("test", root, limit=test_limit), None)
    return (color_mnist("train", root, limit=limit), color_mnist("val", root),
            color_mnist("test", root, limit=test_limit), color_mnist_blob_sampler(root, n_blobs=8))


def run_grid(args: argparse.Namespace, study: str) -> int:
    """``explainreg study decoymnist|colormnist``: :func:`run_cdep_mnist` with the command line's settings."""
    run_cdep_mnist(GridSettings.from_args(args, study))
    return 0


def run_cdep_mnist(settings: GridSettings) -> list[dict[str, Any]]:
    """The study's Python API: train every (method, λ, seed) of the grid not finished yet with these
    settings (a run folder whose ``result.json`` has them is skipped, any other resumed: more epochs
    extend it, settings a resume cannot change are refused), then write the report.

    Returns:
        The records of every finished run in the output folder (``runs/*/result.json``).

    Example::

        >>> records = run_cdep_mnist(GridSettings("colormnist", quick=True, methods=["cdep"]))  # doctest: +SKIP
    """
    args, study = settings, settings.study
    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[study]
    quick = setting.quick if args.quick else {}
    epochs = args.epochs or quick.get("epochs", setting.epochs)
    seeds = args.seeds or quick.get("seeds", setting.seeds)
    n_refs = args.n_refs or quick.get("n_refs", setting.n_refs)
    limit = args.limit or quick.get("limit")
    grid = quick.get("lambdas", setting.lambdas)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    train_set, val_set, test_set, sampler = load_data(study, args.data_root, limit, quick.get("test_limit"))
    if args.quick:
        val_set = val_set.take(1000)
    print(f"{study}: train {len(train_set)}, val {len(val_set)}, test {len(test_set)} images; epochs {epochs}, "
          f"seeds {seeds}; writing to {out}", flush=True)

    jobs = []
    for method in args.methods:
        lambdas = [0.0] if method == "vanilla" else (args.lambdas or grid["cdep" if method == "cdep_seed" else method])
        for lam in lambdas:
            for seed in seeds:
                jobs.append((method, float(lam), seed))

    def run_one(method: str, lam: float, seed: int, run_dir: Path) -> dict[str, Any]:
        torch.manual_seed(seed)
        model = build_model(setting.model)
        penalties = {}
        weight = 0.0
        if method != "vanilla":
            penalty, weight = build_penalty(method, lam, setting, n_refs, sampler)
            penalties = {penalty: weight}
        objective = Objective(penalties, seed=seed)
        config = TrainConfig(epochs=epochs, batch_size=setting.batch_size, lr=1e-3, optimizer="adam",
                             weight_decay=setting.weight_decay, seed=seed, device=args.device,
                             patience=setting.patience if setting.select != "last" else None,
                             select=setting.select, progress=args.progress)
        started = time.perf_counter()
        result = train(model, objective, train_set, test_set, config=config, val_set=val_set, run_dir=run_dir,
                       resume="auto", run_info={"study": study, "method": method, "lambda": lam, "seed": seed,
                                              "model": setting.model})
        final = result.final
        return {"study": study, "method": method, "lambda": lam, "weight": weight, "seed": seed,
                "test_accuracy": 100 * final["test_accuracy"], "val_accuracy": 100 * final["val_accuracy"],
                "train_accuracy": 100 * final["train_accuracy"], "epochs_run": len(result.history),
                "selected_epoch": final["epoch"], "seconds": time.perf_counter() - started,
                "n_refs": n_refs if method == "eg" else None, "train_size": len(train_set),
                "test_size": len(test_set), "quick": bool(args.quick)}

    # what a record depends on besides its name: a record made otherwise is made again, through
    # train(resume=True), which extends the run to more epochs or refuses settings it cannot resume
    key = settings_hash({"epochs": epochs, "n_refs": n_refs, "train_images": len(train_set),
                         "val_images": len(val_set), "test_images": len(test_set)})
    for i, (method, lam, seed) in enumerate(jobs):
        name = f"{method}_lam{_fmt(lam)}_seed{seed}"
        run_dir = out / "runs" / name
        record, fresh = cached(run_dir / "result.json", lambda: run_one(method, lam, seed, run_dir), key=key,
                               key_field="settings_hash")
        if fresh:
            print(f"[{i + 1}/{len(jobs)}] {name}: test {record['test_accuracy']:.2f} %  "
                  f"val {record['val_accuracy']:.2f} % train {record['train_accuracy']:.2f} %  "
                  f"({record['seconds']:.0f} s)", flush=True)
    add_shortcut_evidence(out, key, test_set, study)  # the behavioural shortcut evidence (documentation: methods/shortcuts)
    write_report(out, study, key)
    return collect(out, key)


def add_shortcut_evidence(out: Path, key: str | None, test_set, study: str = "decoymnist") -> None:
    """``runs/NAME/behaviour.json`` for every finished run of these settings: the behavioural columns
    (:func:`explainreg.studies.behaviour.shortcut_evidence`) of the run's checkpoint on ``test_set``,
    computed once per test set. DecoyMNIST: reliance under the training set's decoy rule, flip rates,
    group accuracies, CD and gradient × input shares of the logit and of the decision margin of the
    corners; ColorMNIST: reliance with each digit recoloured in its own class's vs another class's
    training colour, and the group accuracies."""
    if study == "decoymnist":
        hook, mask, meaning = DecoyShortcut(), test_set.extras["mask"], test_set.mask_meanings.get("mask")
    else:  # the colour is the shortcut; the digit's pixels are where it sits
        hook = ColorShortcut(*color_mnist_stats())
        mask, meaning = hook.region(test_set.x), MUST_NOT_USE

    for record in collect(out, key):
        run_dir = out / "runs" / f"{record['method']}_lam{_fmt(record['lambda'])}_seed{record['seed']}"

        def compute(run_dir: Path = run_dir) -> dict[str, Any]:
            model, _ = load_run(run_dir)
            return shortcut_evidence(model, test_set.x, test_set.y, mask, meaning=meaning, shortcut=hook,
                                     region_metrics=study == "decoymnist", source=test_set.source)

        cached(run_dir / "behaviour.json", compute, key={"test": test_set.source, "hook": repr(hook)})


def collect(out: Path, key: str | None = None) -> list[dict[str, Any]]:
    """The records of the finished runs in ``out`` (``runs/*/result.json``), in name order; with
    ``key``, only those made with these settings (their ``settings_hash``), so that runs of other
    settings left in the folder are not mixed into the report."""
    records = []
    for path in sorted((out / "runs").glob("*/result.json")):
        record = json.loads(path.read_text())
        evidence = path.parent / "behaviour.json"  # the behavioural columns (add_shortcut_evidence)
        if evidence.is_file():
            record.update({k: v for k, v in json.loads(evidence.read_text()).items() if k != "key"})
        records.append(record)
    return [r for r in records if key is None or r.get("settings_hash") == key]


#: what the behavioural table of each study reports
EVIDENCE_NOTES = {
    "decoymnist": "Test images (%). Reliance: accuracy with the label's own training decoy (grey 255 − 25y) in a "
                  "corner minus accuracy with another class's; flips: predictions changed by another class's decoy, "
                  "by the corners of a test image of another class, by the corners' mean fill. Shares: the corners' "
                  "share of the true class's logit and of its margin over the runner-up.",
    "colormnist": "Test images (%). Reliance: accuracy with each digit recoloured in its own class's training "
                  "colour minus accuracy in another class's; flips: predictions changed by another class's colour.",
}


def write_report(out: Path, study: str, key: str | None = None) -> None:
    """``runs.csv``, ``results.csv`` (mean ± std), ``accuracy_vs_lambda.png`` and ``summary.md`` / ``.html``
    from the finished runs in ``out`` (with ``key``: those of these settings, see :func:`collect`)."""
    import pandas as pd

    rows = collect(out, key)
    if not rows:
        print("no finished runs yet")
        return
    runs = pd.DataFrame(rows).sort_values(["method", "lambda", "seed"])
    atomic_write_bytes(out / "runs.csv", runs.to_csv(index=False).encode())
    table = (runs.groupby(["method", "lambda"])
             .agg(test_mean=("test_accuracy", "mean"), test_std=("test_accuracy", "std"),
                  val_mean=("val_accuracy", "mean"), train_mean=("train_accuracy", "mean"),
                  seeds=("seed", "count"), seconds=("seconds", "mean"))
             .reset_index())
    table["test_std"] = table["test_std"].fillna(0.0)

    evidence = [c for c in COLUMNS if c in runs.columns]
    if evidence:  # the behavioural shortcut evidence, mean over seeds
        table = table.merge(runs.groupby(["method", "lambda"])[evidence].mean().reset_index(), on=["method", "lambda"])
    paper = PAPER[study]
    table["paper"] = [paper.get(m, {}).get(lam if lam != int(lam) else int(lam), math.nan)
                      for m, lam in zip(table["method"], table["lambda"])]
    order = {m: i for i, m in enumerate(METHODS)}
    table = table.sort_values(["method", "lambda"], key=lambda c: c.map(order) if c.name == "method" else c)
    atomic_write_bytes(out / "results.csv", table.to_csv(index=False, float_format="%.4f").encode())
    figure = _plot(table, out / "accuracy_vs_lambda.png", study)

    header = ["method", "λ (paper scale)", "ours: test", "seeds", "val", "train", "paper", "s/run"]
    cells, bold = [], []
    best = table["test_mean"].max()
    for _, r in table.iterrows():
        paper_value = "" if math.isnan(r["paper"]) else f"{r['paper']:.2f}"
        cells.append([LABELS[r["method"]], _fmt(r["lambda"]), mean_std(r["test_mean"], r["test_std"], int(r["seeds"])),
                      str(int(r["seeds"])), f"{r['val_mean']:.2f}", f"{r['train_mean']:.2f}", paper_value,
                      f"{r['seconds']:.0f}"])
        bold.append([False, False, r["test_mean"] == best] + [False] * 5)
    report = Report(f"CDEP {study}: test accuracy (%)")
    report.text(f"Paper numbers: {PAPER_NOTES[study]}. Ours: mean ± std over seeds "
                f"(train {int(runs['train_size'].iloc[0])} / test {int(runs['test_size'].iloc[0])} images"
                f"{', QUICK subset run' if bool(runs['quick'].any()) else ''}).")
    if bool(runs["quick"].any()):  # a smoke test: nothing to rank
        report.smoke_test()
        report.table(Table(header, cells, None, notes="Quick mode (smoke test): no best is marked."))
    else:
        report.table(Table(header, cells, bold, notes="Bold: the highest mean test accuracy."))
    if evidence:
        report.heading(f"Does the model still use the {'decoy' if study == 'decoymnist' else 'colour'}? "
                       "(documentation: methods/shortcuts, mean over seeds)")
        report.table(Table(["method", "λ"] + [COLUMNS[c] for c in evidence],
                           [[LABELS[r["method"]], _fmt(r["lambda"])] + format_row(r, evidence)
                            for _, r in table.iterrows()], None,
                           notes=EVIDENCE_NOTES[study]))
    report.figure(figure, "accuracy vs λ")
    md, page = report.write(out, name="summary")
    print(f"wrote {out / 'results.csv'}, {md}, {page}, {figure}")


def _plot(table, path: Path, study: str) -> Path:
    """Mean test accuracy ± std against λ per penalised method, the unpenalised net as a line."""
    fig, axes = new_figure(1, 1, width=6, height=4)
    ax = axes[0][0]
    for method in ("cdep", "cdep_seed", "rrr", "eg"):
        part = table[table["method"] == method]
        if len(part):
            ax.errorbar(part["lambda"], part["test_mean"], yerr=part["test_std"], marker="o", capsize=3,
                        label=LABELS[method])
    vanilla = table[table["method"] == "vanilla"]
    if len(vanilla):
        ax.axhline(float(vanilla["test_mean"].iloc[0]), color="gray", linestyle="--", label="unpenalised")
    ax.set_xscale("log")
    ax.set_xlabel("λ (paper scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{study}: test accuracy vs λ")
    ax.legend()
    return save_figure(fig, path, dpi=120)


register_study("decoymnist", "CDEP DecoyMNIST: unpenalised, CDEP, RRR, EG over λ (Rieger et al. 2020)",
               add_arguments, lambda args: run_grid(args, "decoymnist"))
register_study("colormnist", "CDEP ColorMNIST: unpenalised, CDEP, RRR, EG over λ (Rieger et al. 2020)",
               add_arguments, lambda args: run_grid(args, "colormnist"))
