"""The optimisation pieces of a training run: optimiser (object, factory or name), scheduler,
parameter groups, frozen modules, gradient clipping and mixed precision (CUDA).

:class:`Stepper` holds them for the loop: ``stepper.backward_and_step(loss)`` is

    scaler.scale(loss).backward();  unscale;  clip ‖∇θ‖₂ ≤ grad_clip;  optimizer.step();  scheduler.step()

with the scaler a no-op unless ``amp`` on CUDA, and the scheduler stepped every batch
(``scheduler_interval="step"``) or once per epoch (``"epoch"``, after the epoch's last batch).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = ["OptimizerLike", "SchedulerLike", "Stepper", "freeze", "parameter_groups"]

OptimizerLike = torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer]
SchedulerLike = Any  # an LRScheduler / ReduceLROnPlateau-free scheduler object, or optimizer -> scheduler


def freeze(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Stop training the submodules ``names`` of ``model`` (qualified names, e.g. ``"layer1"``,
    ``"features.0"``): ``requires_grad = False`` on their parameters. Returns the frozen parameter names.
    Their BatchNorm/Dropout are kept in eval mode by :meth:`Stepper.train_mode`."""
    modules = dict(model.named_modules())
    frozen = []
    for name in names:
        if name not in modules or name == "":
            raise ValueError(f"freeze: {name!r} is not a submodule of {type(model).__name__}; use one of "
                             f"{', '.join(n for n in modules if n and '.' not in n)} (or a dotted deeper name)")
        for pname, p in modules[name].named_parameters():
            p.requires_grad_(False)
            frozen.append(f"{name}.{pname}")
    return frozen


def parameter_groups(model: nn.Module, groups: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]] | list:
    """torch parameter groups, where ``params`` may also be a submodule name (``{"params": "fc",
    "lr": 1e-2}``); parameters not named by any group form a last group with the defaults.
    Frozen (``requires_grad=False``) parameters are left out. ``None``: all trainable parameters."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if groups is None:
        return trainable
    modules = dict(model.named_modules())
    seen: set[int] = set()
    out = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"param_groups[{i}] must be a dict with 'params' (tensors or a submodule name), "
                            f"got {group!r}")
        params = group["params"]
        if isinstance(params, str):
            if params not in modules:
                raise ValueError(f"param_groups[{i}]: {params!r} is not a submodule of {type(model).__name__}")
            params = list(modules[params].parameters())
        params = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        out.append({**group, "params": params})
    rest = [p for p in trainable if id(p) not in seen]
    if rest:
        out.append({"params": rest})
    return out


class Stepper:
    """Optimiser, scheduler, gradient scaler and clipping for one run (see the module doc).

    Args:
        model: the model being trained (already on ``device``).
        config: a :class:`~explainreg.training.TrainConfig` (``optimizer``/``lr``/... when no
            optimiser is given; ``grad_clip``, ``freeze``, ``amp``, ``scheduler_interval``).
        optimizer: an optimiser object, or a factory ``params -> optimiser`` (given the parameter
            groups), or ``None`` to build ``config.optimizer``.
        scheduler: a scheduler object, or a factory ``optimizer -> scheduler``, or ``None``.
        param_groups: see :func:`parameter_groups`.
    """

    def __init__(self, model: nn.Module, config: Any, device: torch.device,
                 optimizer: OptimizerLike | None = None, scheduler: SchedulerLike | None = None,
                 param_groups: Sequence[dict[str, Any]] | None = None) -> None:
        self.frozen_modules = tuple(getattr(config, "freeze", ()) or ())
        self.frozen = freeze(model, self.frozen_modules)
        if not any(p.requires_grad for p in model.parameters()):
            frozen = f" (freeze={list(self.frozen_modules)})" if self.frozen_modules else ""
            raise ValueError(f"{type(model).__name__} has no trainable parameters: every parameter has requires_grad="
                             f"False{frozen}, so training would change nothing. Unfreeze the layers to train "
                             "(p.requires_grad_(True), a shorter freeze / --freeze list), or use "
                             "explainreg.training.evaluate for a fixed model")
        groups = parameter_groups(model, param_groups)
        if isinstance(optimizer, torch.optim.Optimizer):
            if param_groups is not None:
                raise ValueError("param_groups are for optimisers built here: give an optimizer factory "
                                 "(params -> optimizer) or put the groups into your optimizer object")
            self.optimizer = optimizer
        elif optimizer is None:
            self.optimizer = config.build_optimizer(groups)
        elif callable(optimizer):
            self.optimizer = optimizer(groups)
            if not isinstance(self.optimizer, torch.optim.Optimizer):
                raise TypeError(f"the optimizer factory returned {type(self.optimizer).__name__}, not a "
                                "torch.optim.Optimizer")
        else:
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, a factory params -> optimizer or None, "
                            f"got {type(optimizer).__name__}")
        if scheduler is not None and not hasattr(scheduler, "step"):
            scheduler = scheduler(self.optimizer)
        if scheduler is not None and not hasattr(scheduler, "step"):
            raise TypeError(f"scheduler must have .step() (a torch.optim.lr_scheduler object) or be a factory "
                            f"optimizer -> scheduler, got {type(scheduler).__name__}")
        self.scheduler = scheduler
        self.interval = getattr(config, "scheduler_interval", "epoch")
        self.grad_clip = getattr(config, "grad_clip", None)
        amp = bool(getattr(config, "amp", False))
        if amp and device.type != "cuda":
            raise ValueError(f"amp=True (mixed precision) needs a CUDA device, got {device}; drop amp on CPU")
        self.amp = amp
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.last_grad_norm: float | None = None
        #: called after each backward, before clipping and the step (e.g. the distributed gradient all-reduce)
        self.after_backward: list[Callable[[], None]] = []

    def train_mode(self, model: nn.Module) -> None:
        """``model.train()`` with the frozen modules kept in eval mode (BatchNorm statistics fixed)."""
        model.train()
        modules = dict(model.named_modules())
        for name in self.frozen_modules:
            modules[name].eval()

    def autocast(self) -> contextlib.AbstractContextManager:
        """float16 autocast on CUDA when ``amp``; otherwise nothing."""
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def params(self) -> Iterable[torch.Tensor]:
        for group in self.optimizer.param_groups:
            yield from group["params"]

    def backward_and_step(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (zero the gradients before), clip, step the optimiser (and a
        per-step scheduler)."""
        self.scaler.scale(loss).backward()
        for hook in self.after_backward:
            hook()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_([p for p in self.params() if p.grad is not None], self.grad_clip)
            self.last_grad_norm = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def end_epoch(self) -> None:
        if self.scheduler is not None and self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.amp else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.amp and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
