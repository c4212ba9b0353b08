"""Module state during the extra passes an explanation makes: eval mode, frozen BatchNorm
statistics, deterministic dropout. Each context manager restores what it changed.

Penalties run extra forward passes on perturbed inputs (Fidelity's masked copy, Symmetry's rotated
one, expected gradients' interpolations, SGT's masked copy, contextual decomposition). In training
mode those passes would update BatchNorm running statistics with statistics of inputs that are not
training data; :func:`frozen_norm_statistics` keeps them as they were.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase,)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm / InstanceNorm layers of ``model`` that track running statistics.

    Args:
        model: any module.

    Shape:
        (no tensors)

    Returns:
        A list of modules.

    Example::

    >>> from torch import nn; from explainreg.modes import norm_layers
    >>> norm_layers(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.InstanceNorm2d(2)))
    [BatchNorm2d(2, ...)]
    """
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
    """Dropout layers in eval mode (identity) while the block runs; every other module untouched.

    Args:
        model: any module.

    Shape:
        (no tensors)

    Returns:
        A context manager yielding ``model``; the dropout layers' modes are restored after.

    Example::

    >>> import torch; from torch import nn; from explainreg.modes import deterministic_dropout
    >>> m = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2)).train()
    >>> with deterministic_dropout(m):
    ...     m[0].training, m[1].training
    (False, True)
    >>> m[0].training
    True
    """
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
    """The whole model in eval mode while the block runs; each module's own mode restored after.

    Args:
        model: any module.

    Shape:
        (no tensors)

    Returns:
        A context manager yielding ``model``.

    Example::

    >>> from torch import nn; from explainreg.modes import eval_mode
    >>> m = nn.Sequential(nn.Dropout(), nn.Linear(2, 2)); m[1].eval()
    Linear(in_features=2, out_features=2, bias=True)
    >>> with eval_mode(m):
    ...     m.training
    False
    >>> m.training, m[1].training
    (True, False)
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without either).

    Args:
        model: any module.

    Shape:
        (no tensors)

    Returns:
        A ``torch.device``.

    Example::

    >>> from torch import nn; from explainreg.modes import model_device
    >>> model_device(nn.Linear(2, 2)), model_device(nn.ReLU())
    (device(type='cpu'), device(type='cpu'))
    """
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


_WARNED: set[int] = set()


def warn_batch_norm_mixing(model: nn.Module) -> None:
    """Warn once per model that one-pass saliency mixes samples through training-mode BatchNorm.

    Args:
        model: the model about to be explained in one backward pass.

    Shape:
        (no tensors)

    Returns:
        None (a ``UserWarning`` the first time, if a norm layer is in training mode).

    Example::

    >>> import warnings; from torch import nn; from explainreg.modes import warn_batch_norm_mixing
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_batch_norm_mixing(nn.BatchNorm1d(2)); warn_batch_norm_mixing(nn.BatchNorm1d(2).eval())
    >>> len(caught)
    1
    """
    if id(model) in _WARNED or not any(m.training for m in norm_layers(model)):
        return
    _WARNED.add(id(model))
    warnings.warn(
        f"{type(model).__name__} has BatchNorm layers in training mode: the batch's saliency is taken in one "
        "backward pass, and training-mode BatchNorm couples the samples (each image's saliency then depends on "
        "the rest of the batch it is in). "
        "For per-sample saliency use BatchNorm in eval mode for the explanation (model.eval() around it, or "
        "explainreg.modes.eval_mode) or per-sample gradients with torch.func",
        UserWarning, stacklevel=3)


def unwrap_parallel(model: nn.Module) -> nn.Module:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers, else ``model``:
    CD decomposes, and the trainer trains and checkpoints, the network itself (the wrapper only splits
    the batch across devices; parameters are then named without the ``module.`` prefix).

    Example::

        >>> net = nn.Linear(2, 2)
        >>> unwrap_parallel(nn.DataParallel(nn.DataParallel(net))) is net
        True
    """
    from torch.nn.parallel import DistributedDataParallel

    while isinstance(model, (nn.DataParallel, DistributedDataParallel)):
        model = model.module
    return model


__all__ = ["deterministic_dropout", "eval_mode", "frozen_norm_statistics", "model_device", "norm_layers",
           "unwrap_parallel", "warn_batch_norm_mixing"]
