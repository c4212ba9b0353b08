"""Training settings (defaults: the seed's Adam, lr 1e-3, batch 30, 8 epochs)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from .._validation import check_choice, check_int, check_number, check_range

__all__ = ["OPTIMIZERS", "SELECTIONS", "TrainConfig", "resolve_device"]

OPTIMIZERS = ("adam", "adadelta", "sgd")
SELECTIONS = ("last", "best_val_loss", "best_val_accuracy")


@dataclass
class TrainConfig:
    """How to train. ``select`` picks the returned weights (``best_val_*`` needs a validation set);
    ``patience`` stops after that many epochs without improvement of the selection metric."""

    epochs: int = 8
    batch_size: int = 30
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0
    device: str | None = None
    patience: int | None = None
    select: str = "last"
    eval_batch_size: int = 1000
    log_every: int = 50
    progress: bool = True
    #: clip the global L2 norm of the gradients to this value (None: no clipping)
    grad_clip: float | None = None
    #: qualified names of submodules not to train (requires_grad off, kept in eval mode)
    freeze: tuple[str, ...] = ()
    #: float16 autocast + gradient scaling; CUDA only
    amp: bool = False
    #: when a scheduler passed to train() steps: "epoch" (after each epoch) or "step" (every batch)
    scheduler_interval: str = "epoch"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed", "eval_batch_size", "log_every"):
            check_int(name, getattr(self, name))
        if self.patience is not None:
            check_int("patience", self.patience)
        for name in ("lr", "weight_decay", "momentum"):
            check_number(name, getattr(self, name))
        check_range("epochs", self.epochs, 1)
        check_range("eval_batch_size", self.eval_batch_size, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("lr", self.lr, 0, None, low_open=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("select", self.select, SELECTIONS)
        if self.grad_clip is not None:
            check_range("grad_clip", self.grad_clip, 0, None, low_open=True)
        if isinstance(self.freeze, str):
            self.freeze = (self.freeze,)
        self.freeze = tuple(self.freeze)
        check_choice("scheduler_interval", self.scheduler_interval, ("epoch", "step"))
        if self.patience is not None:
            check_range("patience", self.patience, 0)
        check_range("log_every", self.log_every, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def build_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adadelta":
            return torch.optim.Adadelta(parameters, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when present, else CPU; otherwise the named device, checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {device!r} is not a device name; use one of 'auto' (CUDA when present), 'cpu', "
                         "'cuda', 'cuda:N' (the N-th GPU) or 'mps'") from None
    if device.type == "meta":
        raise ValueError("device='meta' holds shapes without values, so nothing can be trained or evaluated on it; "
                         "use 'cpu', 'cuda' or 'auto' (a model built on meta: model.to_empty(device='cpu') and "
                         "initialise or load its weights first)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available here; use device='cpu' or 'auto'")
    return device
