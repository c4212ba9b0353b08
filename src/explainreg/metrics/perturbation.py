"""Removal (perturbation) metrics as accumulating classes: MoRF / LeRF, the seed's cumulative faithfulness,
the Bhatt et al. faithfulness correlation, pixel flipping, region perturbation and SGT's masked accuracy.
Each holds its settings and declared state and calls its function of one batch in
:mod:`explainreg.metrics.functional.perturbation` (where the procedures, draws and tie-breaks are described).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .._validation import check_choice
from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, SEED_PERCENTILES, Metric, MetricResult,
                    check_convention, check_fractions, check_positive_int, curve_result, scalar_result)
from .functional.faithfulness_measures import faithfulness_correlation_scores, faithfulness_scores
from .functional.flipping import pixel_flipping_rows
from .functional.masking import SGT_DROPS, masked_accuracy_rows
from .functional.percentile_removal import _morf_steps, morf_rows
from .functional.regions import region_perturbation_rows
from .functional.removal import _percentiles, per_image_auc_value, series_real
from .registry import METRICS


class PaddedSeries:
    """Metrics whose ``update`` and call take ``padding_mask`` (B×T, True = real step) or ``lengths`` (B) for
    series padded to a common length (:func:`explainreg.data.load_ucr`'s extras): the padded steps never count
    (their attributions are 0, they are never removed, and per-image reductions run over the real steps).

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import Complexity
    >>> a = torch.tensor([[[1.0, 1.0, 5.0]]])                     # one series, its last step padding
    >>> round(Complexity()(None, None, None, a, lengths=torch.tensor([2])).value, 4)   # log 2
    0.6931
    """

    #: the real steps of the batch being added (B×1×T, 1 = real), or None
    batch_real: torch.Tensor | None = None

    def update(self, model, x, y=None, attributions=None, *, index=None, padding_mask=None, lengths=None):
        self.batch_real = series_real(x if x is not None else attributions, padding_mask, lengths)
        try:
            return super().update(model, x, y, attributions, index=index)
        finally:
            self.batch_real = None


class WholeSeriesOnly(PaddedSeries):
    """Metrics whose curve or draw runs over every feature of the batch: ``padding_mask`` / ``lengths``
    are refused with what to use instead (padding would otherwise count as features).

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import PixelFlipping
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    >>> x = torch.rand(1, 2, 3)
    >>> PixelFlipping()(model, x, torch.tensor([0]), x, lengths=torch.tensor([2]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: pixel_flipping ranks, flips or draws over all features of a series, ...
    """

    def update(self, model, x, y=None, attributions=None, *, index=None, padding_mask=None, lengths=None):
        if padding_mask is not None or lengths is not None:
            raise ValueError(f"{self.name} ranks, flips or draws over all features of a series, so padded steps "
                             "would count as features; it takes no padding_mask / lengths. On variable-length "
                             "series use MoRF, LeRF, Faithfulness, Complexity or Sparseness with padding_mask=..., "
                             "or evaluate batches of series of one length (no padding)")
        return super().update(model, x, y, attributions, index=index)


class PercentileRemoval(PaddedSeries, Metric):
    """The settings of the seed's percentile-rule metrics (MoRF, LeRF, faithfulness). On series padded to
    a common length pass ``padding_mask=`` (or ``lengths=``) to ``update`` / the call: padding never counts.

    Args:
        percentiles: entries above each ``percentiles`` value of an image's non-zero attributions are set
            to ``baseline``.
        baseline: the fill value.
        max_batch: cap on the rows per forward pass.

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` (in the subclasses).

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import MoRF, LeRF, Faithfulness
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> from explainreg.metrics.perturbation import PercentileRemoval
    >>> all(issubclass(c, PercentileRemoval) for c in (MoRF, LeRF, Faithfulness))
    True
    """

    def __init__(self, percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.percentiles = _percentiles(percentiles)
        self.baseline, self.max_batch = baseline, check_positive_int("max_batch", max_batch)


@METRICS.register("morf")
class MoRF(PercentileRemoval):
    """Most Relevant First: AUC = ∫ (1 − mean_b d_b) over fraction removed 1 − p/100 (higher is better).

        The seed's procedure (the IPL-UV xAI-constrained-losses code, "Learning interpretable explanations
        by optimising saliency maps at training time").

        Args:
            percentiles, baseline, max_batch: see :class:`PercentileRemoval` and :func:`morf_rows`.

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` with ``steps`` the fractions removed
            and ``curve`` mean_b d_b.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MoRF
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> r = MoRF()(model, x, y, a); r.name, r.higher_is_better, r.curve.shape
        ('morf', True, torch.Size([20]))
    """

    name = "morf"
    higher_is_better = True
    order = "morf"

    def per_image(self, model, x, y, attributions):
        return morf_rows(model, x, y, attributions, percentiles=self.percentiles, baseline=self.baseline,
                          order=self.order, max_batch=self.max_batch, real=self.batch_real)

    def summarize(self, rows):
        order, steps = _morf_steps(self.percentiles)
        return curve_result(self, rows[:, order], steps, transform=lambda c: 1.0 - c, step_name="fraction_removed",
                            curve_name="relative_confidence")


@METRICS.register("lerf")
class LeRF(MoRF):
    """Least Relevant First (MoRF on −a): AUC of 1 − mean d; lower is better (the model keeps its confidence while
    irrelevant features go).

    Args:
        percentiles, baseline, max_batch: as for :class:`MoRF`.

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import LeRF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> LeRF()(model, x, y, a).higher_is_better
    False
    """

    name = "lerf"
    higher_is_better = False
    order = "lerf"


@METRICS.register("faithfulness")
class Faithfulness(PercentileRemoval):
    """The seed's faithfulness: mean over images of the per-image correlation (higher is better); undefined correlations
    are skipped and counted in ``n_nan``.

    Args:
        percentiles, baseline, max_batch: see :func:`faithfulness_scores`.

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import Faithfulness
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> r = Faithfulness()(model, x, y, a); -1 <= r.value <= 1
    True
    """

    name = "faithfulness"
    higher_is_better = True

    def per_image(self, model, x, y, attributions):
        return faithfulness_scores(model, x, y, attributions, percentiles=self.percentiles, baseline=self.baseline,
                                   max_batch=self.max_batch, real=self.batch_real)

    def summarize(self, rows):
        return scalar_result(self, rows)


@METRICS.register("faithfulness_correlation")
class FaithfulnessCorrelation(WholeSeriesOnly, Metric):
    """Faithfulness correlation, mean over images (higher is better).

        Bhatt, Weller & Moura (2020).

        Args:
            nr_runs, subset_size, convention, baseline, seed, max_batch: see :func:`faithfulness_correlation_scores`.

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import FaithfulnessCorrelation
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> FaithfulnessCorrelation(nr_runs=10, subset_size=4, convention="quantus")(model, x, y, a).n_images
        4
    """

    name = "faithfulness_correlation"
    higher_is_better = True
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, nr_runs: int = 100, subset_size: int = 224, convention: str = "explainreg",
                 baseline: Any = None, seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_convention("FaithfulnessCorrelation", convention, self.conventions)
        self.nr_runs, self.subset_size = check_positive_int("nr_runs", nr_runs), check_positive_int(
            "subset_size", subset_size)
        self.convention, self.baseline, self.seed = convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return faithfulness_correlation_scores(
            model, x, y, attributions, nr_runs=self.nr_runs, subset_size=self.subset_size,
            convention=self.convention, baseline=self.baseline, seed=self.seed, index=self.batch_index,
            max_batch=self.max_batch)

    def summarize(self, rows):
        return scalar_result(self, rows)


def _per_image_auc(metric: Metric, rows: torch.Tensor, step_name: str, curve_name: str) -> MetricResult:
    """Mean curve over steps 1..S, summarised as the mean of the per-image AUCs (unit spacing, as Quantus)."""
    steps = torch.arange(1, rows.shape[1] + 1, dtype=torch.float64)
    result = curve_result(metric, rows, steps, step_name=step_name, curve_name=curve_name)
    result.value = float(per_image_auc_value(rows))
    return result


@METRICS.register("pixel_flipping")
class PixelFlipping(WholeSeriesOnly, Metric):
    """Pixel flipping curve of f_y; the summary is the mean per-image trapezoid AUC with unit spacing. Lower is
    better (a
    faithful ranking destroys the output fast).

    Args:
        features_in_step, convention, baseline, seed, max_batch: see :func:`pixel_flipping_rows`.

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import PixelFlipping
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> r = PixelFlipping(features_in_step=4)(model, x, y, a); r.curve.shape, r.higher_is_better
    (torch.Size([4]), False)
    """

    name = "pixel_flipping"
    higher_is_better = False
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, features_in_step: int = 1, convention: str = "explainreg", baseline: Any = None,
                 seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_convention("PixelFlipping", convention, self.conventions)
        self.features_in_step = check_positive_int("features_in_step", features_in_step)
        self.convention, self.baseline, self.seed = convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return pixel_flipping_rows(model, x, y, attributions, features_in_step=self.features_in_step,
                                    convention=self.convention, baseline=self.baseline, seed=self.seed,
                                    index=self.batch_index, max_batch=self.max_batch)

    def summarize(self, rows):
        return _per_image_auc(self, rows, "step", "output")


@METRICS.register("region_perturbation")
class RegionPerturbation(WholeSeriesOnly, Metric):
    """Region perturbation curve f_y(x) − f_y(x̃); summary: mean per-image AUC with unit spacing. Higher is better for
    ``morf`` and ``random``; ``order="lerf"`` builds a :class:`RegionPerturbationLeRF` (lower is better).

    Args:
        patch_size, order, regions_evaluation, convention, baseline, seed, max_batch: see
            :func:`region_perturbation_rows`.

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import RegionPerturbation
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> type(RegionPerturbation(order="lerf")).__name__, RegionPerturbation(patch_size=2)(model, x, y, a).curve.shape
    ('RegionPerturbationLeRF', torch.Size([4]))
    """

    name = "region_perturbation"
    higher_is_better = True
    variant_by = "order"
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                 convention: str = "explainreg", baseline: Any = None, seed: int = 0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_choice("order", order, ("morf", "lerf", "random"))
        check_convention("RegionPerturbation", convention, self.conventions)
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.regions_evaluation = check_positive_int("regions_evaluation", regions_evaluation)
        self.order, self.convention, self.baseline, self.seed = order, convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return region_perturbation_rows(model, x, y, attributions, patch_size=self.patch_size, order=self.order,
                                         regions_evaluation=self.regions_evaluation, convention=self.convention,
                                         baseline=self.baseline, seed=self.seed, index=self.batch_index,
                                         max_batch=self.max_batch)

    def summarize(self, rows):
        return _per_image_auc(self, rows, "regions_removed", "output_drop")


class RegionPerturbationLeRF(RegionPerturbation):
    """Region perturbation in the ``lerf`` order (least relevant regions first): lower is better.

    Args:
        as :class:`RegionPerturbation` (built by ``RegionPerturbation(order="lerf")``).

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import RegionPerturbation
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> RegionPerturbation(order="lerf").higher_is_better
    False
    """

    higher_is_better = False


RegionPerturbation.variants = {"lerf": RegionPerturbationLeRF}


@METRICS.register("masked_accuracy", aliases=("sgt",))
class MaskedAccuracy(WholeSeriesOnly, Metric):
    """Masked-accuracy curve over the drop percentage; summary: its trapezoid AUC over the fraction dropped d/100. Lower
        is better (accuracy falls faster when the salient pixels go).

        Ismail, Corrada Bravo & Feizi (2021).

        Args:
            drops, background, convention, seed, max_batch: see :func:`masked_accuracy_rows`.

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)). Series (B, C, T) too.

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MaskedAccuracy
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> r = MaskedAccuracy(drops=(0, 50))(model, x, y, a); r.steps.tolist()
        [0.0, 0.5]
    """

    name = "masked_accuracy"
    higher_is_better = False
    conventions = SEED_CONVENTIONS

    def __init__(self, drops: Sequence[float] = SGT_DROPS, background: Any = "corner", convention: str = "explainreg",
                 seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.drops = check_fractions("drops", drops, 0.0, 100.0)
        self.convention = check_convention("MaskedAccuracy", convention, self.conventions)
        self.background, self.seed = background, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return masked_accuracy_rows(model, x, y, attributions, drops=self.drops, background=self.background,
                                    convention=self.convention, seed=self.seed, index=self.batch_index,
                                    max_batch=self.max_batch)

    def summarize(self, rows):
        steps = [d / 100.0 for d in self.drops]
        return curve_result(self, rows, steps, step_name="fraction_dropped", curve_name="accuracy")


__all__ = [
    "Faithfulness", "FaithfulnessCorrelation", "LeRF", "MaskedAccuracy", "MoRF", "PaddedSeries", "PercentileRemoval",
    "PixelFlipping", "RegionPerturbation", "RegionPerturbationLeRF", "WholeSeriesOnly",
]
