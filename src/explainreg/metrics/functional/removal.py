"""What the removal (perturbation) metrics share: the real steps of padded series, the percentile
check and the per-image area under a removal curve.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ...inputs import series_padding
from .._core import check_fractions, trapezoid


def _percentiles(values: Sequence[float]) -> tuple[float, ...]:
    return check_fractions("percentiles", values, 0.0, 100.0)


def series_real(like: torch.Tensor | None, padding_mask: Any = None, lengths: Any = None) -> torch.Tensor | None:
    """The real steps of a padded series batch as a B×1×T float tensor (1 = real), from ``padding_mask``
    (B×T, True = a real step) or ``lengths`` (B); None when neither is given.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import series_real
    >>> series_real(torch.zeros(2, 3, 4), lengths=torch.tensor([4, 2])).tolist()
    [[[1.0, 1.0, 1.0, 1.0]], [[1.0, 1.0, 0.0, 0.0]]]
    """
    if padding_mask is None and lengths is None:
        return None
    if like is None or like.dim() != 3:
        shape = None if like is None else tuple(like.shape)
        raise ValueError(f"padding_mask / lengths mark the padded steps of series batches B×C×T; got inputs of shape "
                         f"{shape}. Leave them out for images and tabular data (token batches: explainreg.metrics.text)")
    return series_padding(like, {"padding_mask": padding_mask, "lengths": lengths}).float()[:, None, :]


def _zero_padding(a: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """``a`` with 0 at the padded steps (identity without padding)."""
    return a if real is None else a * real.to(a.device, a.dtype)


def _keep_real(masks: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """Removal ``masks`` (B×S×…) that never remove a padded step."""
    return masks if real is None else masks & (real.to(masks.device)[:, None] > 0)


def per_image_auc_value(rows: torch.Tensor) -> torch.Tensor:
    """The mean over images of each curve's trapezoid AUC with unit spacing (Quantus's ``get_auc_score``).

    Args:
        rows: the per-image curves.

    Shape:
        rows: (B, S); output: ().

    Returns:
        A 0-d float64 tensor: pixel flipping's and region perturbation's summary.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import per_image_auc_value
    >>> per_image_auc_value(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    tensor(0.7500, dtype=torch.float64)
    """
    return trapezoid(rows.double(), dim=1).mean()


__all__ = ["per_image_auc_value", "series_real"]
