"""``explainreg study timeseries``: regular vs Saliency Guided Training of LSTM, TCN and Transformer
classifiers on the Ismail et al. 2020 saliency benchmark and on UCR/UEA data (documentation: methods/saliency-guided).

For every data set × architecture, one model is trained with plain cross-entropy ("regular") and
one with CE + λ·KL(p(x) ‖ p(x̃)) ("guided", x̃ masks the lowest-|g| features). Then, on test samples:

- accuracy;
- benchmark layouts: for each attribution method (gradient, integrated gradients, SmoothGrad,
  DeepLift, GradientSHAP), AUP and AUR of |attribution| against the ground-truth box and their
  differences to a random ranking (Diff(AUP), Diff(AUR)), in explainreg's count convention and the
  benchmark's weighted one (the SGT poster's Table 2: TCN + IG, Diff(AUP) 0.233 → 0.291);
- masked accuracy (the top d % of |attribution| over time × features replaced by 0, the mean of the
  benchmark's N(0, 1) background and of the z-normalised UCR series) per method and for a random ranking;
- a heatmap figure (features × time) of saliency beside the ground truth.

Outputs in ``--out``: ``results.csv`` (tidy: dataset, model, training, method, metric, value),
``results.json`` (settings, versions, rows, curves), ``report.md`` / ``report.html`` and figures.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import runs
from ..attribution import attribute
from ..data import load_dataset, saliency_benchmark
from ..data.synthetic_ts import BOX_LAYOUTS, PROCESSES
from ..data.ucr import UCR_DATASETS
from ..data.ucr_reference import PUBLISHED, PUBLISHED_SOURCE, nearest_neighbour_accuracy
from ..metrics import MaskedAccuracy, aup_aur
from ..models import build_model
from ..objective import Objective
from ..penalties.saliency_guided import SaliencyGuided
from ..report import Report, Table, new_figure, save_figure
from ..training import TrainConfig, evaluate_accuracy, train
from . import register_study
from ..data.ucr import load_ucr

MODELS = ("lstm", "tcn", "transformer")
METHODS = ("saliency", "integrated_gradients", "smoothgrad", "deeplift", "gradient_shap")
LABELS = {"saliency": "Gradient", "integrated_gradients": "IG", "smoothgrad": "SmoothGrad", "deeplift": "DeepLift",
          "gradient_shap": "GradientSHAP", "random": "Random"}
LAYOUTS = ("Middle", "SmallMiddle", "RareTime", "RareFeature", "Moving_SmallMiddle")
DROPS = tuple(range(0, 100, 10))
QUICK = {"n_train": 160, "n_test": 32, "epochs": 5, "ucr_epochs": 30, "eval_samples": 16, "ig_steps": 8,
         "layouts": ("Middle", "RareTime", "Moving_SmallMiddle"), "ucr": ("GunPoint",), "models": MODELS}
FULL = {"n_train": 1000, "n_test": 100, "epochs": 20, "ucr_epochs": 100, "eval_samples": 100, "ig_steps": 32,
        "layouts": LAYOUTS, "ucr": UCR_DATASETS, "models": MODELS}
#: The SGT poster's best time-series result (the SGT code): TCN + IG, weighted Diff(AUP).
POSTER = {"model": "tcn", "method": "integrated_gradients", "diff_aup_regular": 0.233, "diff_aup_guided": 0.291}


@dataclass
class Settings:
    out: str = "results/timeseries"
    quick: bool = False
    layouts: tuple[str, ...] = LAYOUTS
    process: str = "box"
    ucr: tuple[str, ...] = UCR_DATASETS
    models: tuple[str, ...] = MODELS
    methods: tuple[str, ...] = METHODS
    n_train: int = 1000
    n_test: int = 100
    eval_samples: int = 100
    epochs: int = 20
    ucr_epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    fraction: float = 0.5
    weight: float = 1.0
    ig_steps: int = 32
    seed: int = 0
    data_root: str | None = None
    nn_dtw: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ data
def benchmark_data(layout: str, s: Settings):
    train_set = saliency_benchmark(layout, s.process, s.n_train, seed=s.seed)
    test_set = saliency_benchmark(layout, s.process, s.n_test, seed=s.seed + 1_000_003)
    return train_set, test_set


def ucr_data(name: str, s: Settings):
    train_set = load_dataset(f"ucr/{name}", "train", s.data_root)
    test_set = load_dataset(f"ucr/{name}", "test", s.data_root)
    t = max(train_set.x.shape[2], test_set.x.shape[2])
    if train_set.x.shape[2] != t or test_set.x.shape[2] != t:       # variable length: one common T

        train_set = load_ucr(name, "train", s.data_root, pad_to=t)
        test_set = load_ucr(name, "test", s.data_root, pad_to=t)
    return train_set, test_set


def reference_rows(name: str, train_set, test_set, s: Settings) -> list[dict[str, Any]]:
    """1-NN accuracies of one UCR set: explainreg's ED (and DTW_D / DTW_I with ``--nn-dtw``, on each
    series' real length) and the archive's published ED / full-window DTW where known."""
    base = {"dataset": f"ucr/{name}", "kind": "ucr", "model": "1nn", "training": "reference", "method": ""}
    out = [{**base, "metric": "accuracy_ed", "value": nearest_neighbour_accuracy(train_set, test_set, "ed")}]
    for metric in ("dtw_d", "dtw_i") if s.nn_dtw else ():
        out.append({**base, "metric": f"accuracy_{metric}",
                    "value": nearest_neighbour_accuracy(train_set, test_set, metric)})
    for key in ("ed", "dtw_full") if name in PUBLISHED else ():
        out.append({**base, "metric": f"published_accuracy_{key}", "value": 1.0 - PUBLISHED[name][key]})
    return out


def _model(name: str, train_set, s: Settings):
    torch.manual_seed(s.seed)
    return build_model(name, in_channels=int(train_set.x.shape[1]), num_classes=int(train_set.num_classes))


# -------------------------------------------------------------------------------------------- training
def train_pair(name: str, train_set, test_set, s: Settings, epochs: int) -> dict[str, Any]:
    """The regular and the guided model of one architecture; returns ``{training: (model, record)}``."""
    out = {}
    for training in ("regular", "guided"):
        model = _model(name, train_set, s)
        objective = Objective(seed=s.seed) if training == "regular" else \
            Objective({SaliencyGuided(s.fraction): s.weight}, seed=s.seed)
        config = TrainConfig(epochs=epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed, device="cpu",
                             progress=False, log_every=10_000)
        started = time.perf_counter()
        train(model, objective, train_set, None, config=config)
        model.eval()
        out[training] = (model, {"accuracy": evaluate_accuracy(model, test_set),
                                 "train_seconds": time.perf_counter() - started})
    return out


# ------------------------------------------------------------------------------------------ evaluation
def attributions(model, x, y, method: str, s: Settings) -> torch.Tensor:
    options: dict[str, Any] = {}
    if method == "integrated_gradients":
        options["n_steps"] = s.ig_steps
    if method == "smoothgrad":
        options["nt_samples"] = max(4, s.ig_steps // 2)
    with torch.backends.cudnn.flags(enabled=False):
        return attribute(model, x, y, method, seed=s.seed, **options)


def evaluate_model(model, test_set, s: Settings, ground_truth: bool) -> tuple[list[dict], dict[str, Any]]:
    """Rows (method × metric) and curves of one trained model on its test set's first samples."""
    n = min(s.eval_samples, len(test_set))
    x, y = test_set.x[:n], test_set.y[:n]
    rows, curves, maps = [], {}, {}
    for method in (*s.methods, "random"):
        if method == "random":
            a = torch.rand(x.shape, generator=torch.Generator().manual_seed(s.seed))
        else:
            a = attributions(model, x, y, method, s)
        maps[method] = a[:1]
        acc = MaskedAccuracy(drops=DROPS, background=0.0)(model, x, y, a)
        curves[method] = acc.curve.tolist()
        rows.append({"method": method, "metric": "masked_accuracy_auc", "value": acc.value})
        if ground_truth and method != "random":
            mask = test_set.extras["ground_truth"][:n]
            for convention in ("explainreg", "benchmark"):
                scores = aup_aur(a, mask, convention=convention, generator=torch.Generator().manual_seed(s.seed))
                for key in ("aup", "aur", "aup_random", "aur_random", "diff_aup", "diff_aur"):
                    rows.append({"method": method, "metric": f"{key}_{convention}", "value": scores[key]})
    return rows, {"masked_accuracy": curves, "maps": maps}


# ------------------------------------------------------------------------------------------------ run
def run_study(s: Settings) -> Path:
    torch.set_num_threads(1)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    heat: dict[str, Any] = {}
    datasets = [("benchmark", layout) for layout in s.layouts] + [("ucr", name) for name in s.ucr]
    started = time.perf_counter()
    for kind, name in datasets:
        train_set, test_set = benchmark_data(name, s) if kind == "benchmark" else ucr_data(name, s)
        label = f"{name}_{s.process}" if kind == "benchmark" else f"ucr/{name}"
        if kind == "ucr":
            rows += reference_rows(name, train_set, test_set, s)
        for arch in s.models:
            pair = train_pair(arch, train_set, test_set, s, s.epochs if kind == "benchmark" else s.ucr_epochs)
            for training, (model, record) in pair.items():
                base = {"dataset": label, "kind": kind, "model": arch, "training": training}
                rows.append({**base, "method": "", "metric": "accuracy", "value": record["accuracy"]})
                rows.append({**base, "method": "", "metric": "train_seconds", "value": record["train_seconds"]})
                metric_rows, extra = evaluate_model(model, test_set, s, kind == "benchmark")
                rows += [{**base, **r} for r in metric_rows]
                curves[f"{label}|{arch}|{training}"] = extra["masked_accuracy"]
                if kind == "benchmark" and name == s.layouts[0]:
                    heat[(arch, training)] = extra["maps"]
                print(f"{label:28s} {arch:11s} {training:8s} acc={100 * record['accuracy']:.1f}% "
                      f"({record['train_seconds']:.1f}s train, {time.perf_counter() - started:.0f}s total)", flush=True)
        if kind == "benchmark" and name == s.layouts[0]:
            heat["truth"] = (test_set.x[:1], test_set.extras["ground_truth"][:1], int(test_set.y[0]))
    return write_outputs(out, s, rows, curves, heat, time.perf_counter() - started)


def write_outputs(out: Path, s: Settings, rows, curves, heat, seconds: float) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["dataset", "kind", "model", "training", "method", "metric", "value"])
    writer.writeheader()
    writer.writerows(rows)
    runs.atomic_write_bytes(out / "results.csv", buffer.getvalue().encode())
    record = {"study": "timeseries", "settings": asdict(s), "command": command_line(s), "seconds": seconds,
              "environment": runs.environment(), "rows": rows, "masked_accuracy_curves": curves,
              "drops": list(DROPS), "poster": POSTER}
    runs.atomic_write_json(out / "results.json", record)
    figures = [_heatmap_figure(out, s, heat)] if "truth" in heat else []
    figures += [_curve_figure(out, s, curves, ds) for ds in sorted({k.split("|")[0] for k in curves})[:2]]
    report = _report(s, rows, figures, seconds)
    md, _ = report.write(out, "report")
    return md


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def _value(rows, **match) -> float:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return float(r["value"])
    return math.nan


def _report(s: Settings, rows, figures, seconds: float) -> Report:
    rep = Report("Time series: regular vs saliency-guided training")
    rep.text(f"Command: `{command_line(s)}` ({seconds:.0f} s). Versions: "
             + ", ".join(f"{k} {v}" for k, v in runs.environment().items() if k != "platform") + ".")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    acc_rows = [[d, m] + [f"{100 * _value(rows, dataset=d, model=m, training=t, metric='accuracy'):.1f}"
                          for t in ("regular", "guided")] for d in datasets for m in s.models]
    rep.heading("Test accuracy (%)").table(Table(["data set", "model", "regular", "guided"], acc_rows))
    refs = [d for d in datasets if any(r["model"] == "1nn" and r["dataset"] == d for r in rows)]
    if refs:
        keys = [("accuracy_ed", "1-NN ED"), ("accuracy_dtw_d", "1-NN DTW_D"), ("accuracy_dtw_i", "1-NN DTW_I"),
                ("published_accuracy_ed", "published ED"), ("published_accuracy_dtw_full", "published DTW (w=100)")]
        keys = [(k, h) for k, h in keys if any(r["metric"] == k for r in rows)]
        body = [[d] + [_percent(_value(rows, dataset=d, model="1nn", metric=k)) for k, _ in keys] for d in refs]
        rep.heading("1-NN references (%)").table(Table(
            ["data set"] + [h for _, h in keys], body,
            notes=f"explainreg's 1-NN on the same splits; published: {PUBLISHED_SOURCE}."))
    for convention in ("benchmark", "explainreg") if any(d.endswith(f"_{s.process}") for d in datasets) else ():
        header = ["data set", "model"] + [f"{LABELS[m]} {t[0].upper()}" for m in s.methods for t in ("regular", "guided")]
        body = []
        for d in datasets:
            if not d.endswith(f"_{s.process}"):
                continue
            for m in s.models:
                body.append([d, m] + [f"{_value(rows, dataset=d, model=m, training=t, method=meth, metric=f'diff_aup_{convention}'):.3f}"
                                      for meth in s.methods for t in ("regular", "guided")])
        rep.heading(f"Diff(AUP) = AUP − AUP(random), {convention} convention (R regular, G guided)")
        rep.table(Table(header, body, notes="Poster (weighted, i.e. benchmark convention): TCN + IG 0.233 → 0.291."))
    rep.heading("Masked-accuracy AUC (lower = more faithful saliency)")
    header = ["data set", "model"] + [f"{LABELS[m]} {t[0].upper()}" for m in (*s.methods, "random") for t in ("regular", "guided")]
    rep.table(Table(header, [[d, m] + [f"{_value(rows, dataset=d, model=m, training=t, method=meth, metric='masked_accuracy_auc'):.3f}"
                                       for meth in (*s.methods, 'random') for t in ("regular", "guided")]
                             for d in datasets for m in s.models]))
    for path, caption in figures:
        rep.figure(path, caption)
    return rep


def _heatmap_figure(out: Path, s: Settings, heat) -> tuple[Path, str]:
    x, truth, label = heat["truth"]
    method = "integrated_gradients" if "integrated_gradients" in s.methods else s.methods[0]
    fig, axes = new_figure(1, 1 + 2 * len(s.models), width=2.6, height=2.6)
    axes[0][0].imshow(truth[0].float().numpy(), aspect="auto", cmap="Greys")
    axes[0][0].set_title(f"ground truth (y={label})", fontsize=8)
    for i, arch in enumerate(s.models):
        for j, training in enumerate(("regular", "guided")):
            ax = axes[0][1 + 2 * i + j]
            ax.imshow(heat[(arch, training)][method][0].abs().numpy(), aspect="auto", cmap="viridis")
            ax.set_title(f"{arch} {training}", fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("time", fontsize=7)
        ax.set_ylabel("feature", fontsize=7)
        ax.tick_params(labelsize=6)
    path = save_figure(fig, out / "saliency_heatmaps.png")
    return path, f"|{LABELS[method]}| saliency (features × time) of one {s.layouts[0]} test sample beside its box"


def _curve_figure(out: Path, s: Settings, curves, dataset: str) -> tuple[Path, str]:
    fig, axes = new_figure(1, len(s.models), width=3.2, height=2.6)
    for i, arch in enumerate(s.models):
        ax = axes[0][i]
        for training, style in (("regular", "--"), ("guided", "-")):
            c = curves.get(f"{dataset}|{arch}|{training}", {})
            for method in (*s.methods[:2], "random"):
                if method in c:
                    ax.plot(DROPS, c[method], style, label=f"{LABELS[method]} {training}")
        ax.set_title(f"{dataset} {arch}", fontsize=8)
        ax.set_xlabel("% removed", fontsize=7)
        ax.set_ylabel("accuracy", fontsize=7)
    axes[0][-1].legend(fontsize=5)
    name = dataset.replace("/", "_")
    path = save_figure(fig, out / f"masked_accuracy_{name}.png")
    return path, f"masked accuracy on {dataset}, regular (dashed) vs guided (solid)"


# ------------------------------------------------------------------------------------------------ CLI
def command_line(s: Settings) -> str:
    mode = QUICK if s.quick else FULL
    parts = ["explainreg study timeseries"] + (["--quick"] if s.quick else [])
    for key in ("n_train", "n_test", "epochs", "ucr_epochs", "eval_samples", "ig_steps"):
        if getattr(s, key) != mode[key]:
            parts.append(f"--{key.replace('_', '-')} {getattr(s, key)}")
    for key in ("layouts", "ucr", "models"):
        if tuple(getattr(s, key)) != tuple(mode[key]):
            parts.append(f"--{key} {','.join(getattr(s, key)) or 'none'}")
    if s.seed:
        parts.append(f"--seed {s.seed}")
    if s.process != "box":
        parts.append(f"--process {s.process}")
    if s.nn_dtw:
        parts.append("--nn-dtw")
    return " ".join(parts + [f"--out {shlex.quote(s.out)}"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="a 1–2 minute CPU run (few samples and epochs)")
    p.add_argument("--out", default=None, help="study folder (default results/timeseries[-quick])")
    p.add_argument("--data-root", default=None, help="data root holding ucr/ (default $EXPLAINREG_DATA)")
    p.add_argument("--layouts", default=None, help=f"comma list of benchmark layouts ({','.join(BOX_LAYOUTS)})")
    p.add_argument("--process", default="box", choices=PROCESSES, help="benchmark background (box = N(0,1))")
    p.add_argument("--ucr", default=None, help=f"comma list of UCR sets ({','.join(UCR_DATASETS)}) or 'none'")
    p.add_argument("--models", default=None, help=f"comma list of {','.join(MODELS)}")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {','.join(METHODS)}")
    for name in ("n-train", "n-test", "epochs", "ucr-epochs", "eval-samples", "ig-steps", "seed"):
        p.add_argument(f"--{name}", type=int, default=None)
    p.add_argument("--fraction", type=float, default=0.5, help="share of features SGT masks (0.5)")
    p.add_argument("--weight", type=float, default=1.0, help="λ of SGT's KL term (1)")
    p.add_argument("--nn-dtw", action="store_true",
                   help="also 1-NN DTW_D/DTW_I references on the UCR sets (exact DTW; ArrowHead takes minutes)")


def _names(text: str | None, default, allowed, what: str) -> tuple[str, ...]:
    if text is None:
        return tuple(default)
    if text.strip().lower() == "none":
        return ()
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"--{what}: unknown {bad}; choose among {', '.join(allowed)}")
    return names


def settings_from_args(args: argparse.Namespace) -> Settings:
    mode = QUICK if args.quick else FULL
    s = Settings(out=args.out or f"results/timeseries{'-quick' if args.quick else ''}", quick=args.quick,
                 layouts=_names(args.layouts, mode["layouts"], tuple(BOX_LAYOUTS), "layouts"), process=args.process,
                 ucr=_names(args.ucr, mode["ucr"], UCR_DATASETS, "ucr"),
                 models=_names(args.models, mode["models"], MODELS, "models"),
                 methods=_names(args.methods, METHODS, METHODS, "methods"),
                 fraction=args.fraction, weight=args.weight, data_root=args.data_root,
                 nn_dtw=bool(getattr(args, "nn_dtw", False)))
    for key in ("n_train", "n_test", "epochs", "ucr_epochs", "eval_samples", "ig_steps"):
        value = getattr(args, key)
        value = mode[key] if value is None else value
        if value < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {value}")
        setattr(s, key, value)
    s.seed = args.seed or 0
    if not s.layouts and not s.ucr:
        raise ValueError("nothing to run: give at least one --layouts or --ucr data set")
    if not s.models or not s.methods:
        raise ValueError("--models and --methods must not be empty")
    return s


def run(args: argparse.Namespace) -> int:
    report = run_study(settings_from_args(args))
    print(f"report: {report}", file=sys.stdout)
    return 0


register_study("timeseries", "regular vs saliency-guided LSTM/TCN/Transformer on the saliency benchmark and UCR data",
               add_arguments, run)


__all__ = ["LAYOUTS", "METHODS", "MODELS", "POSTER", "Settings", "add_arguments", "run", "run_study",
           "settings_from_args"]
