"""A run's checkpoint as one typed object: :class:`Checkpoint`, saved and loaded atomically.

On disk a checkpoint stays the plain ``dict`` that ``torch.load`` returns (``state["model"]`` is
the state dict), so files written before this type existed load into it, and the files it writes
load in older code. Entries this version does not know are kept in :attr:`Checkpoint.extra` and
written back unchanged.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from .. import runs

__all__ = ["Checkpoint"]


@dataclass
class Checkpoint:
    """Everything a resumed run needs, written after each epoch by :func:`~explainreg.training.train`.

    Args:
        model: the model's state dict after the epoch (the selected epoch's once the run finished).
        epoch: the last epoch trained, counted from 0 (``-1``: none yet).
        step: optimiser steps taken so far (``None`` in checkpoints older than the counter).
        optimizer, scheduler, scaler: the state dicts of the optimiser, the LR scheduler and the
            mixed-precision gradient scaler (``None`` where there is none).
        last_model: the last epoch's weights when ``model`` holds the selected (best) epoch's;
            a longer run later continues from these.
        rng, cuda_rng: torch's CPU and CUDA generator states.
        python_rng, numpy_rng: the states of Python's ``random`` and NumPy's global generator (a
            user's model or data set may draw from them).
        objective_rng, objective_calls: the objective's generator state and its call counter.
        history, steps: the per-epoch records and the logged steps (``history.json``, ``steps.json``).
        best_state, best_score, best_epoch, stale: the best-epoch selection's state
            (see :class:`~explainreg.training.loop.Selection`).
        finished: the run has trained all its epochs (or stopped early).
        stopped_early: the patience rule ended the run.
        extra: entries of the file that this version does not know (kept as they are).

    Example::

        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "checkpoint.pt"
        >>> Checkpoint(model={"w": torch.ones(2)}, epoch=0, history=[{"epoch": 1}]).save(path)
        >>> state = Checkpoint.load(path)
        >>> state.epochs_done, state.model["w"].tolist(), torch.load(path, weights_only=False)["epoch"]
        (1, [1.0, 1.0], 0)
    """

    model: dict[str, Any]
    epoch: int = -1
    step: int | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    last_model: dict[str, Any] | None = None
    rng: torch.Tensor | None = None
    cuda_rng: list[torch.Tensor] | None = None
    python_rng: tuple | None = None
    numpy_rng: tuple | None = None
    objective_rng: torch.Tensor | None = None
    objective_calls: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, Any] | None = None
    best_score: float = -math.inf
    best_epoch: int | None = None
    stale: int = 0
    finished: bool = False
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        """How many epochs the checkpoint has trained."""
        return self.epoch + 1

    @property
    def stepper_state(self) -> dict[str, Any]:
        """The optimiser, scheduler and scaler states, as ``training.optim.Stepper.load_state_dict`` takes them."""
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def resume_weights(self, epochs: int) -> dict[str, Any]:
        """The weights a run of ``epochs`` epochs continues from: the saved (selected) ones when the
        run is complete or stopped early, else the last epoch's (a longer run goes on from there)."""
        if self.epochs_done >= epochs or self.stopped_early or self.last_model is None:
            return self.model
        return self.last_model

    def finish_with_best(self, epochs: int) -> bool:
        """Mark a run that was stopped (killed) after ``epochs`` or more epochs, but was meant to train
        longer, as finished, with the best-on-validation weights as its model and the last epoch's
        as :attr:`last_model`: as a run that ended at ``epochs`` would be (a later, longer run goes
        on from the last epoch). Returns whether anything changed (nothing when already finished,
        short of ``epochs``, or without a selection)."""
        if self.finished or len(self.history) < epochs or self.best_state is None:
            return False
        self.model, self.last_model, self.finished = self.best_state, self.model, True
        return True

    def to_dict(self) -> dict[str, Any]:
        """The on-disk form: a plain dict (``last_model`` only when set), unknown entries included."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        if out["last_model"] is None:
            del out["last_model"]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Checkpoint:
        """A checkpoint from its on-disk dict; entries missing in older files take their defaults.

        Raises:
            runs.DamagedRunError: ``state`` has no ``"model"`` entry.
        """
        if not isinstance(state, dict) or "model" not in state:
            raise runs.DamagedRunError("not an explainreg checkpoint (no 'model' entry); it should be written by "
                                       "explainreg.training.train(..., run_dir=...)")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in state.items() if k in known},
                   extra={k: v for k, v in state.items() if k not in known})

    def save(self, path: str | os.PathLike) -> None:
        """``torch.save`` of :meth:`to_dict`, written atomically (readers see the old file or the new one)."""
        runs.atomic_save(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
        """The checkpoint in ``path``, tensors on ``device``.

        Raises:
            runs.DamagedRunError: the file is truncated or corrupted, or not a checkpoint.
            FileNotFoundError: there is no file.
        """
        return cls.from_dict(runs.load_checkpoint(path, device))
