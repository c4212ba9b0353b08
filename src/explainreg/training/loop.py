"""The training loop: any model, any data set, any objective; checkpoints, resume, devices.

:func:`train` is four parts: :func:`restore` (a run folder's checkpoint back into the model, the
optimiser and the generators), :func:`train_epoch` (one pass over the data), :class:`Selection`
(the best-epoch rule and early stopping) and :class:`~explainreg.training.checkpoint.Checkpoint`
(what is saved after each epoch).
"""
from __future__ import annotations

import contextlib
import difflib
import json
import logging
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .. import runs
from .._validation import check_labels
from ..inputs import stated_mask_meanings
from ..modes import model_device, unwrap_parallel
from ..objective import Objective
from . import distributed
from .batches import iterate_batches, num_batches, world
from .checkpoint import Checkpoint
from .config import TrainConfig, resolve_device
from .optim import OptimizerLike, SchedulerLike, Stepper
from .selection import Selection
from ..data import ArrayDataset
from ..data.datasets import STATS

__all__ = ["Checkpoint", "EpochCallback", "Selection", "TrainResult", "evaluate", "evaluate_accuracy", "restore",
           "train", "train_epoch"]

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
    """Accuracy and mean cross-entropy of ``model`` (in eval mode) on ``dataset``.

    Args:
        model: any module mapping a batch to logits, with or without parameters.
        dataset: yields ``(x, y, extras)``; ``y`` class indices.
        batch_size: rows per forward pass.
        device: where to run (default: the device of the model's first parameter or buffer, else CPU).

    Returns:
        ``{"accuracy": correct / n, "loss": Σ CE / n}`` (under torchrun, over every rank's share).

    Example::

        >>> import torch
        >>> from explainreg.data import ArrayDataset
        >>> fixed = torch.nn.Sequential(torch.nn.Flatten())  # no parameters: logits = the two inputs
        >>> data = ArrayDataset(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1]))
        >>> evaluate(fixed, data)["accuracy"]
        0.6666666666666666
    """
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y, _ in iterate_batches(dataset, batch_size, shuffle=False, device=device):
        logits = model(x)
        if not y.is_floating_point():
            check_labels(y, logits.shape[1])  # a clear error instead of cross-entropy's "Target 5 is out of bounds"
        correct += int((logits.argmax(1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        n += len(y)
    correct, loss, n = distributed.reduce_counts(correct, loss, n)  # torchrun: every rank's share
    model.train(was_training)
    return {"accuracy": correct / max(n, 1), "loss": loss / max(n, 1)}


def evaluate_accuracy(model: nn.Module, dataset: Dataset, batch_size: int = 1000,
                      device: torch.device | str | None = None) -> float:
    """Fraction of ``dataset`` that ``model`` classifies correctly (see :func:`evaluate`)."""
    return evaluate(model, dataset, batch_size, device)["accuracy"]


def restore(run_dir: Path, model: nn.Module, objective: Objective, stepper: Stepper, config: TrainConfig,
            asked: dict[str, Any], device: torch.device, *, write: bool = True) -> Checkpoint:
    """Load ``run_dir``'s checkpoint into ``model``, the optimiser/scheduler of ``stepper``, torch's
    generators and ``objective`` (generator, call counter), after checking that ``asked`` (the
    config this call would record) differs from the recorded ``config.json`` only where a resume
    may (see :func:`explainreg.runs.settings_changes`).

    Args:
        run_dir: a run folder holding ``checkpoint.pt`` (and ``config.json``).
        model, objective, stepper: what the checkpoint is loaded into.
        config: this call's settings (``epochs`` decides which of the saved weights to continue from; a run
            killed after ``epochs`` epochs but started for more is finished with its selected weights).
        asked: the ``config.json`` this call would write.
        device: where the checkpoint's tensors go.
        write: (the main process) update ``config.json`` with what may change (more epochs, the
            device), and rewrite ``history.json`` / ``steps.json`` from the checkpoint (a kill between
            the checkpoint and these files leaves them one epoch behind).

    Returns:
        The checkpoint that was loaded.

    Raises:
        ValueError: the run was trained with other settings (the message lists ``setting: old → new``).
        explainreg.runs.DamagedRunError: the checkpoint cannot be read.
    """
    state = Checkpoint.load(run_dir / runs.CHECKPOINT, device)
    recorded = runs.read_config(run_dir)
    changes = runs.settings_changes(recorded, asked, state.epochs_done)
    if changes:
        raise ValueError(f"{run_dir} was trained with other settings; resuming would mix them. Differences "
                         "(setting: recorded → asked):\n  " + "\n  ".join(changes) + "\nResume with the "
                         "recorded settings (only more epochs, the device and progress may change), or train "
                         "into another output folder")
    merged = {**recorded, **{k: v for k, v in asked.items() if k != "environment"},
              "train": {**recorded.get("train", {}), **asked["train"]}}
    if write and json.loads(json.dumps(merged, default=runs._jsonable)) != recorded:
        runs.atomic_write_json(run_dir / runs.CONFIG, merged)  # more epochs, new keys, device: as run now
    if state.finish_with_best(config.epochs) and write:  # killed after these epochs but meant to train longer:
        state.save(run_dir / runs.CHECKPOINT)  # the selected epoch's weights, as a run that ended here
    model.load_state_dict(state.resume_weights(config.epochs))
    stepper.load_state_dict(state.stepper_state)
    _set_rng_states(state)
    objective.generator.set_state(state.objective_rng.cpu())  # generator states are CPU tensors wherever loaded
    objective.calls = state.objective_calls
    if write:
        runs.atomic_write_json(run_dir / runs.HISTORY, state.history)
        runs.atomic_write_json(run_dir / runs.STEPS, state.steps)
    return state


def train_epoch(model: nn.Module, objective: Objective, train_set: Dataset, config: TrainConfig, stepper: Stepper,
                epoch: int, *, step: int, device: torch.device, steps_log: list[dict[str, Any]],
                cluster: distributed.DataParallel | None = None, progress: bool = False,
                num_outputs: int | None = None, drop_single: bool = False) -> tuple[dict[str, Any], int]:
    """One pass over ``train_set`` in the seeded order of ``(config.seed, epoch)``.

    Args:
        model, objective, stepper: the model, what it minimises, and its optimiser step.
        train_set: yields ``(x, y, extras)``; integer labels of another dtype than int64 are converted.
        config: batch size, seed, ``log_every``.
        epoch: the epoch, counted from 0.
        step: optimiser steps taken before this epoch.
        device: where the batches go.
        steps_log: the logged steps (every ``config.log_every``-th from the first) are appended here.
        cluster: under torchrun, the distributed side of the run (global batches, reductions).
        progress: show a progress bar.
        num_outputs: the model's number of logits; each batch's labels are checked against it.
        drop_single: leave out a last batch of one example (a model with BatchNorm cannot train on it).

    Returns:
        ``(record, step)``: the epoch's record (``epoch`` from 1, the mean of each objective term as
        ``train_NAME``, ``train_accuracy``, wall-clock ``seconds``) and the steps taken so far.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
        ValueError: a label is not one of the ``num_outputs`` classes.
    """
    stepper.train_mode(model)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    correct = seen = 0
    started = time.perf_counter()
    if cluster is not None:
        batches, total = (cluster.batches(train_set, config.batch_size, seed=config.seed, epoch=epoch, device=device),
                          cluster.num_batches(train_set, config.batch_size))
    else:
        batches = iterate_batches(train_set, config.batch_size, seed=config.seed, epoch=epoch, device=device,
                                  drop_single=drop_single)
        total = num_batches(train_set, config.batch_size, drop_single)
    bar = tqdm(batches, total=total,
               desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False, dynamic_ncols=True)
    for x, y, extras in bar:
        if y.dtype != torch.long and not y.is_floating_point() and y.dtype != torch.bool:
            y = y.long()  # int32 / uint8 class indices: cross-entropy needs int64
        if num_outputs is not None and not y.is_floating_point():
            check_labels(y, num_outputs)
        with stepper.autocast():
            out = objective(cluster.forward_model if cluster is not None else model, x, y, **extras)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(
                f"the loss became {float(out.loss)} at epoch {epoch + 1} (terms {out.terms}); lower the "
                "penalty weights or the learning rate. The last good checkpoint is kept in the run folder.")
        stepper.optimizer.zero_grad(set_to_none=True)
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
            steps_log.append({"step": step, "epoch": epoch + 1, **terms})
        bar.set_postfix({k: f"{v / counts[k]:.4g}" for k, v in sums.items()}, refresh=False)
    bar.close()
    stepper.end_epoch()
    record: dict[str, Any] = {"epoch": epoch + 1, **{f"train_{k}": v / counts[k] for k, v in sums.items()},
                              "train_accuracy": correct / max(seen, 1), "seconds": time.perf_counter() - started}
    return record, step


def train(model: nn.Module, objective: Objective | None, train_set: Dataset, test_set: Dataset | None = None, *,
          config: TrainConfig | None = None, val_set: Dataset | None = None, run_dir: str | Path | None = None,
          resume: bool | str = False, run_info: dict[str, Any] | None = None,
          on_epoch_end: EpochCallback | None = None, optimizer: OptimizerLike | None = None,
          scheduler: SchedulerLike | None = None, param_groups: list[dict[str, Any]] | None = None) -> TrainResult:
    """Train ``model`` to minimise ``objective`` (plain cross-entropy when None) on ``train_set``.

    After each epoch: the mean of each objective term, train accuracy, validation and test accuracy,
    a :class:`Checkpoint` (model, optimiser, RNG states, step counter) written atomically into ``run_dir``.
    With ``resume=True`` a run folder's checkpoint is loaded and training continues where it
    stopped; a finished run is returned as it is. Resuming with other settings than the recorded
    ones is refused (a ``ValueError`` listing ``setting: old → new``), except more epochs (the run is
    extended and ``config.json`` updated), the device and the progress bar. ``run_info`` is stored
    in ``config.json`` (dataset, model name, ...); when it does not name the model and ``model`` is
    structurally a registered one, its name is recorded so ``explainreg evaluate`` can rebuild it.
    Runs repeat exactly on CPU for the same ``config.seed``, across resumes too: weights,
    optimiser state, ``history.json`` (but its wall-clock ``seconds``) and ``steps.json``.
    Integer labels of another dtype than int64 are converted.

    Args:
        model: any ``nn.Module`` mapping a batch to logits (a user's DDP or ``nn.DataParallel``
            wrapper is unwrapped).
        objective: an :class:`~explainreg.Objective`; ``None`` for plain cross-entropy.
        train_set, test_set, val_set: data sets yielding ``(x, y, extras)``; ``val_set`` is needed by
            ``config.select="best_val_*"``.
        config: a :class:`TrainConfig` (default ``TrainConfig()``).
        run_dir: a folder for ``config.json``, ``history.json``, ``steps.json``, ``checkpoint.pt`` and
            ``train.log`` (``None``: nothing written).
        resume: ``True``: continue the run in ``run_dir`` (a folder without a run is refused: a typo
            would start a new run); ``"auto"``: continue it when there is one, else start one;
            ``False``: start a run (a folder that already holds one is refused).
        run_info: extra entries for ``config.json``.
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after each epoch (epoch from 1).
        optimizer: a ``torch.optim.Optimizer`` for ``model``'s parameters, or a factory
            ``params -> optimizer`` (given the trainable parameters or ``param_groups``); default: the
            one ``config.optimizer`` names.
        scheduler: an LR scheduler or a factory ``optimizer -> scheduler``, stepped per
            ``config.scheduler_interval``.
        param_groups: torch parameter groups whose ``params`` may be a submodule name.
            ``config.freeze`` / ``grad_clip`` / ``amp``: frozen submodules, gradient-norm clipping,
            float16 mixed precision on CUDA (see ``training.optim``). The optimiser's and
            scheduler's states are checkpointed and restored on resume.

    Returns:
        A :class:`TrainResult`: ``history`` (one record per epoch), ``steps``, ``best_epoch`` and
        ``final`` (the selected epoch's record); ``model`` holds the selected weights.

    Raises:
        ValueError: an empty data set, a training set of one class, labels beyond the model's
            outputs, a model without trainable parameters or on the meta device, other settings
            than the recorded ones on resume, a penalty given masks that the training set states
            to mark the other meaning (:meth:`~explainreg.objective.Objective.check_masks`; an
            objective with ``mask_convert="complement"`` trains on their complement instead).
        FileNotFoundError: ``resume=True`` on a folder that holds no run.
        FileExistsError: ``resume=False`` on a folder that holds a run.
        explainreg.runs.RunBusyError: another training writes into ``run_dir``.
        OSError: a run file could not be written (full disk): the previous checkpoint is kept.

    A model with BatchNorm whose last batch of an epoch would hold one example leaves that batch out
    (with a warning). The run folder is locked while the training runs (:class:`~explainreg.runs.RunLock`).

    Example::

        >>> import torch
        >>> from explainreg.data import ArrayDataset
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> x = torch.randn(64, 2)
        >>> data = ArrayDataset(x, (x[:, 0] > 0).long())
        >>> net = torch.nn.Linear(2, 2)
        >>> result = train(net, None, data, data, config=TrainConfig(epochs=3, batch_size=16, lr=0.1, progress=False))
        >>> [r["epoch"] for r in result.history], result.final["test_accuracy"] > 0.9
        ([1, 2, 3], True)
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if resume not in (False, True, "auto"):
        raise ValueError(f"resume must be False (start a run), True (continue the run in run_dir) or 'auto' "
                         f"(continue it when there is one, else start one), got {resume!r}")
    objective = objective if objective is not None else Objective()
    # a penalty given a mask of the other stated meaning is refused here, before anything runs
    objective.check_masks(stated_mask_meanings(train_set), source=f"train_set ({getattr(train_set, 'name', 'data')})")
    model = unwrap_parallel(model)  # a user's DDP / DataParallel wrapper: train (and checkpoint) the module inside
    _check_data(train_set, val_set, test_set)
    info = _run_info(model, train_set, test_set, run_info) if run_dir is not None else {}
    if config.select != "last" and val_set is None:
        raise ValueError(f"select={config.select!r} needs a validation set: pass val_set=...")
    device = resolve_device(config.device)
    _check_not_meta(model)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"run_dir {run_dir} is an existing file, not a folder; choose another output folder")
    if resume is True:
        _check_resumable(run_dir)
    if distributed.wanted():  # torchrun: one global batch split over the ranks (training/distributed.py)
        device = distributed.init_from_env(device)
    model.to(device)
    objective.to(device)
    stepper = Stepper(model, config, device, optimizer, scheduler, param_groups)
    num_outputs = _check_label_range(model, train_set, {"train_set": train_set, "val_set": val_set,
                                                        "test_set": test_set}, device)
    main_process = world()[0] == 0
    with contextlib.ExitStack() as stack:
        lock = stack.enter_context(runs.RunLock(run_dir)) if run_dir is not None and main_process else None
        log = _logger(run_dir if main_process else None)
        stack.callback(_close, log)
        if lock is not None and lock.note:
            log.info(lock.note)
        return _fit(model, objective, train_set, test_set, val_set, config, stepper, device, run_dir,
                    resume=bool(resume), info=info, log=log, on_epoch_end=on_epoch_end, num_outputs=num_outputs)


def _fit(model: nn.Module, objective: Objective, train_set: Dataset, test_set: Dataset | None,
         val_set: Dataset | None, config: TrainConfig, stepper: Stepper, device: torch.device, run_dir: Path | None, *,
         resume: bool, info: dict[str, Any], log: logging.Logger, on_epoch_end: EpochCallback | None,
         num_outputs: int | None) -> TrainResult:
    """The body of :func:`train` once the run folder is locked: restore or start, then the epochs."""
    cluster = distributed.DataParallel(model, objective, device) if distributed.wanted() else None
    if cluster is not None:
        stepper.after_backward.append(cluster.sync_gradients)
    main_process = world()[0] == 0
    result = TrainResult(run_dir=run_dir)
    selection = Selection(config.select, config.patience)
    start_epoch = step = 0
    _seed_all(config.seed)
    drop_single = _drop_single_batch(model, train_set, config, log)

    if run_dir is not None and main_process:
        runs.clean_temporary(run_dir)  # left by a killed process; nothing reads them
    asked = {**info, "train": config.to_dict(), "objective": objective.config(), "objective_seed": objective.seed,
             "device": str(device), "environment": runs.environment()}
    if run_dir is not None and (run_dir / runs.CHECKPOINT).is_file():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
                                  "or choose another output folder")
        state = restore(run_dir, model, objective, stepper, config, asked, device, write=main_process)
        result.history, result.steps, result.best_epoch = state.history, state.steps, state.best_epoch
        selection = Selection.resumed(config, state)
        start_epoch = state.epochs_done
        # checkpoints before 0.x lack "step": every epoch has the same number of batches
        step = state.step if state.step is not None else \
            start_epoch * num_batches(train_set, config.batch_size, drop_single)
        if state.stopped_early or start_epoch >= config.epochs:
            log.info("run already finished; nothing to do")
            return result
        log.info(f"resuming from epoch {start_epoch}")
    elif run_dir is not None and main_process:
        if resume:
            log.info("resume: no epoch of this run had finished (no checkpoint); starting it from epoch 1")
        runs.atomic_write_json(run_dir / runs.CONFIG, asked)

    for epoch in range(start_epoch, config.epochs):
        record, step = train_epoch(model, objective, train_set, config, stepper, epoch, step=step, device=device,
                                   steps_log=result.steps, cluster=cluster, progress=config.progress and main_process,
                                   num_outputs=num_outputs, drop_single=drop_single)
        for name, data in (("val", val_set), ("test", test_set)):
            if data is not None:
                metrics = evaluate(model, data, config.eval_batch_size, device)
                record.update({f"{name}_accuracy": metrics["accuracy"], f"{name}_loss": metrics["loss"]})
        result.history.append(record)
        log.info(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))

        stop = selection.update(record, model)
        result.best_epoch = selection.best_epoch
        finished = stop or epoch + 1 == config.epochs
        last_model = selection.apply(model) if finished else None  # a longer run later continues from these
        if run_dir is not None and main_process:
            Checkpoint(model=model.state_dict(), **stepper.state_dict(), epoch=epoch, step=step, last_model=last_model,
                       **_rng_states(), objective_rng=objective.generator.get_state(), objective_calls=objective.calls,
                       history=result.history, steps=result.steps, best_state=selection.best_state,
                       best_score=selection.best_score, best_epoch=selection.best_epoch, stale=selection.stale,
                       finished=finished, stopped_early=stop).save(run_dir / runs.CHECKPOINT)
            runs.atomic_write_json(run_dir / runs.HISTORY, result.history)
            runs.atomic_write_json(run_dir / runs.STEPS, result.steps)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
        if stop:
            log.info(f"early stop after epoch {epoch + 1}: no improvement for {selection.stale} epochs")
            break
    return result


def _seed_all(seed: int) -> None:
    """Seed torch's, Python's and NumPy's global generators (a user's model or data may draw from any)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _rng_states() -> dict[str, Any]:
    """The global generators' states, as :class:`Checkpoint` keeps them."""
    return {"rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "python_rng": random.getstate(), "numpy_rng": np.random.get_state()}


def _set_rng_states(state: Checkpoint) -> None:
    """Put the global generators back as ``state`` saved them (those it has: older checkpoints lack some)."""
    if state.rng is not None:
        torch.set_rng_state(state.rng.cpu())
    if torch.cuda.is_available() and state.cuda_rng is not None:
        torch.cuda.set_rng_state_all([s.cpu() for s in state.cuda_rng])
    if state.python_rng is not None:
        random.setstate(state.python_rng)
    if state.numpy_rng is not None:
        np.random.set_state(state.numpy_rng)


def _labels(dataset: Dataset) -> torch.Tensor | None:
    """All labels of ``dataset`` when it holds them (``y``, an image folder's samples, ``targets``),
    else None (they are not read by loading every example)."""
    y = getattr(dataset, "y", None)
    if isinstance(y, torch.Tensor):
        return y
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and samples and all(isinstance(getattr(s, "label", None), int) for s in samples):
        return torch.tensor([s.label for s in samples])
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, (list, torch.Tensor)) and len(targets):
        try:
            return torch.as_tensor(targets)
        except (TypeError, ValueError):
            return None
    return None


def _check_data(train_set: Dataset, val_set: Dataset | None, test_set: Dataset | None) -> None:
    """Refuse data a run cannot learn from or be measured on: an empty set, a training set of one
    class, tensors on the meta device."""
    for name, data in (("train_set", train_set), ("val_set", val_set), ("test_set", test_set)):
        if data is None:
            continue
        x = getattr(data, "x", None)
        if isinstance(x, torch.Tensor) and x.is_meta:
            raise ValueError(f"{name} holds tensors on the meta device (shapes without values); load the data "
                             "onto the CPU (or build it there) before training")
        if len(data) == 0:
            what = {"train_set": "training would take 0 steps and leave the model as it is",
                    "val_set": "its accuracy would be recorded as 0.0 and the epochs selected on it",
                    "test_set": "its accuracy would be recorded as 0.0"}[name]
            without = "" if name == "train_set" else f", or pass {name}=None to go without it"
            raise ValueError(f"{name} is empty (0 examples): {what}. Check the data path, the split and the "
                             f"limit{without}")
    labels = _labels(train_set)
    if labels is not None and not labels.is_floating_point() and labels.numel():
        classes = torch.unique(labels)
        if len(classes) < 2:
            names = getattr(train_set, "classes", None)
            which = f"{int(classes[0])}" + (f" = {names[int(classes[0])]!r}" if names else "")
            raise ValueError(f"train_set has examples of one class only (label {which}, {len(labels)} examples): a "
                             "classifier learns nothing from it (cross-entropy 0 and accuracy 100 % at once). Give "
                             "it at least two classes (an image folder: one sub-folder of images per class)")


def _check_not_meta(model: nn.Module) -> None:
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise ValueError(f"{type(model).__name__} has parameters on the meta device (shapes without values), so it "
                         "cannot be trained: materialise it first, e.g. model.to_empty(device='cpu') and then "
                         "initialise it or load a state dict (model.load_state_dict(state, assign=True))")


def _check_resumable(run_dir: Path | None) -> None:
    """``resume=True`` needs a run in ``run_dir`` (its checkpoint, or the config of a run that had not
    finished an epoch): else a clear error, naming run folders with a close name."""
    if run_dir is None:
        raise ValueError("resume=True needs run_dir, the folder of the run to continue")
    if (run_dir / runs.CHECKPOINT).is_file() or (run_dir / runs.CONFIG).is_file():
        return
    parent = run_dir.parent
    runs_there = [p.name for p in parent.iterdir() if (p / runs.CHECKPOINT).is_file()] if parent.is_dir() else []
    close = difflib.get_close_matches(run_dir.name, runs_there, n=3, cutoff=0.6)
    hint = f" Run folders with a close name: {', '.join(str(parent / c) for c in close)}." if close else ""
    state = "does not exist" if not run_dir.exists() else f"holds no run (no {runs.CHECKPOINT}, no {runs.CONFIG})"
    raise FileNotFoundError(f"cannot resume: {run_dir} {state}.{hint} To start a new run there, drop --resume "
                            "(resume=False); to continue a run, give its folder")


def _check_label_range(model: nn.Module, train_set: Dataset, sets: dict[str, Dataset | None],
                       device: torch.device) -> int | None:
    """The model's number of outputs K (a forward of one training example, in eval mode, without
    touching any generator), after checking that every label the data sets hold is below K.
    None when the model's output is not B×K logits (its own error comes in training)."""
    try:
        batch = torch.utils.data.default_collate([train_set[0]]) if not callable(getattr(train_set, "batch", None)) \
            else train_set.batch(torch.arange(1), device)
        x = batch[0].to(device)
        was_training = model.training
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            model.eval()
            try:
                logits = model(x)
            finally:
                model.train(was_training)
    except Exception:  # the model or data do not fit: training raises the model's own error
        return None
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        return None
    k = logits.shape[1]
    for name, data in sets.items():
        labels = _labels(data) if data is not None else None
        if labels is None or labels.is_floating_point() or not labels.numel():
            continue
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= k:
            raise ValueError(f"{name} has labels from {low} to {high}, but the model gives {k} outputs (classes 0 to "
                             f"{k - 1}): build the model with num_classes={max(high + 1, k)} (or --model-kwargs "
                             f"'{{\"num_classes\": {max(high + 1, k)}}}'), or fix the labels")
    return k


def _drop_single_batch(model: nn.Module, train_set: Dataset, config: TrainConfig, log: logging.Logger) -> bool:
    """Whether to leave out each epoch's last batch because it would hold one example and ``model``
    has BatchNorm (which cannot normalise one value per channel); says so in the log and a warning."""
    has_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    _, world_size = world()
    if not has_norm or world_size > 1 or len(train_set) % config.batch_size != 1:
        return False
    n, size = len(train_set), config.batch_size
    others = [b for d in range(1, size) for b in (size + d, size - d) if b > 1 and n % b != 1][:2]
    note = (f"the last batch of each epoch would hold 1 example ({n} = {n // size} × {size} + 1) and BatchNorm "
            "cannot train on one example: it is left out (another example each epoch, the order being shuffled)"
            + (f". To use every example, choose batch_size={' or '.join(map(str, others))}" if others else ""))
    log.info(note)
    warnings.warn(note, stacklevel=3)
    return True


def _close(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def _run_info(model: nn.Module, train_set: Dataset, test_set: Dataset | None,
              run_info: dict[str, Any] | None) -> dict[str, Any]:
    """``run_info`` completed with what ``explainreg evaluate`` needs to rebuild the model and data:
    the registered model's name (when ``model`` is one), the data set's name and sources."""
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
