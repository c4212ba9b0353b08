"""``explainreg study saliency-guided``: Saliency Guided Training on MNIST and its masked-accuracy test
(methods.md A.4, A.5 MaskedAccuracy, B.3 §3.2–§3.3).

Trains the regular and the saliency-guided PyTorch-examples CNN (Adadelta lr 1.0, batch 512,
normalised inputs, best epoch on a validation split), then, for each attribution method, replaces
the d ∈ {0, 10, …, 90} % most salient pixels of each test image by its background pixel and
records the accuracy. A faithful saliency makes the accuracy fall fast (small area under the
curve); SGT should fall faster than the regular model and than random masking.

Outputs in ``--out``: ``regular/`` and ``guided/`` run folders (cached and resumed),
``masked_accuracy.csv`` (model × method × drop), ``curve_areas.csv``, ``masked_accuracy.png``
(one panel per method), ``saliency_maps.png`` (both models side by side) and ``summary.md`` with its
HTML twin ``summary.html``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import runs
from ..data import load_dataset
from ..models import build_model
from ..objective import Objective
from ..penalties.saliency_guided import ORDERS, SaliencyGuided, check_fill, check_fraction
from ..report import Report, Table, new_figure, save_figure
from ..training import TrainConfig, train
from . import register_study

NAME = "saliency-guided"
MODEL = "sgt_mnist_cnn"
MODELS = ("regular", "guided")
METHODS = ("saliency", "smoothgrad", "integrated_gradients", "deeplift", "gradient_shap", "random")
LABELS = {"saliency": "Gradient", "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated gradients",
          "deeplift": "DeepLift", "gradient_shap": "GradientSHAP", "random": "Random"}
DROPS = tuple(range(0, 100, 10))
QUICK = {"epochs": 1, "limit_train": 6000, "eval_images": 200, "ig_steps": 16}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/saliency-guided", metavar="DIR", help="study folder (runs, tables, figures)")
    p.add_argument("--data-root", default=None, metavar="PATH", help="folder holding mnist/ IDX files "
                                                                     "(default: $EXPLAINREG_DATA or the user cache)")
    p.add_argument("--no-download", action="store_true", help="never try to download missing data")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per model (default 15; 1 with --quick; "
                                                            "the seed allows up to 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help=f"a few-minute CPU run: {QUICK['epochs']} epoch on {QUICK['limit_train']} train images, "
                        f"{QUICK['eval_images']} test images, {QUICK['ig_steps']} IG steps")
    p.add_argument("--fraction", type=float, default=0.5, help="share of features masked by SGT (0.5, the paper)")
    p.add_argument("--by", default="abs", choices=ORDERS, help="SGT ranking: |g| (paper) or signed g (seed code)")
    p.add_argument("--fill", default="random", help="SGT mask values: 'random' (U(min x, max x)) or a number")
    p.add_argument("--weight", type=float, default=1.0, help="λ of the KL term (1, the paper)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1.0, help="Adadelta learning rate (1.0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the train set held out for selection")
    p.add_argument("--patience", type=int, default=None, help="stop after this many epochs without validation gain")
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="use the first N train images")
    p.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="use the first N test images (for the per-epoch test accuracy and the curves)")
    p.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="test images for the masked-accuracy curves (default: all 10,000; 200 with --quick)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma list of attribution methods ({','.join(METHODS)})")
    p.add_argument("--explain", default="log_prob", choices=("log_prob", "logit"),
                   help="attribute log p_y (the seed's log_softmax output, default) or the logit z_y")
    p.add_argument("--ig-steps", type=int, default=None, help="integrated-gradients steps (50; 16 with --quick)")
    p.add_argument("--models", default=",".join(MODELS), help="which models to train/evaluate (regular,guided)")
    p.add_argument("--train-only", action="store_true", help="train (or resume) the models and stop")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved study settings (``--quick`` fills what was not given); validated early."""
    quick = bool(args.quick)
    s = {
        "epochs": args.epochs if args.epochs is not None else (QUICK["epochs"] if quick else 15),
        "limit_train": args.limit_train if args.limit_train is not None else (QUICK["limit_train"] if quick else None),
        "eval_images": args.eval_images if args.eval_images is not None else (QUICK["eval_images"] if quick else None),
        "ig_steps": args.ig_steps if args.ig_steps is not None else (QUICK["ig_steps"] if quick else 50),
        "limit_test": args.limit_test, "seed": args.seed, "fraction": check_fraction(args.fraction), "by": args.by,
        "weight": float(args.weight),
        "batch_size": args.batch_size, "lr": args.lr, "val_fraction": args.val_fraction, "patience": args.patience,
        "explain": args.explain, "quick": quick,
    }
    fill: Any = args.fill
    if isinstance(fill, str) and fill != "random":
        try:
            fill = float(fill)
        except ValueError:
            pass
    s["fill"] = check_fill(fill)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"--methods must be a comma list from {', '.join(METHODS)}; got {args.methods!r}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or any(m not in MODELS for m in models):
        raise ValueError(f"--models must be a comma list from {', '.join(MODELS)}; got {args.models!r}")
    s["methods"], s["models"] = methods, models
    for name in ("epochs", "batch_size", "ig_steps"):
        if s[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {s[name]}")
    if not 0.0 < s["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {s['val_fraction']}")
    if s["weight"] < 0:
        raise ValueError(f"--weight must be ≥ 0, got {s['weight']}")
    return s


# ------------------------------------------------------------------------------------------ training
def load_data(args: argparse.Namespace, s: dict[str, Any]):
    """(train, validation, test) MNIST, normalised with 0.1307 / 0.3081."""
    load = dict(root=args.data_root, download=not args.no_download, allow_bundled=args.data_root is None,
                normalize=True)
    full = load_dataset("mnist", "train", limit=s["limit_train"], **load)
    test = load_dataset("mnist", "test", limit=s["limit_test"], **load)
    train_set, val_set = full.split(s["val_fraction"], seed=s["seed"])
    return train_set, val_set, test


def objective_for(kind: str, s: dict[str, Any]) -> Objective:
    if kind == "regular":
        return Objective(seed=s["seed"])
    return Objective({SaliencyGuided(s["fraction"], s["by"], s["fill"]): s["weight"]}, seed=s["seed"])


TRAIN_KEYS = ("limit_train", "seed", "batch_size", "lr", "val_fraction")
SGT_KEYS = ("fraction", "by", "fill", "weight")


def train_model(kind: str, run_dir: Path, data, s: dict[str, Any], device: str, progress: bool) -> dict[str, Any]:
    """Train (or resume, or reuse) one model in ``run_dir``; returns its selected epoch's record."""
    train_set, val_set, test_set = data
    study = {k: s[k] for k in TRAIN_KEYS + (SGT_KEYS if kind == "guided" else ())}
    if (run_dir / runs.CONFIG).is_file():
        stored = runs.read_json(run_dir / runs.CONFIG).get("study", {})
        changed = {k: (stored.get(k), v) for k, v in study.items() if stored.get(k) != v}
        if changed:
            raise ValueError(f"{run_dir} was trained with other settings {changed} (stored, asked); "
                             "choose another --out or delete that run folder")
    config = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], optimizer="adadelta",
                         seed=s["seed"], device=device, select="best_val_accuracy", patience=s["patience"],
                         eval_batch_size=1000, progress=progress)
    torch.manual_seed(s["seed"])
    model = build_model(MODEL)
    info = {"dataset": "mnist", "model": MODEL, "model_kwargs": {}, "normalize": True, "study": study,
            "kind": kind, "train_source": train_set.source, "n_train": len(train_set), "n_val": len(val_set),
            "command": "explainreg " + " ".join(sys.argv[1:])}
    started = time.perf_counter()
    result = train(model, objective_for(kind, s), train_set, test_set, config=config, val_set=val_set,
                   run_dir=run_dir, resume=True, run_info=info,
                   on_epoch_end=lambda e, r: print(f"  {kind} epoch {e}: val_acc={100 * r['val_accuracy']:.2f}% "
                                                   f"test_acc={100 * r['test_accuracy']:.2f}% ({r['seconds']:.0f}s)",
                                                   flush=True))
    finalise(run_dir, s["epochs"])  # result.best_epoch already comes from the checkpoint
    record = dict(result.final)
    record["train_seconds_this_call"] = time.perf_counter() - started
    record["epochs_run"] = len(result.history)
    return record


def finalise(run_dir: Path, epochs: int) -> bool:
    """A run stopped (killed) after ``epochs`` epochs but trained for more keeps its last epoch's
    weights; put the best-on-validation weights into its checkpoint and mark it finished, as a run
    that ended at ``epochs`` would be (a later, longer ``--epochs`` continues from those weights).
    Returns whether it changed the checkpoint."""
    path = run_dir / runs.CHECKPOINT
    if not path.is_file():
        return False
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("finished") or len(state["history"]) < epochs or state.get("best_state") is None:
        return False
    state.update(model=state["best_state"], finished=True)
    runs.atomic_save(state, path)
    return True


# ---------------------------------------------------------------------------------------- evaluation
def _evaluation_api():
    """The attribution and masked-accuracy functions of explainreg (methods.md A.5)."""
    try:
        from ..attribution import attribute
        from ..metrics import masked_accuracy
    except ImportError as exc:  # pragma: no cover - only while those modules are being written
        raise RuntimeError(f"the saliency-guided study needs explainreg.attribution.attribute and "
                           f"explainreg.metrics.masked_accuracy (methods.md A.5), which could not be imported: "
                           f"{exc}") from exc
    return attribute, masked_accuracy


class LogProb(nn.Module):
    """f(x) ↦ log_softmax(f(x)): the seed's model output, so attributions explain log p_y."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.model(x), dim=1)


def attributions_for(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str, s: dict[str, Any],
                     chunk: int = 100) -> torch.Tensor:
    """Attributions of the true label with the seed's settings (B.3 §3.3): IG/DeepLift with one
    U[0, 1) baseline per image, GradientSHAP with 5 U[0, 1) baselines and stdev 0.09, SmoothGrad²
    with Captum's defaults (5 samples, σ = 1), gradient |∂/∂x|, random U(0, 1)."""
    attribute, _ = _evaluation_api()
    explained = LogProb(model) if s["explain"] == "log_prob" else model
    generator = torch.Generator().manual_seed(s["seed"] + 17)
    out = []
    for i, (xs, ys) in enumerate(zip(x.split(chunk), y.split(chunk))):
        seed = s["seed"] * 1000 + i
        if method in ("integrated_gradients", "deeplift"):
            base = torch.rand(xs.shape, generator=generator).to(xs.device)
            opts: dict[str, Any] = {"baselines": base}
            if method == "integrated_gradients":
                opts.update(n_steps=s["ig_steps"])
        elif method == "gradient_shap":
            opts = {"baselines": torch.rand((5,) + tuple(xs.shape[1:]), generator=generator).to(xs.device),
                    "n_samples": 5, "stdevs": 0.09}
        elif method == "smoothgrad":
            opts = {"nt_type": "smoothgrad_sq", "nt_samples": 5, "stdevs": 1.0}
        else:
            opts = {}
        out.append(attribute(explained, xs, ys, method, max_batch=len(xs), seed=seed, **opts))
    return torch.cat(out)


def evaluate_model(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, s: dict[str, Any],
                   cache: Path, record: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Masked-accuracy curve of each method for one model; cached per (model state, method, settings)."""
    _, masked_accuracy = _evaluation_api()
    key = {k: s[k] for k in ("eval_images", "limit_test", "ig_steps", "explain", "seed")}
    record = record or {}
    key.update(epochs_run=record.get("epochs_run"), selected_epoch=record.get("epoch"))
    results = {}
    for method in s["methods"]:
        path = cache / f"{kind}-{method}.json"
        if path.is_file():
            stored = runs.read_json(path)
            if stored.get("key") == key:
                results[method] = stored
                continue
        started = time.perf_counter()
        a = attributions_for(model, x, y, method, s)
        r = masked_accuracy(model, x, y, a, drops=DROPS, background="corner")
        results[method] = {"key": key, "drops": list(DROPS), "accuracy": [float(v) for v in r.curve],
                           "area": float(r.value), "n_images": r.n_images,
                           "seconds": time.perf_counter() - started}
        runs.atomic_write_json(path, results[method])
        print(f"  {kind} {method}: area {r.value:.4f} ({time.perf_counter() - started:.0f}s)", flush=True)
    return results


# -------------------------------------------------------------------------------------------- report
def write_tables(out: Path, curves: dict[str, dict[str, dict[str, Any]]]):
    """``masked_accuracy.csv`` (model × method × drop) and ``curve_areas.csv`` (method × model), atomically."""
    import pandas as pd

    rows = [{"model": kind, "method": method, "drop_percent": d, "accuracy": acc}
            for kind, per in curves.items() for method, r in per.items() for d, acc in zip(r["drops"], r["accuracy"])]
    table = pd.DataFrame(rows)
    runs.atomic_write_bytes(out / "masked_accuracy.csv", table.to_csv(index=False).encode())
    areas = pd.DataFrame([{"model": kind, "method": method, "area": r["area"], "n_images": r["n_images"]}
                          for kind, per in curves.items() for method, r in per.items()])
    wide = areas.pivot(index="method", columns="model", values="area")
    wide = wide.reindex(index=[m for m in METHODS if m in wide.index], columns=[k for k in MODELS if k in wide.columns])
    runs.atomic_write_bytes(out / "curve_areas.csv", wide.to_csv().encode())
    return table, wide


def plot_curves(path: Path, curves: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> Path:
    """One panel per method: accuracy against the share of the most salient pixels dropped, per model."""
    cols = min(3, len(methods))
    rows = (len(methods) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, width=4, height=3.2, sharey=True)
    styles = {"regular": dict(color="tab:blue", marker="o"), "guided": dict(color="tab:red", marker="s")}
    for ax, method in zip(axes.flat, methods):
        for kind, per in curves.items():
            if method in per:
                r = per[method]
                ax.plot(r["drops"], [100 * a for a in r["accuracy"]], label=f"{kind} (area {r['area']:.3f})",
                        **styles.get(kind, {}))
        ax.set_title(LABELS[method])
        ax.set_xlabel("most salient features dropped (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy (%)")
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle("MNIST masked accuracy: regular vs saliency-guided training (lower = more faithful)")
    return save_figure(fig, path, dpi=120)


def plot_maps(path: Path, models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, s: dict[str, Any],
              n: int = 8) -> Path:
    """Inputs and |gradient| saliency of each model for the first ``n`` test images."""
    x, y = x[:n], y[:n]
    maps = {kind: attributions_for(m, x, y, "saliency", s).abs().mean(1) for kind, m in models.items()}
    fig, axes = new_figure(1 + len(maps), len(x), width=1.6, height=1.7)
    for j in range(len(x)):
        axes[0, j].imshow(x[j].mean(0).cpu(), cmap="gray")
        axes[0, j].set_title(f"label {int(y[j])}", fontsize=8)
        for i, (kind, g) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(g[j].cpu(), cmap="hot")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    for i, kind in enumerate(maps, start=1):
        axes[i, 0].set_ylabel(f"{kind}\n|gradient|")
    return save_figure(fig, path, dpi=120)


def write_summary(out: Path, s: dict[str, Any], records: dict[str, dict[str, Any]], areas, n_eval: int,
                  command: str, figures: list[tuple[Path, str]]) -> str:
    """``summary.md`` and ``summary.html`` in ``out``; returns the Markdown text."""
    report = Report("Saliency Guided Training on MNIST: masked accuracy")
    report.text(f"Command: `{command}`")
    report.text(f"Model `{MODEL}` (PyTorch-examples CNN), Adadelta lr {s['lr']}, batch {s['batch_size']}, "
                f"{s['epochs']} epochs max, best epoch on a {100 * s['val_fraction']:.0f} % validation split "
                f"(train images: {s['limit_train'] or 'all'}), seed {s['seed']}. SGT: fraction {s['fraction']}, "
                f"by {s['by']}, fill {s['fill']}, λ {s['weight']}.")
    report.table(Table(["model", "selected epoch", "val accuracy", "test accuracy"],
                       [[kind, str(r.get("epoch")), f"{100 * r.get('val_accuracy', float('nan')):.2f} %",
                         f"{100 * r.get('test_accuracy', float('nan')):.2f} %"] for kind, r in records.items()]))
    report.text(f"Masked accuracy on {n_eval} test images (explaining {s['explain']} of the true label): "
                "area under accuracy vs fraction of the most salient pixels replaced by the background "
                "(0–90 %, trapezoid; lower = accuracy falls faster = more faithful saliency).")
    kinds = [k for k in MODELS if k in areas.columns]
    cells, bold = [], []
    for method, row in areas.iterrows():
        line = [LABELS[method]] + [f"{row[k]:.4f}" for k in kinds]
        marks = [False] + [row[k] == areas[k].min() for k in kinds]
        if len(kinds) == 2:
            line.append(f"{row['guided'] - row['regular']:+.4f}")
            marks.append(False)
        cells.append(line)
        bold.append(marks)
    report.table(Table(["method", *kinds] + (["guided − regular"] if len(kinds) == 2 else []), cells, bold,
                       notes="Bold: the smallest area (most faithful saliency) per model."))
    if "random" in areas.index:
        faster = [[kind, ", ".join(LABELS[m] for m in areas.index
                                   if m != "random" and areas.loc[m, kind] < areas.loc["random", kind]) or "none"]
                  for kind in kinds]
        report.text("Faster than random masking (area below the random curve's):")
        report.table(Table(["model", "methods"], faster))
    if len(kinds) == 2:
        faster = [LABELS[m] for m in areas.index if m != "random" and areas.loc[m, "guided"] < areas.loc[m, "regular"]]
        report.text(f"Guided falls faster than regular for: {', '.join(faster) or 'none'}.")
    if s["quick"]:
        report.text("--quick run: few images and one epoch; the numbers only show that the pipeline works.")
    for path, caption in figures:
        report.figure(path, caption)
    report.write(out, name="summary")
    return report.markdown(out)


# ------------------------------------------------------------------------------------------------ run
def run(args: argparse.Namespace) -> int:
    s = settings_from(args)
    if args.threads:
        torch.set_num_threads(int(args.threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    data = load_data(args, s)
    train_set, val_set, test_set = data
    bundled = " [BUNDLED SUBSET: for a quick try only]" if "bundled" in test_set.source else ""
    print(f"MNIST: {len(train_set)} train / {len(val_set)} validation / {len(test_set)} test from "
          f"{test_set.source}{bundled}", flush=True)
    if not args.train_only:
        _evaluation_api()  # fail before hours of training when the evaluation code is missing
    records = {}
    for kind in s["models"]:
        print(f"training {kind} ({out / kind})", flush=True)
        records[kind] = train_model(kind, out / kind, data, s, args.device, progress)
        print(f"  {kind}: selected epoch {records[kind]['epoch']}, "
              f"test accuracy {100 * records[kind]['test_accuracy']:.2f}%", flush=True)
    if args.train_only:
        return 0

    n_eval = min(s["eval_images"] or len(test_set), len(test_set))
    device = _device(args.device)
    models = {kind: runs.load_run(out / kind, device=device)[0] for kind in s["models"]}
    x, y = test_set.x[:n_eval].to(device), test_set.y[:n_eval].to(device)
    cache = out / "eval"
    cache.mkdir(exist_ok=True)
    curves = {}
    for kind, model in models.items():
        print(f"masked accuracy of {kind} on {n_eval} test images", flush=True)
        curves[kind] = evaluate_model(kind, model, x, y, s, cache, records[kind])
    _, areas = write_tables(out, curves)
    figures = [(plot_curves(out / "masked_accuracy.png", curves, s["methods"]), "masked accuracy per method"),
               (plot_maps(out / "saliency_maps.png", models, x, y, s), "inputs and |gradient| saliency")]
    command = "explainreg " + " ".join(sys.argv[1:]) if sys.argv and "explainreg" in sys.argv[0] else \
        f"explainreg study {NAME} --out {out}"
    text = write_summary(out, s, records, areas, n_eval, command, figures)
    runs.atomic_write_json(out / "results.json", {"settings": s, "models": records, "curves": curves})
    print(text)
    print(f"written: {out / 'masked_accuracy.csv'}, {out / 'curve_areas.csv'}, {out / 'masked_accuracy.png'}, "
          f"{out / 'saliency_maps.png'}, {out / 'summary.md'}, {out / 'summary.html'}")
    return 0


def _device(name: str) -> str:
    from ..training import resolve_device

    return str(resolve_device(name))


register_study(NAME, "Saliency Guided Training on MNIST and its masked-accuracy curves (SGT, methods.md A.4)",
               add_arguments, run)
