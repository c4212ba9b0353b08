"""Region perturbation (Samek et al. 2017) as functions of one batch: patches removed in the order of
their attribution sums (MoRF, or LeRF), ties broken by a seeded random order per image.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..._random import as_index, descending_ranks, keyed_draw
from ..._validation import check_choice
from .._core import MAX_BATCH, QUANTUS_CONVENTIONS, check_convention, check_positive_int, forward_chunks, prepare
from .._stack import fill_value, forward_copies
from ._settings import checked_rows, checked_value
from .removal import per_image_auc_value

Tensor = torch.Tensor


def _pad_sizes(dim: int, patch: int) -> tuple[int, int]:
    total = (patch - dim % patch) % patch
    return total // 2, total - total // 2


def region_perturbation_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                              patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                              convention: str = "explainreg", baseline: Any = None, seed: int = 0,
                              index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Region perturbation: p_y(x) − p_y(x perturbed) (softmax) after each of the first ``regions_evaluation`` patches
        set to the baseline.

        Samek et al. (2017), "Evaluating the visualization of what a deep neural network has learned".

        Args:
            model, x, y, attributions: the classifier, images B×C×H×W, labels and maps.
            patch_size: the image (padded to a multiple, as Quantus does) is cut into non-overlapping
                patches ranked by their attribution sum.
            order: ``"morf"`` (decreasing), ``"lerf"`` (increasing) or ``"random"`` (a seeded order per image).
            regions_evaluation: the patches removed, one after the other.
            convention: ``"explainreg"`` (baseline 0) or ``"quantus"`` (the image minimum, "black").
            baseline: overrides the convention's fill value.
            seed, index: key the tie and random orders.
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, C, H, W); output: (B, S), S = min(regions_evaluation, number of patches).

        Returns:
            The drop of p_y after each patch.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import RegionPerturbation
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import region_perturbation_rows
        >>> region_perturbation_rows(model, x, y, a, patch_size=2).shape      # 4 patches of 2×2
        torch.Size([4, 4])
    """
    check_convention("region_perturbation_curve", convention, QUANTUS_CONVENTIONS)
    check_choice("order", order, ("morf", "lerf", "random"))
    patch = check_positive_int("patch_size", patch_size)
    check_positive_int("regions_evaluation", regions_evaluation)
    x, y, a = prepare(model, x, y, attributions)
    if x.dim() != 4:
        raise ValueError(f"region perturbation needs images B×C×H×W, got x of shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    (pt, pb), (pl, pr) = _pad_sizes(h, patch), _pad_sizes(w, patch)
    a_pad = torch.nn.functional.pad(a, (pl, pr, pt, pb))
    nh, nw = a_pad.shape[2] // patch, a_pad.shape[3] // patch
    sums = a_pad.reshape(b, c, nh, patch, nw, patch).sum((1, 3, 5)).flatten(1)          # B×P
    idx = as_index(index, b)
    if order == "random":
        keys = keyed_draw("uniform", seed, idx, (sums.shape[1],), "order", device=x.device)
    else:
        keys = sums.double() if order == "morf" else -sums.double()
    ranks = descending_ranks(keys, seed, idx)                                           # B×P
    # Patch id of every original pixel.
    rows_id = (torch.arange(h, device=x.device) + pt) // patch
    cols_id = (torch.arange(w, device=x.device) + pl) // patch
    pid = (rows_id[:, None] * nw + cols_id[None, :]).flatten()                          # H·W
    pixel_rank = ranks[:, pid].view(b, 1, 1, h, w)                                       # B×1×1×H×W
    steps = min(int(regions_evaluation), nh * nw)
    limits = torch.arange(steps, device=x.device).view(1, steps, 1, 1, 1)
    output = "prob"  # Quantus's RegionPerturbation also defaults to softmax=True
    if baseline is None:
        baseline = "black" if convention == "quantus" else 0.0
    fill = fill_value(x, baseline)
    f0 = forward_chunks(model, x, max_batch, output=output, index=y)

    def make(i0, i1):
        masks = pixel_rank[i0:i1] <= limits
        f = fill[i0:i1] if fill.shape[0] == b else fill
        return torch.where(masks, f, x[i0:i1, None])

    f = forward_copies(model, make, b, steps, y, max_batch=max_batch, output=output)
    return f0[:, None] - f


def region_perturbation_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                              validate_args: bool = True, **settings: Any) -> Tensor:
    """f_y(x) − f_y(x̃) after each removed region (Samek et al. 2017, "Evaluating the visualization of what a deep
    neural
    network has learned").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``patch_size``, ``order``, ``regions_evaluation``, ``convention``, ``baseline``,
            ``seed``, ``index``, ``max_batch`` of :func:`explainreg.metrics.functional.perturbation.region_perturbation_rows`.

    Shape:
        x: (B, C, H, W); output: (B, S), S = min(regions_evaluation, number of patches).

    Returns:
        The drop of p_y after each patch.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.region_perturbation_curve(model, x, y, a, patch_size=2, regions_evaluation=3).shape
    torch.Size([4, 3])
    """
    return checked_rows(region_perturbation_rows, validate_args, model, x, y, attributions, **settings)


def region_perturbation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                        validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the region-perturbation curve (higher is better for ``morf``).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`region_perturbation_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the per-image curves.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.region_perturbation(model, x, y, a, patch_size=2).shape
    torch.Size([])
    """
    return checked_value(region_perturbation_rows, per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


__all__ = ["region_perturbation", "region_perturbation_curve", "region_perturbation_rows"]
