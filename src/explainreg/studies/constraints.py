"""``explainreg study constraints``: the six saliency penalties of seed 1 against an unconstrained
baseline, evaluated with the seed's six tests (the xAI-constrained-losses code).

Layout of ``--out``: ``runs/NAME`` (one run folder per model, cached: finished runs are skipped,
interrupted ones resumed), ``sweep/`` (weight selection on a validation split, when asked),
``results.csv``, ``results.json``, ``report.md``, ``report.html`` and ``figures/``.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import runs
from .._validation import nonnegative_float, nonnegative_int, positive_int
from ..attribution import attribute
from ..data import ArrayDataset, load_dataset
from ..metrics import Complexity, Faithfulness, GaussianNoise, MoRF, SquareBlocks
from ..metrics.roar import roar_curve
from ..models import build_model
from ..objective import Objective
from ..training import TrainConfig, evaluate_accuracy
from . import register_study
from .constraints_report import COLUMNS, SEED_MNIST, write_report
from .skeleton import cached, settings_hash, train_or_resume
from .executors import check_executor, run_on_ray

__all__ = ["COLUMNS", "DEFAULT_WEIGHT", "FULL", "MODELS", "PENALTIES", "QUICK", "SEED_MNIST", "STEP_COST", "Settings",
           "add_arguments", "command_line", "evaluate_model", "run", "run_study", "select_weights",
           "settings_from_args", "train_model"]

PENALTIES = ("gradient_l1", "consistency", "smoothness", "locality", "fidelity", "symmetry")
#: each penalty's weight unless --weight or --sweep says otherwise (the seed's committed λ)
DEFAULT_WEIGHT = 0.1
MODELS = {"mnist": "cnn3b", "fashion-mnist": "cnn4b"}
QUICK = dict(epochs=1, limit_train=5000, limit_test=1000, eval_images=300, roar_train=3000, roar_epochs=1, log_every=10)
FULL = dict(epochs=8, limit_train=None, limit_test=None, eval_images=10000, roar_train=None, roar_epochs=6, log_every=50)


@dataclass
class Settings:
    """Everything that determines the study's results (recorded in results.json)."""

    dataset: str = "mnist"
    model: str = "cnn3b"
    out: str = "results/constraints-mnist"
    data_root: str | None = None
    seed: int = 0
    epochs: int = 8
    batch_size: int = 30
    lr: float = 1e-3
    limit_train: int | None = None
    limit_test: int | None = None
    eval_images: int = 10000
    roar_train: int | None = None
    roar_epochs: int = 6
    weights: dict[str, float] = field(default_factory=lambda: {p: DEFAULT_WEIGHT for p in PENALTIES})
    penalties: tuple[str, ...] = PENALTIES
    sweep: tuple[float, ...] = ()
    tolerance: float = 0.01
    validation_fraction: float = 0.1
    log_every: int = 50
    grid_images: int = 6
    quick: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """The settings of an ``explainreg study constraints`` command line (see :func:`settings_from_args`)."""
        return settings_from_args(args)

    def train_config(self, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           log_every=self.log_every, progress=sys.stderr.isatty())


# ------------------------------------------------------------------------------------------ training
def _objective(penalty: str | None, weight: float, settings: Settings) -> Objective:
    if penalty is None:  # the baseline monitors every penalty without training on it (the seed's curves)
        return Objective({p: 0.0 for p in settings.penalties}, seed=settings.seed, monitor_every=settings.log_every)
    return Objective({penalty: weight}, seed=settings.seed)


def train_model(run_dir: Path, penalty: str | None, weight: float, train_set: ArrayDataset, test_set: ArrayDataset,
                settings: Settings, val_set: ArrayDataset | None = None, epochs: int | None = None):
    """Train (or resume, or reuse when finished) one model in ``run_dir``."""
    torch.manual_seed(settings.seed)
    model = build_model(settings.model)
    info = {"dataset": settings.dataset, "model": settings.model, "normalize": False, "data_root": settings.data_root,
            "penalty": penalty or "baseline", "weight": weight if penalty else 0.0,
            "train_source": train_set.source, "n_train": len(train_set)}
    result = train_or_resume(run_dir, model, _objective(penalty, weight, settings), train_set, test_set,
                             config=settings.train_config(epochs), val_set=val_set, run_info=info,
                             identity=_describe(info), recorded=_known)
    return model.eval(), result


def _describe(config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a study run, from its config (also from runs made with ``explainreg train``,
    whose config records the objective rather than the study's keys; unknown entries are None)."""
    if "penalty" in config:
        penalty, weight = config["penalty"], config["weight"]
    else:
        trained = [(o["penalty"], o["weight"]) for o in config.get("objective", []) if o["weight"] != 0]
        penalty, weight = trained[0] if len(trained) == 1 else ("baseline", 0.0) if not trained else (trained, None)
    return {"dataset": config.get("dataset"), "model": config.get("model"), "penalty": penalty, "weight": weight,
            "n_train": config.get("n_train")}


def _known(config: dict[str, Any]) -> dict[str, Any]:
    """The entries of :func:`_describe` that a run's config records (a run trained elsewhere lacks some)."""
    return {k: v for k, v in _describe(config).items() if v is not None}


def select_weights(settings: Settings, train_set: ArrayDataset, test_set: ArrayDataset) -> dict[str, Any]:
    """For each penalty the largest weight in ``settings.sweep`` whose validation accuracy stays within
    ``tolerance`` of the baseline's (trained on the same split); the smallest when none does."""
    fit, val = train_set.split(settings.validation_fraction, seed=settings.seed)
    folder = Path(settings.out) / "sweep"
    _, base = train_model(folder / "baseline", None, 0.0, fit, test_set, settings, val_set=val)
    base_acc = base.history[-1]["val_accuracy"]
    chosen, table = {}, {"baseline": base_acc}
    for penalty in settings.penalties:
        ok = []
        for weight in sorted(settings.sweep):
            _, res = train_model(folder / f"{penalty}-w{weight:g}", penalty, weight, fit, test_set, settings, val_set=val)
            acc = res.history[-1]["val_accuracy"]
            table[f"{penalty}-w{weight:g}"] = acc
            if acc >= base_acc - settings.tolerance:
                ok.append(weight)
        chosen[penalty] = max(ok) if ok else min(settings.sweep)
    selection = {"baseline_val_accuracy": base_acc, "tolerance": settings.tolerance, "val_accuracy": table,
                 "chosen": chosen}
    runs.atomic_write_json(folder / "selection.json", selection)
    return selection


# ---------------------------------------------------------------------------------------- evaluation
def _eval_key(settings: Settings) -> str:
    keys = ("eval_images", "roar_train", "roar_epochs", "batch_size", "seed", "limit_test", "epochs", "limit_train")
    return settings_hash({k: getattr(settings, k) for k in keys})


def evaluate_model(model, run_dir: Path, x: torch.Tensor, y: torch.Tensor, test_set: ArrayDataset,
                   roar_train: ArrayDataset, settings: Settings) -> dict[str, Any]:
    """The seed's six tests with the model's own saliency (|∂z_y/∂x|), cached in ``run_dir``."""
    def measure() -> dict[str, Any]:
        a = attribute(model, x, y, "saliency")
        results = {
            "morf": MoRF()(model, x, y, a), "faithfulness": Faithfulness()(model, x, y, a),
            "complexity": Complexity()(model, x, y, a),
            "roar": roar_curve(model, roar_train, ArrayDataset(x, y), test_attributions=a, epochs=settings.roar_epochs,
                               batch_size=30, seed=settings.seed, model_factory=lambda: build_model(settings.model)),
            "gaussian": GaussianNoise(seed=settings.seed)(model, x, y),
            "blocks": SquareBlocks(seed=settings.seed)(model, x, y),
        }
        metrics = {name: r.to_dict() for name, r in results.items()}
        metrics["test_accuracy"] = {"value": 100 * evaluate_accuracy(model, test_set), "higher_is_better": True}
        return metrics

    return cached(run_dir / "study_evaluation.json", measure, key=_eval_key(settings), value_field="metrics")[0]


# --------------------------------------------------------------------------------------------- study
#: relative cost of a training step with each penalty (CNN4b, one core; README "Speed"), to start the
#: dearest models first when they are spread over processes
STEP_COST = {"baseline": 1.0, "gradient_l1": 2.4, "consistency": 2.4, "smoothness": 2.4, "locality": 2.4,
             "fidelity": 3.0, "symmetry": 4.1}


def _load(settings: Settings) -> tuple[ArrayDataset, ArrayDataset]:
    load = dict(root=settings.data_root, allow_bundled=settings.data_root is None and settings.quick)
    return (load_dataset(settings.dataset, "train", limit=settings.limit_train, **load),
            load_dataset(settings.dataset, "test", limit=settings.limit_test, **load))


def _eval_data(settings: Settings, train_set: ArrayDataset,
               test_set: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor, ArrayDataset]:
    """The metrics' test images ``(x, y)`` (the first ``eval_images``) and ROAR's training set."""
    n_eval = min(settings.eval_images, len(test_set))
    roar_train = train_set.take(settings.roar_train) if settings.roar_train else train_set
    return test_set.x[:n_eval], test_set.y[:n_eval], roar_train


def _run_model(name: str, settings: Settings, train_set: ArrayDataset, test_set: ArrayDataset,
               eval_data: tuple[torch.Tensor, torch.Tensor, ArrayDataset]):
    """Train (or reuse) and evaluate (or reuse) one model of the study: ``(model, result, metrics)``."""
    penalty = None if name == "baseline" else name
    weight = settings.weights.get(name, 0.0)
    run_dir = Path(settings.out) / "runs" / (name if penalty is None else f"{name}-w{weight:g}")
    print(f"[{name}] training in {run_dir}", flush=True)
    model, result = train_model(run_dir, penalty, weight, train_set, test_set, settings)
    x, y, roar_train = eval_data
    print(f"[{name}] evaluating on {len(x)} test images", flush=True)
    return model, result, evaluate_model(model, run_dir, x, y, test_set, roar_train, settings)


def _worker(name: str, settings: Settings, threads: int) -> str:
    """One model in a worker process (``--jobs``): its results land in its run folder."""
    torch.set_num_threads(threads)
    train_set, test_set = _load(settings)
    _run_model(name, settings, train_set, test_set, _eval_data(settings, train_set, test_set))
    return name


def _run_in_parallel(names: list[str], settings: Settings, jobs: int) -> None:
    """Train and evaluate ``names`` in ``jobs`` processes of ``threads // jobs`` torch threads each,
    dearest first. Every result is written to its run folder, which the caller then reuses."""
    threads = max(1, torch.get_num_threads() // jobs)
    print(f"{len(names)} models in {jobs} processes of {threads} thread(s)", flush=True)
    order = sorted(names, key=lambda n: -STEP_COST.get(n, 1.0))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in [pool.submit(_worker, name, settings, threads) for name in order]:
            print(f"[{future.result()}] done", flush=True)


def run_study(settings: Settings, jobs: int = 1, executor: str = "local", address: str | None = None) -> Path:
    """The study's Python API: train, evaluate and report; returns the path of ``report.html``. ``jobs > 1`` trains and
    evaluates the models in that many processes (each with its share of torch's threads);
    ``executor="ray"`` sends them to a Ray cluster instead, one CPU each (``address``: a running
    cluster; None: a local one; see ``studies.executors``)."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    check_executor(executor, address)
    out = Path(settings.out)
    train_set, test_set = _load(settings)
    for split, data in (("train", train_set), ("test", test_set)):
        print(f"{split}: {len(data)} images from {data.source}", flush=True)
    selection = None
    if settings.sweep:
        selection = select_weights(settings, train_set, test_set)
        settings.weights = {**settings.weights, **selection["chosen"]}
        print(f"weights chosen on validation: {selection['chosen']}", flush=True)
    eval_data = _eval_data(settings, train_set, test_set)
    x, y, _ = eval_data
    names = ["baseline", *settings.penalties]
    if executor == "ray":  # each model a Ray task; the results land in the run folders reused below

        order = sorted(names, key=lambda n: -STEP_COST.get(n, 1.0))
        run_on_ray(_worker, [(name, settings, 1) for name in order], address=address,
                   on_done=lambda name: print(f"[{name}] done (ray)", flush=True))
    elif jobs > 1:
        _run_in_parallel(names, settings, jobs)
    models, metrics, histories = {}, {}, {}
    for name in names:
        models[name], result, metrics[name] = _run_model(name, settings, train_set, test_set, eval_data)
        histories[name] = result.steps
    record = {"study": "constraints", "settings": asdict(settings), "environment": runs.environment(),
              "data": {"train": train_set.source, "test": test_set.source, "n_train": len(train_set),
                       "n_test": len(test_set), "n_eval": len(x)}, "selection": selection}
    return write_report(out, settings, record, models, metrics, histories, x, y, command_line(settings))


def command_line(settings: Settings) -> str:
    """The ``explainreg study constraints`` command that repeats a study with ``settings``: the mode
    flag plus every setting that differs from that mode's default (what the report prints)."""
    mode = QUICK if settings.quick else FULL
    parts = ["explainreg study constraints", f"--dataset {settings.dataset}"] + (["--quick"] if settings.quick else [])
    parts += [f"--{key.replace('_', '-')} {getattr(settings, key)}" for key in mode
              if key != "log_every" and getattr(settings, key) != mode[key]]
    if settings.seed != 0:
        parts.append(f"--seed {settings.seed}")
    if tuple(settings.penalties) != PENALTIES:
        parts.append(f"--penalties {','.join(settings.penalties)}")
    if settings.sweep:
        parts.append(f"--sweep {','.join(f'{w:g}' for w in settings.sweep)} --tolerance {settings.tolerance:g}")
    parts += [f"--weight {name}={settings.weights[name]:g}" for name in settings.penalties
              if not settings.sweep and settings.weights.get(name, DEFAULT_WEIGHT) != DEFAULT_WEIGHT]
    if settings.data_root:
        parts.append(f"--data-root {shlex.quote(str(settings.data_root))}")
    return " ".join(parts + [f"--out {shlex.quote(str(settings.out))}"])


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", choices=sorted(MODELS))
    p.add_argument("--quick", action="store_true",
                   help="a few-minute CPU run: 1 epoch on 5,000 images, metrics on 300 test images, ROAR retrained "
                        "for 1 epoch on 3,000 images")
    p.add_argument("--out", default=None, help="study folder (default: results/constraints-DATASET[-quick])")
    p.add_argument("--data-root", default=None, help="data root (default: $EXPLAINREG_DATA or ~/.cache/explainreg)")
    p.add_argument("--weight", action="append", metavar="PENALTY=WEIGHT",
                   help="weight of a penalty (repeatable; default 0.1 each, the seed's committed λ)")
    p.add_argument("--penalties", default=",".join(PENALTIES), help="comma-separated subset of the six penalties")
    p.add_argument("--sweep", default=None, metavar="W1,W2,...",
                   help="pick each penalty's weight among these on a validation split (e.g. 0.01,0.1,1)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="sweep: largest weight whose validation accuracy is within this of the baseline's (0.01)")
    for name, kind, text in (("epochs", positive_int, "training epochs"), ("limit-train", positive_int, "train images"),
                             ("limit-test", positive_int, "test images"),
                             ("eval-images", positive_int, "test images for the metrics"),
                             ("roar-train", positive_int, "train images for ROAR retraining"),
                             ("roar-epochs", positive_int, "ROAR retraining epochs"),
                             ("seed", nonnegative_int, "random seed")):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"{text} (overrides the mode's default)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train and evaluate the models in this many processes, sharing torch's threads (default 1)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: this machine's process pool (--jobs); ray: one Ray task per model (pip install "
                        "'explainreg[ray]')")
    p.add_argument("--address", default=None, help="with --executor ray: a running cluster ('auto', "
                                                   "'ray://HOST:10001'); default: a local Ray")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The :class:`Settings` of a parsed command line: the mode's defaults (``--quick`` or full), then
    each option given; ``--weight``, ``--penalties`` and ``--sweep`` checked (``ValueError`` naming the option)."""
    mode = dict(QUICK if args.quick else FULL)
    for key in mode:
        if getattr(args, key, None) is not None:
            mode[key] = getattr(args, key)
    penalties = tuple(p.strip() for p in args.penalties.split(",") if p.strip())
    unknown = set(penalties) - set(PENALTIES)
    if unknown:
        raise ValueError(f"--penalties: unknown {sorted(unknown)}; choose among {', '.join(PENALTIES)}")
    weights = {p: DEFAULT_WEIGHT for p in PENALTIES}
    for item in args.weight or []:
        name, _, value = item.partition("=")
        if name not in PENALTIES or not value:
            raise ValueError(f"--weight {item!r}: write PENALTY=WEIGHT with PENALTY among {', '.join(PENALTIES)}")
        try:
            weights[name] = nonnegative_float(value)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--weight {item!r}: the weight {exc}, e.g. {name}=0.1") from None
    try:
        sweep = tuple(float(w) for w in args.sweep.split(",")) if args.sweep else ()
    except ValueError:
        raise ValueError(f"--sweep {args.sweep!r}: write comma-separated numbers, e.g. 0.01,0.1,1") from None
    if any(not math.isfinite(w) or w < 0 for w in sweep):
        raise ValueError(f"--sweep weights must be finite and ≥ 0, got {args.sweep}")
    out = args.out or f"results/constraints-{args.dataset}{'-quick' if args.quick else ''}"
    return Settings(dataset=args.dataset, model=MODELS[args.dataset], out=out, data_root=args.data_root,
                    seed=args.seed if args.seed is not None else 0, weights=weights, penalties=penalties, sweep=sweep,
                    tolerance=args.tolerance, quick=args.quick,
                    **{k: v for k, v in mode.items() if k != "seed"})


def run(args: argparse.Namespace) -> int:
    """``explainreg study constraints``: :func:`run_study` with the command line's settings."""
    report = run_study(settings_from_args(args), jobs=args.jobs, executor=getattr(args, "executor", "local"),
                       address=getattr(args, "address", None))
    print(f"report: {report}\n        {report.with_suffix('.md')}")
    return 0


register_study("constraints", "the six saliency penalties vs the baseline, with the seed's six tests and a report",
               add_arguments, run)
