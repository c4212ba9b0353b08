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
    >>> MF.complexity(a, reduction="none").abs()        # one-hot: 0, uniform: log 16
    tensor([0.0000, 2.7726], dtype=torch.float64)
    >>> round(float(MF.effective_complexity(a)), 1)
    8.5
"""
from __future__ import annotations

import inspect
import sys
from typing import Any, Sequence

import torch
from torch import nn

from . import perturbation as _p
from . import robustness as _r
from .complexity import complexity_scores, sparseness_scores
from .road import road_percentages, road_rows
from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_PERCENTILES, check_convention, curve_value, reduce_rows,
                    scores_value, validation)
from .effective_complexity import effective_complexity_scores

Tensor = torch.Tensor


def _rows(rows_fn, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """``rows_fn(*args, **kwargs)`` with the model probe on or off (:func:`validation`); a setting
    ``rows_fn`` does not take is a TypeError naming the public function and the settings it accepts."""
    _check_settings(rows_fn, len(args), kwargs)
    with validation(validate_args):
        return rows_fn(*args, **kwargs)


def _check_settings(rows_fn, n_args: int, settings: dict[str, Any]) -> None:
    """A TypeError naming the public function of this module that was called (not ``rows_fn``) when
    ``settings`` holds a name neither it nor ``rows_fn`` (after its ``n_args`` positional inputs) takes."""
    params = list(inspect.signature(rows_fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params[n_args:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = [k for k in settings if k not in accepted]
    if not unknown:
        return
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name.startswith("_"):  # _rows, _value → the public function
        frame = frame.f_back
    public = globals().get(frame.f_code.co_name) if frame is not None else None
    if public is None:
        raise TypeError(f"{rows_fn.__name__}() got unexpected setting(s) {', '.join(map(repr, unknown))}; it "
                        f"accepts {', '.join(accepted)}")
    own = [p.name for p in inspect.signature(public).parameters.values() if p.kind is p.KEYWORD_ONLY]
    raise TypeError(f"metrics.functional.{public.__name__}() got unexpected setting(s) "
                    f"{', '.join(map(repr, unknown))}; it accepts {', '.join(dict.fromkeys(own + accepted))}")


def _value(rows_fn, value, reduction: str, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """The rows of ``rows_fn`` reduced by ``reduction`` (``value``: the metric's summary of its rows)."""
    return reduce_rows(_rows(rows_fn, validate_args, *args, **kwargs), reduction, value)


# ------------------------------------------------------------------------------------------- removal
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
    return _rows(_p.morf_rows, validate_args, model, x, y, attributions, percentiles=percentiles, baseline=baseline,
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
    return _value(_p.morf_rows, lambda r: _p.morf_value(r, percentiles), reduction, validate_args, model, x, y,
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
    return _value(_p.morf_rows, lambda r: _p.morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, order="lerf", max_batch=max_batch)


def faithfulness(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                 validate_args: bool = True, **settings: Any) -> Tensor:
    """The seed's faithfulness: mean over images of corr(Σ removed a, p(y|x) − p(y|x masked)) over the percentile steps.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``percentiles``, ``baseline``, ``max_batch`` of
            :func:`explainreg.metrics.perturbation.faithfulness_scores`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        The NaN-safe mean correlation (0-d float64), or the B per-image correlations (NaN where undefined).

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> r = MF.faithfulness(model, x, y, a, reduction="none"); r.shape, bool(((r >= -1) & (r <= 1)).all())
    (torch.Size([4]), True)
    """
    return _value(_p.faithfulness_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


def faithfulness_correlation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                             reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Faithfulness correlation (Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model
    explanations"), mean over images.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``nr_runs``, ``subset_size``, ``convention`` (``"explainreg"`` or ``"quantus"``),
            ``baseline``, ``subsets``, ``seed``, ``index``, ``max_batch`` of
            :func:`explainreg.metrics.perturbation.faithfulness_correlation_scores`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        The NaN-safe mean Pearson correlation (0-d float64), or the B per-image ones.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.faithfulness_correlation(model, x, y, a, nr_runs=10, subset_size=4, reduction="none").shape
    torch.Size([4])
    """
    return _value(_p.faithfulness_correlation_scores, scores_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


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
            of :func:`explainreg.metrics.perturbation.pixel_flipping_rows`.

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
    return _rows(_p.pixel_flipping_rows, validate_args, model, x, y, attributions, **settings)


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
    return _value(_p.pixel_flipping_rows, _p.per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


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
            ``seed``, ``index``, ``max_batch`` of :func:`explainreg.metrics.perturbation.region_perturbation_rows`.

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
    return _rows(_p.region_perturbation_rows, validate_args, model, x, y, attributions, **settings)


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
    return _value(_p.region_perturbation_rows, _p.per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


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
            ``index``, ``max_batch`` of :func:`explainreg.metrics.perturbation.masked_accuracy_rows`.

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
    return _rows(_p.masked_accuracy_rows, validate_args, model, x, y, attributions, **settings)


def masked_accuracy(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                    drops: Sequence[float] = _p.SGT_DROPS, reduction: str = "mean", validate_args: bool = True,
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
    return _value(_p.masked_accuracy_rows, lambda r: curve_value(r, [d / 100.0 for d in drops]), reduction,
                  validate_args, model, x, y, attributions, drops=drops, **settings)


def road_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
               percentages: Sequence[float] | None = None, convention: str = "explainreg", validate_args: bool = True,
               **settings: Any) -> Tensor:
    """ROAD's correct[b, s] after removing ``percentages[s]`` % and imputing them (Rong et al. 2022, "A consistent and
    efficient evaluation strategy for attribution methods").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentages: the percentages removed (default 10, 20, …, 90; ``convention="quantus"``: 1, 3, …, 99).
        convention: ``"explainreg"`` or ``"quantus"`` (the default percentages of ``quantus.ROAD``), as
            :class:`~explainreg.metrics.ROAD`.
        validate_args: ``False`` skips the probe forward pass.
        settings: ``order``, ``noise``, ``seed``, ``index``, ``tol``, ``max_batch`` of
            :func:`explainreg.metrics.road.road_rows`.

    Shape:
        x: (B, C, H, W); output: (B, S), S = len(percentages).

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.road_curve(model, x, y, a, percentages=(25, 50)).shape
    torch.Size([4, 2])
    """
    percentages = road_percentages(percentages, convention, "road_curve")
    return _rows(road_rows, validate_args, model, x, y, attributions, percentages=percentages, **settings)


def road(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
         percentages: Sequence[float] | None = None, convention: str = "explainreg", reduction: str = "mean",
         validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean ROAD accuracy curve over the fraction removed (lower is better for ``morf``).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentages: the percentages removed (default 10, 20, …, 90; ``convention="quantus"``: 1, 3, …, 99).
        convention: ``"explainreg"`` or ``"quantus"``, as :func:`road_curve`.
        settings: as in :func:`road_curve`.
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
    >>> MF.road(model, x, y, a, percentages=(25, 50)).shape
    torch.Size([])
    """
    percentages = road_percentages(percentages, convention, "road")
    return _value(road_rows, lambda r: curve_value(r, [p / 100.0 for p in percentages]), reduction, validate_args,
                  model, x, y, attributions, percentages=percentages, **settings)


# ---------------------------------------------------------------------------------------- robustness
def gaussian_noise_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                         **settings: Any) -> Tensor:
    """correct[b, s] for x_b + σ_s·ε, σ ∈ ``(0, *sigmas)`` (the seed's robustness test 5).

    Args:
        model, x, y: as for every metric (no attributions).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``sigmas``, ``convention`` (``"explainreg"`` or ``"seed"``: the seed's +1 shift),
            ``seed``, ``index``, ``max_batch`` of :func:`explainreg.metrics.robustness.gaussian_noise_rows`.

    Shape:
        output: (B, 1 + len(sigmas)); column 0 is the clean image.

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.gaussian_noise_curve(model, x, y, sigmas=(0.5,)).shape
    torch.Size([4, 2])
    """
    return _rows(_r.gaussian_noise_rows, validate_args, model, x, y, **settings)


def gaussian_noise(model: nn.Module, x: Tensor, y: Tensor, *, sigmas: Sequence[float] = _r.GAUSSIAN_SIGMAS,
                   reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over σ ∈ ``(0, *sigmas)`` (higher is better).

    Args:
        model, x, y: as for every metric (no attributions).
        sigmas: the noise levels (default 0.1, 0.5, 1, 1.5).
        settings: as in :func:`gaussian_noise_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, 1 + len(sigmas)).

    Returns:
        A 0-d float64 tensor (at most max σ), or the 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(0 <= MF.gaussian_noise(model, x, y) <= 1.5)
    True
    """
    return _value(_r.gaussian_noise_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sigmas)),
                  reduction, validate_args, model, x, y, sigmas=sigmas, **settings)


def square_blocks_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                        **settings: Any) -> Tensor:
    """correct[b, s] under one square block of maximal half-size s (the seed's robustness test 6).

    Args:
        model, x, y: as for every metric (no attributions).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``sizes``, ``min_size``, ``low``, ``high``, ``seed``, ``index``, ``max_batch`` of
            :func:`explainreg.metrics.robustness.square_block_rows`.

    Shape:
        x: (B, C, H, W); output: (B, 1 + len(sizes)); column 0 is the clean image.

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.square_blocks_curve(model, x, y, sizes=(2,)).shape
    torch.Size([4, 2])
    """
    return _rows(_r.square_block_rows, validate_args, model, x, y, **settings)


def square_blocks(model: nn.Module, x: Tensor, y: Tensor, *, sizes: Sequence[int] = _r.BLOCK_SIZES,
                  reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over the block half-size s ∈ ``(0, *sizes)`` (higher is better).

    Args:
        model, x, y: as for every metric (no attributions).
        sizes: the maximal half-sizes (default 6, 8, 10, 12; at most H/2).
        settings: as in :func:`square_blocks_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, 1 + len(sizes)).

    Returns:
        A 0-d float64 tensor (at most max s), or the 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(0 <= MF.square_blocks(model, x, y, sizes=(2,)) <= 2)
    True
    """
    return _value(_r.square_block_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sizes)), reduction,
                  validate_args, model, x, y, sizes=sizes, **settings)


def max_sensitivity(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                    convention: str = "explainreg", validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean over images of max_r ‖a(x) − a(x + ε_r)‖ / ‖a(x)‖ (Yeh et al. 2019, "On the (in)fidelity and sensitivity of
    explanations"; lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``method``, ``nr_samples``, ``lower_bound``, ``upper_bound``, ``seed``, ``index``,
            ``noise``, ``max_batch``, ``options`` of :func:`explainreg.metrics.robustness.max_sensitivity_scores`.
        convention: ``"explainreg"`` or ``"quantus"``: the same computation (Quantus 0.6's defaults), as
            :class:`~explainreg.metrics.MaxSensitivity`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B per-image sensitivities.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> from explainreg.attribution import attribute
    >>> s = attribute(model, x, y, "saliency")
    >>> MF.max_sensitivity(model, x, y, s, nr_samples=5, reduction="none").shape
    torch.Size([4])
    """
    check_convention("max_sensitivity", convention, QUANTUS_CONVENTIONS)
    return _value(_r.max_sensitivity_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


# ---------------------------------------------------------------------------------------- complexity
def complexity(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean entropy H = −Σ_k p_k log p_k of p = |a| / Σ|a| (Bhatt, Weller & Moura 2020; lower is better).

    Args:
        attributions: the maps, B×... (no model needed).
        reduction: ``"mean"`` or ``"none"``.
        settings: ``convention`` (``"explainreg"``, ``"seed"``: log(p + 0.01), ``"quantus"``) of
            :func:`explainreg.metrics.complexity.complexity_scores`.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B entropies (NaN for all-zero maps).

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.complexity(a, reduction="none").abs()       # one-hot: 0, uniform: log 16
    tensor([0.0000, 2.7726], dtype=torch.float64)
    """
    _check_settings(complexity_scores, 1, settings)
    return reduce_rows(complexity_scores(attributions, **settings), reduction, scores_value)


def sparseness(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean Gini index of |a| (Chalasani et al. 2020, "Concise explanations of neural networks using adversarial
    training"; higher is better).

    Args:
        attributions: the maps, B×... (no model needed).
        reduction: ``"mean"`` or ``"none"``.
        settings: ``convention`` (``"explainreg"`` or ``"quantus"``) of
            :func:`explainreg.metrics.complexity.sparseness_scores`.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B Gini indices.

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.sparseness(a, reduction="none")             # one-hot: (N − 1)/N, uniform: 0
    tensor([0.9375, 0.0000], dtype=torch.float64)
    """
    _check_settings(sparseness_scores, 1, settings)
    return reduce_rows(sparseness_scores(attributions, **settings), reduction, scores_value)


def effective_complexity(attributions: Tensor, *, eps: float = 1e-5, convention: str = "explainreg",
                         reduction: str = "mean") -> Tensor:
    """Mean number of entries with |a| > ``eps`` (Nguyen & Martínez 2020, "On quantitative aspects of model
    interpretability"; lower is better).

    Args:
        attributions: the maps, B×....
        eps: the threshold ε ≥ 0.
        convention: ``"explainreg"`` (raw |a|) or ``"quantus"`` (|a| / max |a| over the batch first).
        reduction: ``"mean"`` or ``"none"``.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B counts.

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.effective_complexity(a)
    tensor(8.5000, dtype=torch.float64)
    """
    return reduce_rows(effective_complexity_scores(attributions, eps=eps, convention=convention), reduction,
                       scores_value)


__all__ = [
    "complexity", "effective_complexity", "faithfulness", "faithfulness_correlation", "gaussian_noise",
    "gaussian_noise_curve", "lerf", "lerf_curve", "masked_accuracy", "masked_accuracy_curve", "max_sensitivity",
    "morf", "morf_curve", "pixel_flipping", "pixel_flipping_curve", "region_perturbation",
    "region_perturbation_curve", "road", "road_curve", "sparseness", "square_blocks", "square_blocks_curve",
]
