"""Module state during the extra passes an explanation makes: eval mode, frozen BatchNorm
statistics, deterministic dropout. Each context manager restores what it changed.

Penalties run extra forward passes on perturbed inputs (Fidelity's masked copy, Symmetry's rotated
one, expected gradients' interpolations, SGT's masked copy, contextual decomposition). In training
mode those passes would update BatchNorm running statistics with statistics of inputs that are not
training data; :func:`frozen_norm_statistics` keeps them as they were (methods.md A.6).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase,)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm / InstanceNorm layers that track running statistics."""
    return [m for m in model.modules() if isinstance(m, _NORM_TYPES) and m.track_running_stats]


@contextmanager
def frozen_norm_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Run extra forward passes without changing any running mean, variance or batch count.

    Layers in training mode still normalise with the statistics of the batch they see (the forward
    value is unchanged); only the buffers they would update are restored afterwards.

    Example::

        >>> bn = nn.BatchNorm1d(3)
        >>> with frozen_norm_statistics(bn):
        ...     _ = bn(torch.randn(8, 3) + 5)
        >>> float(bn.running_mean.abs().max()), int(bn.num_batches_tracked)
        (0.0, 0)
    """
    names = ("running_mean", "running_var", "num_batches_tracked")
    saved = [(m, {n: getattr(m, n) for n in names if getattr(m, n) is not None})
             for m in norm_layers(model) if m.training]
    # the layers update copies; the originals (which autograd may have saved) are never written to
    for m, originals in saved:
        for n, t in originals.items():
            setattr(m, n, t.clone())
    try:
        yield model
    finally:
        for m, originals in saved:
            for n, t in originals.items():
                setattr(m, n, t)


@contextmanager
def deterministic_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout layers in eval mode (identity) while the block runs; every other module untouched."""
    switched = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for m in switched:
        m.eval()
    try:
        yield model
    finally:
        for m in switched:
            m.train()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The whole model in eval mode while the block runs; each module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without either)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


_WARNED: set[int] = set()


def warn_batch_norm_mixing(model: nn.Module) -> None:
    """Warn once per model that one-pass saliency mixes samples through training-mode BatchNorm."""
    if id(model) in _WARNED or not any(m.training for m in norm_layers(model)):
        return
    _WARNED.add(id(model))
    warnings.warn(
        f"{type(model).__name__} has BatchNorm layers in training mode: the batch's saliency is taken in one "
        "backward pass, and training-mode BatchNorm couples the samples (each image's saliency then depends on "
        "the rest of the batch it is in). "
        "For per-sample saliency use BatchNorm in eval mode for the explanation (model.eval() around it, or "
        "explainreg.modes.eval_mode) or per-sample gradients with torch.func. (methods.md A.1)",
        UserWarning, stacklevel=3)


__all__ = ["deterministic_dropout", "eval_mode", "frozen_norm_statistics", "model_device", "norm_layers",
           "warn_batch_norm_mixing"]
