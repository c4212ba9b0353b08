"""Which epoch's weights a training run returns, and when it stops early: :class:`Selection`."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from .checkpoint import Checkpoint
from .config import TrainConfig

__all__ = ["Selection"]


@dataclass
class Selection:
    """Which epoch's weights a run returns, and when it stops early.

    ``rule`` ``"last"`` keeps the last epoch; ``"best_val_accuracy"`` / ``"best_val_loss"`` keep the
    epoch with the highest validation accuracy / the lowest validation loss (the first of equals),
    and stop after ``patience`` epochs without improvement (never when ``patience`` is None).

    Example::

        >>> import torch
        >>> net = torch.nn.Linear(1, 1)
        >>> rule = Selection("best_val_accuracy", patience=0)
        >>> rule.update({"epoch": 1, "val_accuracy": 0.9}, net), rule.update({"epoch": 2, "val_accuracy": 0.8}, net)
        (False, True)
        >>> rule.best_epoch
        1
    """

    rule: str = "last"
    patience: int | None = None
    best_state: dict[str, Any] | None = None
    best_score: float = -math.inf
    best_epoch: int | None = None
    stale: int = 0

    def update(self, record: dict[str, Any], model: nn.Module) -> bool:
        """Score the epoch of ``record`` (its ``epoch``, ``val_accuracy`` or ``val_loss``), keep a copy
        of ``model``'s weights when it is the best so far; returns whether to stop early."""
        if self.rule == "last":
            return False
        score = record["val_accuracy"] if self.rule == "best_val_accuracy" else -record["val_loss"]
        if score > self.best_score:
            self.best_score, self.stale, self.best_epoch = score, 0, record["epoch"]
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.stale += 1
        return self.patience is not None and self.stale > self.patience

    def apply(self, model: nn.Module) -> dict[str, Any] | None:
        """At the end of a run: load the best weights into ``model``; returns the last epoch's
        weights they replaced (``None`` when nothing was selected)."""
        if self.best_state is None:
            return None
        last = copy.deepcopy(model.state_dict())
        model.load_state_dict(self.best_state)
        return last

    @classmethod
    def resumed(cls, config: TrainConfig, state: Checkpoint) -> Selection:
        """The rule of ``config`` with the selection state saved in ``state``."""
        return cls(config.select, config.patience, state.best_state, state.best_score, state.best_epoch, state.stale)
