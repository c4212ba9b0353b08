"""MoRF / LeRF as functions of one batch: the seed's percentile removal (the IPL-UV
xAI-constrained-losses code): entries with a > q_p removed together, cumulatively.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..._validation import check_choice
from .._core import MAX_BATCH, SEED_PERCENTILES, above_percentile_masks, curve_value, forward_chunks, prepare
from .._stack import fill_value, forward_copies, masked_copies
from ._settings import checked_rows, checked_value
from .removal import _percentiles, _zero_padding, _keep_real

Tensor = torch.Tensor


def morf_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attributions: torch.Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH, real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), c* = argmax f(x).

        The seed's procedure (the IPL-UV xAI-constrained-losses code, "Learning interpretable explanations
        by optimising saliency maps at training time").

        Args:
            model, x, y, attributions: the classifier, inputs B×..., labels (B,) (may be ``None``: c* is the
                prediction) and the maps (the shape of x, or B×1×H×W).
            percentiles: the steps p_s; at step s, q = p_s-th percentile of the image's non-zero
                attributions and the entries with a > q are set to ``baseline``.
            baseline: the fill value (a number, ``"mean"``, ``"black"`` or a tensor).
            order: ``"morf"``, or ``"lerf"`` (ranks by −a: least relevant, and zero attributions, first).
            max_batch: cap on the rows per forward pass.
            real: for padded series, the real steps (B×1×T, :func:`series_real`): padding is never removed
                and its attributions do not enter the percentiles.

        Shape:
            x: (B, ...); output: (B, S), S = len(percentiles).

        Returns:
            The ratios; an image with all-zero attributions loses nothing (ratios 1).

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MoRF
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import morf_rows
        >>> morf_rows(model, x, y, a, percentiles=(90, 0)).shape
        torch.Size([4, 2])
    """
    check_choice("order", order, ("morf", "lerf"))
    x, _, a = prepare(model, x, y, attributions)
    ps = _percentiles(percentiles)
    p0 = forward_chunks(model, x, max_batch, output="prob")
    conf, c_star = p0.max(1)
    a = _zero_padding(a, real)
    masks = _keep_real(above_percentile_masks(a if order == "morf" else -a, ps), real)
    p = forward_copies(model, masked_copies(x, masks, fill_value(x, baseline)), len(x), len(ps), c_star,
                       max_batch=max_batch)
    return p / conf[:, None]


def _morf_steps(percentiles: Sequence[float]) -> tuple[list[int], list[float]]:
    """The column order that sorts the fractions removed 1 − p/100 increasingly, and those fractions."""
    steps = [1.0 - p / 100.0 for p in percentiles]
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return order, [steps[i] for i in order]


def morf_value(rows: torch.Tensor, percentiles: Sequence[float] = SEED_PERCENTILES) -> torch.Tensor:
    """MoRF / LeRF AUC: ∫ (1 − mean_b d_b) over the fraction removed 1 − p/100 (trapezoid rule).

    Args:
        rows: the per-image ratios d (B×S), the columns in the order of ``percentiles``.
        percentiles: the steps p_s.

    Shape:
        rows: (B, S); output: ().

    Returns:
        A 0-d float64 tensor.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import morf_value
    >>> morf_value(torch.tensor([[1.0, 0.5, 0.0]]), percentiles=(100, 50, 0))   # 1 − d: 0, .5, 1 over 0, .5, 1
    tensor(0.5000, dtype=torch.float64)
    """
    order, steps = _morf_steps(percentiles)
    return curve_value(rows[:, order], steps, transform=lambda c: 1.0 - c)


def morf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH, validate_args: bool = True) -> Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), c* = argmax f(x).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles: the steps p_s; at step s the entries above the p_s-th percentile of the image's
            non-zero attributions are set to ``baseline`` (default: the seed's 20 percentiles).
        baseline: the fill value (a number, ``"mean"``, ``"black"``, or a tensor).
        order: ``"morf"`` (most relevant first) or ``"lerf"`` (least relevant first: ranks by −a).
        max_batch: cap on the rows per forward pass.
        validate_args: ``False`` skips the probe forward pass.

    Shape:
        x: (B, ...); attributions: (B, ...); output: (B, S), S = len(percentiles).

    Returns:
        A float tensor of ratios, column s for ``percentiles[s]``.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.morf_curve(model, x, y, a, percentiles=(90, 50, 0)).shape
    torch.Size([4, 3])
    """
    return checked_rows(morf_rows, validate_args, model, x, y, attributions, percentiles=percentiles, baseline=baseline,
                 order=order, max_batch=max_batch)


def morf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """MoRF AUC = ∫ (1 − mean_b d_b) d(fraction removed), fraction removed = 1 − p/100 (higher is better).

    The seed's procedure (the IPL-UV xAI-constrained-losses code of "Learning interpretable
    explanations by optimising saliency maps at training time"), after Samek et al. (2017).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles, baseline, max_batch: as in :func:`morf_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () with ``reduction="mean"``, (B, S) with ``"none"``.

    Returns:
        The AUC as a 0-d float64 tensor (what :class:`~explainreg.metrics.MoRF` reports), or the B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> v = MF.morf(model, x, y, a); v.shape, v.dtype
    (torch.Size([]), torch.float64)
    >>> MF.morf(model, x, y, a, reduction="none").shape
    torch.Size([4, 20])
    """
    return checked_value(morf_rows, lambda r: morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, max_batch=max_batch)


def lerf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, **settings: Any) -> Tensor:
    """Per-image LeRF ratios: :func:`morf_curve` with the least relevant entries (−a) removed first.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`morf_curve` (without ``order``).

    Shape:
        output: (B, S).

    Returns:
        The B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.lerf_curve(model, x, y, a).shape
    torch.Size([4, 20])
    """
    return morf_curve(model, x, y, attributions, order="lerf", **settings)


def lerf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """LeRF AUC of 1 − mean d with the least relevant entries removed first (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles, baseline, max_batch: as in :func:`morf_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(MF.lerf(model, x, y, a) >= 0)
    True
    """
    return checked_value(morf_rows, lambda r: morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, order="lerf", max_batch=max_batch)


__all__ = ["lerf", "lerf_curve", "morf", "morf_curve", "morf_rows", "morf_value"]
