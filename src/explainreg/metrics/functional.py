"""The metrics as functions of one batch that return tensors (torchmetrics' ``functional``).

One naming rule: ``<metric>(model, x, y, attributions, **settings, reduction="mean")`` returns the
metric's value as a 0-d float64 tensor, the number its class reports (``MoRF()(…).value ==
morf(…).item()``); ``reduction="none"`` returns the per-image rows its class accumulates: B scores
for a scalar metric, B×S curves for a curve metric. A curve metric also has ``<metric>_curve`` (the
B×S per-image curves). The classes (:class:`~explainreg.metrics.MoRF`, …) call the same row and
value functions, batch by batch. ``validate_args=False`` skips the one-row probe forward pass that
checks the model's logits and the labels.

Example::

    >>> import torch
    >>> from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.complexity(a, reduction="none")        # one-hot: 0, uniform: log 16
    tensor([0.0000, 2.7726], dtype=torch.float64)
    >>> round(float(MF.effective_complexity(a)), 1)
    8.5
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from . import perturbation as _p
from . import robustness as _r
from .complexity import complexity_scores, sparseness_scores
from .road import ROAD_PERCENTAGES, road_rows
from ._core import MAX_BATCH, SEED_PERCENTILES, curve_value, reduce_rows, scores_value, validation
from .effective_complexity import effective_complexity_scores

Tensor = torch.Tensor


def _rows(rows_fn, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """``rows_fn(*args, **kwargs)`` with the model probe on or off (:func:`validation`)."""
    with validation(validate_args):
        return rows_fn(*args, **kwargs)


def _value(rows_fn, value, reduction: str, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """The rows of ``rows_fn`` reduced by ``reduction`` (``value``: the metric's summary of its rows)."""
    return reduce_rows(_rows(rows_fn, validate_args, *args, **kwargs), reduction, value)


# ------------------------------------------------------------------------------------------- removal
def morf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH, validate_args: bool = True) -> Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), B×S (see
    :func:`explainreg.metrics.perturbation.morf_curve`)."""
    return _rows(_p.morf_curve, validate_args, model, x, y, attributions, percentiles=percentiles, baseline=baseline,
                 order=order, max_batch=max_batch)


def morf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """MoRF AUC = ∫ (1 − mean_b d_b) d(fraction removed) (higher is better), or the B×S ratios d."""
    return _value(_p.morf_curve, lambda r: _p.morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, max_batch=max_batch)


def lerf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, **settings: Any) -> Tensor:
    """Per-image LeRF ratios (MoRF on −a), B×S."""
    return morf_curve(model, x, y, attributions, order="lerf", **settings)


def lerf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """LeRF AUC of 1 − mean d with the least relevant entries removed first (lower is better)."""
    return _value(_p.morf_curve, lambda r: _p.morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, order="lerf", max_batch=max_batch)


def faithfulness(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                 validate_args: bool = True, **settings: Any) -> Tensor:
    """The seed's faithfulness: mean over images of corr(Σ removed a, Δp) (settings and formula:
    :func:`explainreg.metrics.perturbation.faithfulness_scores`); B scores with ``reduction="none"``."""
    return _value(_p.faithfulness_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


def faithfulness_correlation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                             reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Bhatt et al.'s faithfulness correlation, mean over images (see
    :func:`explainreg.metrics.perturbation.faithfulness_correlation_scores`)."""
    return _value(_p.faithfulness_correlation_scores, scores_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def pixel_flipping_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                         validate_args: bool = True, **settings: Any) -> Tensor:
    """p_y after each pixel-flipping step, B×⌈N/k⌉ (see
    :func:`explainreg.metrics.perturbation.pixel_flipping_curve`)."""
    return _rows(_p.pixel_flipping_curve, validate_args, model, x, y, attributions, **settings)


def pixel_flipping(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                   validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the pixel-flipping curve (lower is better)."""
    return _value(_p.pixel_flipping_curve, _p.per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def region_perturbation_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                              validate_args: bool = True, **settings: Any) -> Tensor:
    """f_y(x) − f_y(x̃) after each removed region, B×S (see
    :func:`explainreg.metrics.perturbation.region_perturbation_curve`)."""
    return _rows(_p.region_perturbation_curve, validate_args, model, x, y, attributions, **settings)


def region_perturbation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                        validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the region-perturbation curve."""
    return _value(_p.region_perturbation_curve, _p.per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def masked_accuracy_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                          validate_args: bool = True, **settings: Any) -> Tensor:
    """SGT's correct[b, s] after dropping the top ``drops[s]`` % (see
    :func:`explainreg.metrics.perturbation.masked_accuracy_rows`)."""
    return _rows(_p.masked_accuracy_rows, validate_args, model, x, y, attributions, **settings)


def masked_accuracy(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                    drops: Sequence[float] = _p.SGT_DROPS, reduction: str = "mean", validate_args: bool = True,
                    **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean masked-accuracy curve over the fraction dropped d/100 (lower is better)."""
    return _value(_p.masked_accuracy_rows, lambda r: curve_value(r, [d / 100.0 for d in drops]), reduction,
                  validate_args, model, x, y, attributions, drops=drops, **settings)


def road_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, validate_args: bool = True,
               **settings: Any) -> Tensor:
    """ROAD's correct[b, s] after removing and imputing ``percentages[s]`` % (see
    :func:`explainreg.metrics.road.road_rows`)."""
    return _rows(road_rows, validate_args, model, x, y, attributions, **settings)


def road(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
         percentages: Sequence[float] = ROAD_PERCENTAGES, reduction: str = "mean", validate_args: bool = True,
         **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean ROAD accuracy curve over the fraction removed."""
    return _value(road_rows, lambda r: curve_value(r, [p / 100.0 for p in percentages]), reduction, validate_args,
                  model, x, y, attributions, percentages=percentages, **settings)


# ---------------------------------------------------------------------------------------- robustness
def gaussian_noise_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                         **settings: Any) -> Tensor:
    """correct[b, s] under noise σ ∈ (0, *sigmas) (see :func:`explainreg.metrics.robustness.gaussian_noise_rows`)."""
    return _rows(_r.gaussian_noise_rows, validate_args, model, x, y, **settings)


def gaussian_noise(model: nn.Module, x: Tensor, y: Tensor, *, sigmas: Sequence[float] = _r.GAUSSIAN_SIGMAS,
                   reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over σ ∈ (0, *sigmas) (higher is better)."""
    return _value(_r.gaussian_noise_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sigmas)),
                  reduction, validate_args, model, x, y, sigmas=sigmas, **settings)


def square_blocks_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                        **settings: Any) -> Tensor:
    """correct[b, s] under one square block of maximal half-size s (see
    :func:`explainreg.metrics.robustness.square_block_rows`)."""
    return _rows(_r.square_block_rows, validate_args, model, x, y, **settings)


def square_blocks(model: nn.Module, x: Tensor, y: Tensor, *, sizes: Sequence[int] = _r.BLOCK_SIZES,
                  reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over the block half-size s ∈ (0, *sizes) (higher is better)."""
    return _value(_r.square_block_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sizes)), reduction,
                  validate_args, model, x, y, sizes=sizes, **settings)


def max_sensitivity(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                    validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean over images of max_r ‖a(x) − a(x + ε_r)‖ / ‖a(x)‖ (see
    :func:`explainreg.metrics.robustness.max_sensitivity_scores`)."""
    return _value(_r.max_sensitivity_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


# ---------------------------------------------------------------------------------------- complexity
def complexity(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean entropy of p = |a| / Σ|a| (see :func:`explainreg.metrics.complexity.complexity_scores`)."""
    return reduce_rows(complexity_scores(attributions, **settings), reduction, scores_value)


def sparseness(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean Gini index of |a| (see :func:`explainreg.metrics.complexity.sparseness_scores`)."""
    return reduce_rows(sparseness_scores(attributions, **settings), reduction, scores_value)


def effective_complexity(attributions: Tensor, *, eps: float = 1e-5, convention: str = "explainreg",
                         reduction: str = "mean") -> Tensor:
    """Mean number of entries with |a| > ``eps`` (see
    :func:`explainreg.metrics.effective_complexity.effective_complexity_scores`)."""
    return reduce_rows(effective_complexity_scores(attributions, eps=eps, convention=convention), reduction,
                       scores_value)


__all__ = [
    "complexity", "effective_complexity", "faithfulness", "faithfulness_correlation", "gaussian_noise",
    "gaussian_noise_curve", "lerf", "lerf_curve", "masked_accuracy", "masked_accuracy_curve", "max_sensitivity",
    "morf", "morf_curve", "pixel_flipping", "pixel_flipping_curve", "region_perturbation",
    "region_perturbation_curve", "road", "road_curve", "sparseness", "square_blocks", "square_blocks_curve",
]
