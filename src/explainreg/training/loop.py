"""The training loop: any model, any data set, any objective; checkpoints, resume, devices."""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .. import runs
from ..objective import Objective
from ..modes import model_device
from . import distributed
from .batches import iterate_batches, num_batches, world
from .config import TrainConfig, resolve_device
from .optim import OptimizerLike, SchedulerLike, Stepper

EpochCallback = Callable[[int, dict[str, Any]], None]


@dataclass
class TrainResult:
    """Per-epoch ``history``, logged ``steps``, the selected epoch and the run folder (if any)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    run_dir: Path | None = None

    @property
    def final(self) -> dict[str, Any]:
        """The record of the selected epoch (the last one unless a best-on-validation rule chose)."""
        if not self.history:
            return {}
        epoch = self.best_epoch if self.best_epoch is not None else self.history[-1]["epoch"]
        return next(r for r in self.history if r["epoch"] == epoch)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 1000,
             device: torch.device | str | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` (in eval mode) on ``dataset``."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y, _ in iterate_batches(dataset, batch_size, shuffle=False, device=device):
        logits = model(x)
        correct += int((logits.argmax(1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        n += len(y)
    correct, loss, n = distributed.reduce_counts(correct, loss, n)  # torchrun: every rank's share
    model.train(was_training)
    return {"accuracy": correct / max(n, 1), "loss": loss / max(n, 1)}


def evaluate_accuracy(model: nn.Module, dataset: Dataset, batch_size: int = 1000,
                      device: torch.device | str | None = None) -> float:
    """Fraction of ``dataset`` that ``model`` classifies correctly."""
    return evaluate(model, dataset, batch_size, device)["accuracy"]


def train(model: nn.Module, objective: Objective | None, train_set: Dataset, test_set: Dataset | None = None, *,
          config: TrainConfig | None = None, val_set: Dataset | None = None, run_dir: str | Path | None = None,
          resume: bool = False, run_info: dict[str, Any] | None = None,
          on_epoch_end: EpochCallback | None = None, optimizer: OptimizerLike | None = None,
          scheduler: SchedulerLike | None = None, param_groups: list[dict[str, Any]] | None = None) -> TrainResult:
    """Train ``model`` to minimise ``objective`` (plain cross-entropy when None) on ``train_set``.

    After each epoch: the mean of each objective term, train accuracy, validation and test accuracy,
    a checkpoint (model, optimiser, RNG states, step counter) written atomically into ``run_dir``.
    With ``resume=True`` a run folder's checkpoint is loaded and training continues where it
    stopped; a finished run is returned as it is. Resuming with other settings than the recorded
    ones is refused (a ``ValueError`` listing ``setting: old → new``), except more epochs (the run is
    extended and ``config.json`` updated), the device and the progress bar. ``run_info`` is stored
    in ``config.json`` (dataset, model name, ...); when it does not name the model and ``model`` is
    structurally a registered one, its name is recorded so ``explainreg evaluate`` can rebuild it.
    Runs repeat exactly on CPU for the same ``config.seed``, across resumes too: weights,
    optimiser state, ``history.json`` (but its wall-clock ``seconds``) and ``steps.json``.
    Integer labels of another dtype than int64 are converted.

    ``optimizer``: a ``torch.optim.Optimizer`` for ``model``'s parameters, or a factory
    ``params -> optimizer`` (given the trainable parameters or ``param_groups``); default: the one
    ``config.optimizer`` names. ``scheduler``: an LR scheduler or a factory ``optimizer -> scheduler``,
    stepped per ``config.scheduler_interval``. ``param_groups``: torch parameter groups whose
    ``params`` may be a submodule name. ``config.freeze`` / ``grad_clip`` / ``amp``: frozen
    submodules, gradient-norm clipping, float16 mixed precision on CUDA (see ``training.optim``).
    The optimiser's and scheduler's states are checkpointed and restored on resume.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    objective = objective if objective is not None else Objective()
    model = distributed.unwrap(model)  # a user's DDP wrapper: train (and checkpoint) the module inside
    info = _run_info(model, train_set, test_set, run_info) if run_dir is not None else {}
    if config.select != "last" and val_set is None:
        raise ValueError(f"select={config.select!r} needs a validation set: pass val_set=...")
    device = resolve_device(config.device)
    if distributed.wanted():  # torchrun: one global batch split over the ranks (training/distributed.py)
        device = distributed.init_from_env(device)
    model.to(device)
    objective.to(device)
    stepper = Stepper(model, config, device, optimizer, scheduler, param_groups)
    cluster = distributed.DataParallel(model, objective, device) if distributed.wanted() else None
    if cluster is not None:
        stepper.after_backward.append(cluster.sync_gradients)
    optimizer = stepper.optimizer
    rank, _ = world()
    main_process = rank == 0
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"run_dir {run_dir} is an existing file, not a folder; choose another output folder")
    result = TrainResult(run_dir=run_dir)
    best_state, best_score, stale, start_epoch = None, -math.inf, 0, 0
    torch.manual_seed(config.seed)
    log = _logger(run_dir if main_process else None)

    if run_dir is not None and main_process:
        runs.clean_temporary(run_dir)  # left by a killed process; nothing reads them
    asked = {**info, "train": config.to_dict(), "objective": objective.config(), "device": str(device),
             "environment": runs.environment()}
    step = 0
    if run_dir is not None and (run_dir / runs.CHECKPOINT).is_file():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
                                  "or choose another output folder")
        state = runs.load_checkpoint(run_dir / runs.CHECKPOINT, device)
        recorded = runs.read_json(run_dir / runs.CONFIG) if (run_dir / runs.CONFIG).is_file() else {}
        changes = runs.settings_changes(recorded, asked, state["epoch"] + 1)
        if changes:
            raise ValueError(f"{run_dir} was trained with other settings; resuming would mix them. Differences "
                             "(setting: recorded → asked):\n  " + "\n  ".join(changes) + "\nResume with the "
                             "recorded settings (only more epochs, the device and progress may change), or train "
                             "into another output folder")
        merged = {**recorded, **{k: v for k, v in asked.items() if k != "environment"},
                  "train": {**recorded.get("train", {}), **asked["train"]}}
        if main_process and json.loads(json.dumps(merged, default=runs._jsonable)) != recorded:
            runs.atomic_write_json(run_dir / runs.CONFIG, merged)  # more epochs, new keys, device: as run now
        finished_epochs = state["epoch"] + 1
        model.load_state_dict(state["model"] if finished_epochs >= config.epochs or state.get("stopped_early")
                              else state.get("last_model", state["model"]))
        stepper.load_state_dict(state)
        torch.set_rng_state(state["rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        objective.generator.set_state(state["objective_rng"])
        objective.calls = state.get("objective_calls", 0)
        result.history, result.steps = state["history"], state["steps"]
        best_state, best_score, stale = state["best_state"], state["best_score"], state["stale"]
        result.best_epoch, start_epoch = state["best_epoch"], finished_epochs
        # checkpoints before 0.x lack "step": every epoch has the same number of batches
        step = state.get("step", finished_epochs * num_batches(train_set, config.batch_size))
        if main_process:  # a kill between the checkpoint and these files leaves them one epoch behind
            runs.atomic_write_json(run_dir / runs.HISTORY, result.history)
            runs.atomic_write_json(run_dir / runs.STEPS, result.steps)
        if state.get("stopped_early") or start_epoch >= config.epochs:
            log.info("run already finished; nothing to do")
            return result
        log.info(f"resuming from epoch {start_epoch}")
    elif run_dir is not None and main_process:
        runs.atomic_write_json(run_dir / runs.CONFIG, asked)

    for epoch in range(start_epoch, config.epochs):
        stepper.train_mode(model)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        correct = seen = 0
        started = time.perf_counter()
        batches = (cluster.batches if cluster is not None else iterate_batches)(
            train_set, config.batch_size, seed=config.seed, epoch=epoch, device=device)
        bar = tqdm(batches, total=(cluster.num_batches if cluster is not None else num_batches)(train_set, config.batch_size),
                   desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not (config.progress and main_process), leave=False, dynamic_ncols=True)
        for x, y, extras in bar:
            if y.dtype != torch.long and not y.is_floating_point() and y.dtype != torch.bool:
                y = y.long()  # int32 / uint8 class indices: cross-entropy needs int64
            with stepper.autocast():
                out = objective(cluster.forward_model if cluster is not None else model, x, y, **extras)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"the loss became {float(out.loss)} at epoch {epoch + 1} (terms {out.terms}); lower the "
                    "penalty weights or the learning rate. The last good checkpoint is kept in the run folder.")
            optimizer.zero_grad(set_to_none=True)
            stepper.backward_and_step(cluster.scale(out.loss) if cluster is not None else out.loss)
            step += 1
            terms, rows, hits = out.terms, len(y), int((out.logits.detach().argmax(1) == y).sum())
            if cluster is not None:  # every rank's piece -> the global batch's values
                terms, rows, hits = cluster.reduce_step(terms, rows, hits)
            for name, value in terms.items():  # monitored terms are not there on every step
                sums[name] = sums.get(name, 0.0) + value * rows
                counts[name] = counts.get(name, 0) + rows
            correct += hits
            seen += rows
            if (step - 1) % config.log_every == 0:  # steps 1, 1 + n, ...: where monitored penalties are computed
                result.steps.append({"step": step, "epoch": epoch + 1, **terms})
            bar.set_postfix({k: f"{v / counts[k]:.4g}" for k, v in sums.items()}, refresh=False)
        bar.close()
        stepper.end_epoch()

        record: dict[str, Any] = {"epoch": epoch + 1, **{f"train_{k}": v / counts[k] for k, v in sums.items()},
                                  "train_accuracy": correct / max(seen, 1), "seconds": time.perf_counter() - started}
        if val_set is not None:
            metrics = evaluate(model, val_set, config.eval_batch_size, device)
            record.update(val_accuracy=metrics["accuracy"], val_loss=metrics["loss"])
        if test_set is not None:
            metrics = evaluate(model, test_set, config.eval_batch_size, device)
            record.update(test_accuracy=metrics["accuracy"], test_loss=metrics["loss"])
        result.history.append(record)
        log.info(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))

        stop = False
        if config.select != "last":
            score = record["val_accuracy"] if config.select == "best_val_accuracy" else -record["val_loss"]
            if score > best_score:
                best_score, stale, result.best_epoch = score, 0, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                stop = config.patience is not None and stale > config.patience
        finished = stop or epoch + 1 == config.epochs
        last_model = None
        if finished and best_state is not None:
            last_model = copy.deepcopy(model.state_dict())  # a longer run later continues from these
            model.load_state_dict(best_state)
        if run_dir is not None and main_process:
            runs.atomic_save({
                "model": model.state_dict(), **stepper.state_dict(), "epoch": epoch, "step": step,
                **({"last_model": last_model} if last_model is not None else {}),
                "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "objective_rng": objective.generator.get_state(), "objective_calls": objective.calls,
                "history": result.history, "steps": result.steps,
                "best_state": best_state, "best_score": best_score, "best_epoch": result.best_epoch, "stale": stale,
                "finished": finished, "stopped_early": stop,
            }, run_dir / runs.CHECKPOINT)
            runs.atomic_write_json(run_dir / runs.HISTORY, result.history)
            runs.atomic_write_json(run_dir / runs.STEPS, result.steps)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
        if stop:
            log.info(f"early stop after epoch {epoch + 1}: no improvement for {stale} epochs")
            break
    return result


def _run_info(model: nn.Module, train_set: Dataset, test_set: Dataset | None,
              run_info: dict[str, Any] | None) -> dict[str, Any]:
    """``run_info`` completed with what ``explainreg evaluate`` needs to rebuild the model and data:
    the registered model's name (when ``model`` is one), the data set's name and sources."""
    from ..data import ArrayDataset
    from ..data.datasets import STATS

    info = dict(run_info or {})
    if "model" not in info:
        info.update(runs.identify_model(model) or {"model": None})
    if isinstance(train_set, ArrayDataset):
        if "dataset" not in info and train_set.name in STATS:
            info["dataset"] = train_set.name
        info.setdefault("train_source", train_set.source)
        if "normalize" not in info and train_set.name in STATS and len(train_set):
            mean, std = STATS[train_set.name]
            low = float(train_set.x.min())
            info["normalize"] = False if low >= 0 else True if abs(low + mean / std) < 1e-4 else None
    if isinstance(test_set, ArrayDataset):
        info.setdefault("test_source", test_set.source)
    return info


def _logger(run_dir: Path | None) -> logging.Logger:
    log = logging.getLogger(f"explainreg.train.{id(run_dir)}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers.clear()
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / runs.LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log
