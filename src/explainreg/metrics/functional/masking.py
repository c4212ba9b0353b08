"""SGT's masked accuracy (Ismail, Corrada Bravo & Feizi 2021) as functions of one batch: the accuracy
with the top d % of features replaced, per drop d.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..._random import as_index, descending_ranks
from .._core import MAX_BATCH, SEED_CONVENTIONS, check_convention, check_fractions, curve_value, prepare
from .._stack import fill_value, forward_copies
from ._settings import checked_rows, checked_value

Tensor = torch.Tensor


SGT_DROPS = tuple(range(0, 100, 10))


class _Squeeze1(nn.Module):
    """Runs a series model on B×1×C×T copies (the series as one-channel "images")."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(1))


def masked_accuracy_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         drops: Sequence[float] = SGT_DROPS, background: Any = "corner",
                         convention: str = "explainreg", seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Masked accuracy: correct[b, s] after the k = ⌊H·W·d_s/100⌋ pixels with the largest channel-mean |a| are replaced
        by the background.

        Ismail, Corrada Bravo & Feizi (2021), "Improving deep learning interpretability by saliency
        guided training" (its masked-accuracy evaluation).

        Args:
            model, x, y, attributions: the classifier, images B×C×H×W (or series B×C×T), labels and maps.
            drops: the percentages d dropped.
            background: ``"corner"`` (each image's own pixel [c, 0, 0]; for series x[b, c, 0]), a number or a tensor.
            convention: ``"explainreg"`` or ``"seed"`` (the seed code's k = max(1, …): one pixel is masked
                even at d = 0).
            seed, index: key the tie order (a seeded random order per image).
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, C, H, W) or (B, C, T) (every (channel, step) entry a feature, k = ⌊C·T·d/100⌋); output: (B,
                len(drops)).

        Returns:
            0/1 float64 correctness.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MaskedAccuracy
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import masked_accuracy_rows
        >>> masked_accuracy_rows(model, x, y, a, drops=(0, 50)).shape
        torch.Size([4, 2])
    """
    seed_quirk = check_convention("masked_accuracy_rows", convention, SEED_CONVENTIONS) == "seed"
    x, y, a = prepare(model, x, y, attributions)
    ds = check_fractions("drops", drops, 0.0, 100.0)
    series = x.dim() == 3
    if series:
        x, a = x[:, None], a[:, None]                      # B×1×C×T: each entry of C×T is one "pixel"
        model = _Squeeze1(model)
    elif x.dim() != 4:
        raise ValueError(f"masked accuracy needs images B×C×H×W or series B×C×T, got x of shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    score = a.abs().mean(1).flatten(1)                                             # B×HW
    ranks = descending_ranks(score.double(), seed, as_index(index, b))
    ks = [int(h * w * d / 100.0) for d in ds]
    if seed_quirk:
        ks = [max(1, k) for k in ks]
    limits = torch.tensor(ks, device=x.device).view(1, -1, 1, 1, 1)
    pixel_rank = ranks.view(b, 1, 1, h, w)
    if isinstance(background, str) and background == "corner" and series:
        fill = x[:, :, :, :1][:, None]                                               # B×1×1×C×1: x[b, c, 0]
    elif isinstance(background, str) and background == "corner":
        fill = x[:, :, :1, :1][:, None]                                              # B×1×C×1×1
    else:
        fill = fill_value(x, background)

    def make(i0, i1):
        f = fill[i0:i1] if fill.shape[0] == b else fill
        return torch.where(pixel_rank[i0:i1] < limits, f, x[i0:i1, None])

    labels = forward_copies(model, make, b, len(ds), None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


def masked_accuracy_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                          validate_args: bool = True, **settings: Any) -> Tensor:
    """Saliency-guided training's masked accuracy (Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning
    interpretability by saliency guided training"): correct[b, s] after the top ``drops[s]`` % of the features are set
    to the background.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``drops``, ``background``, ``convention`` (``"explainreg"`` or ``"seed"``), ``seed``,
            ``index``, ``max_batch`` of :func:`explainreg.metrics.functional.perturbation.masked_accuracy_rows`.

    Shape:
        x: (B, C, H, W) or series (B, C, T); output: (B, S), S = len(drops).

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.masked_accuracy_curve(model, x, y, a, drops=(0, 50)).shape
    torch.Size([4, 2])
    """
    return checked_rows(masked_accuracy_rows, validate_args, model, x, y, attributions, **settings)


def masked_accuracy(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                    drops: Sequence[float] = SGT_DROPS, reduction: str = "mean", validate_args: bool = True,
                    **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean masked-accuracy curve over the fraction dropped d/100 (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        drops: the percentages dropped (default 0, 10, …, 90).
        settings: as in :func:`masked_accuracy_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the per-image 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.masked_accuracy(model, x, y, a, drops=(0, 50, 100), reduction="none").shape
    torch.Size([4, 3])
    """
    return checked_value(masked_accuracy_rows, lambda r: curve_value(r, [d / 100.0 for d in drops]), reduction,
                  validate_args, model, x, y, attributions, drops=drops, **settings)


__all__ = ["SGT_DROPS", "masked_accuracy", "masked_accuracy_curve", "masked_accuracy_rows"]
