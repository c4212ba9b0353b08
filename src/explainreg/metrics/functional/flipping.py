"""Pixel flipping (Bach et al. 2015) as functions of one batch: features removed one by one in
attribution order, ties broken by a seeded random order per image.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..._random import as_index, descending_ranks
from .._core import MAX_BATCH, QUANTUS_CONVENTIONS, check_convention, check_positive_int, prepare
from .._stack import fill_value, forward_copies
from ._settings import checked_rows, checked_value
from .removal import per_image_auc_value

Tensor = torch.Tensor


def pixel_flipping_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         features_in_step: int = 1, convention: str = "explainreg", baseline: Any = None,
                         seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Pixel flipping: p_y (softmax) after each step of setting the most relevant features to the baseline.

        Bach et al. (2015), "On pixel-wise explanations for non-linear classifier decisions by layer-wise
        relevance propagation".

        Args:
            model, x, y, attributions: the classifier, inputs, labels and maps.
            features_in_step: k features flipped per step; after step j the first (j+1)·k features in
                decreasing a (ties in a seeded random order per image) are set to the baseline.
            convention: ``"explainreg"`` (baseline 0) or ``"quantus"`` (the image minimum, "black").
            baseline: overrides the convention's fill value.
            seed, index: key the tie order.
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, ...) with N features; output: (B, ⌈N/k⌉).

        Returns:
            p_y after each step.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import PixelFlipping
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import pixel_flipping_rows
        >>> pixel_flipping_rows(model, x, y, a, features_in_step=4).shape
        torch.Size([4, 4])
    """
    check_convention("pixel_flipping_curve", convention, QUANTUS_CONVENTIONS)
    k = check_positive_int("features_in_step", features_in_step)
    x, y, a = prepare(model, x, y, attributions)
    flat_x = x.flatten(1)
    n = flat_x.shape[1]
    steps = math.ceil(n / k)
    ranks = descending_ranks(a.flatten(1).double(), seed, as_index(index, len(x)))
    limits = torch.arange(1, steps + 1, device=x.device) * k
    output = "prob"  # Quantus's PixelFlipping also defaults to softmax=True
    if baseline is None:
        baseline = "black" if convention == "quantus" else 0.0
    fill = fill_value(flat_x, baseline)

    def make(i0, i1):
        masks = ranks[i0:i1, None, :] < limits[None, :, None]
        f = fill[i0:i1] if fill.shape[0] == x.shape[0] else fill
        return torch.where(masks, f, flat_x[i0:i1, None]).view((i1 - i0, steps) + tuple(x.shape[1:]))

    return forward_copies(model, make, len(x), steps, y, max_batch=max_batch, output=output)


def pixel_flipping_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                         validate_args: bool = True, **settings: Any) -> Tensor:
    """p_y after each pixel-flipping step (Bach et al. 2015, "On pixel-wise explanations for non-linear classifier
    decisions by layer-wise relevance propagation").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``features_in_step``, ``convention``, ``baseline``, ``seed``, ``index``, ``max_batch``
            of :func:`explainreg.metrics.functional.perturbation.pixel_flipping_rows`.

    Shape:
        output: (B, ⌈N/k⌉), N features per image, k = ``features_in_step``.

    Returns:
        The softmax probability of y after each step.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.pixel_flipping_curve(model, x, y, a, features_in_step=4).shape
    torch.Size([4, 4])
    """
    return checked_rows(pixel_flipping_rows, validate_args, model, x, y, attributions, **settings)


def pixel_flipping(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                   validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the pixel-flipping curve (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`pixel_flipping_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, ⌈N/k⌉).

    Returns:
        A 0-d float64 tensor, or the per-image curves.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.pixel_flipping(model, x, y, a, features_in_step=4).shape
    torch.Size([])
    """
    return checked_value(pixel_flipping_rows, per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


__all__ = ["pixel_flipping", "pixel_flipping_curve", "pixel_flipping_rows"]
