"""Localisation metrics, accumulated over batches: Quantus 0.6's localisation metrics against the
region an explanation should hit, and XIL's wrong-reason score WR against the region that must not
matter (Friedrich, Stammer, Schramowski & Kersting 2023). Their computations, with the formulas, are
:mod:`explainreg.metrics.functional.localisation`; :data:`LOCALISATION_METRICS` names these classes.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..inputs import EVIDENCE, MUST_NOT_USE
from ..penalties.xil import normalize_map
from ..registry import Registry
from ._core import Metric, MetricResult, scalar_result
from ._sync import row_index, sync_rows
from .functional.localisation import (_check_k, _flatten, attribution_localisation, localisation_auc, pointing_game,
                                      relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
                                      wrong_reason_scores, wrong_reason_threshold)
from .registry import METRICS

__all__ = [
    "LOCALISATION_METRICS", "MaskMetric", "PointingGame", "AttributionLocalisation", "TopKIntersection",
    "RelevanceRankAccuracy", "RelevanceMassAccuracy", "LocalisationAUC", "WrongReason",
]


# --------------------------------------------------------------------------------------- classes
class MaskMetric(Metric):
    """Accumulating localisation metric: ``update(model, x, y, attributions, mask)`` per batch (model,
    x and y are not used and may be None), ``compute()`` the mean over images, NaN-safe.

    A subclass sets ``name``, ``higher_is_better`` and ``function`` (a per-image function
    ``function(attributions, mask, **options) -> B``); its constructor passes the options.

    Args:
        **options: passed to ``function`` (and recorded by ``settings()``).

    Shape:
        ``update``: attributions (B, C, H, W), mask (B, H, W) or (B, {1, C}, H, W).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` (``value`` the NaN-safe mean,
        ``per_image`` the rows).

    Raises:
        ValueError: ``update`` without attributions or mask.

    Example::

        >>> import torch
        >>> from explainreg.metrics.localisation import MaskMetric
        >>> class MassInside(MaskMetric):                      # a one-off: the attribution sum in the mask
        ...     name, higher_is_better = "mass_inside", True
        ...     function = staticmethod(lambda a, m: (a.flatten(1) * m.flatten(1)).sum(1).double())
        >>> metric = MassInside()
        >>> _ = metric.update(None, None, None, torch.ones(2, 1, 2, 2), torch.tensor([[[1, 0], [0, 0]]] * 2))
        >>> metric.update(None, None, None, torch.ones(1, 1, 2, 2), torch.ones(1, 2, 2)).compute().value
        2.0
    """

    needs_model: ClassVar[bool] = False
    function: ClassVar[Any] = None
    #: whether ``function`` ranks the entries (takes ``seed`` and ``index`` to key its tie order)
    ranked: ClassVar[bool] = False
    #: what the metric's mask marks (documentation: guide/concepts): where the evidence is (WR: what must not be used)
    mask_meaning: ClassVar[str] = EVIDENCE

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def settings(self) -> dict[str, Any]:
        return dict(self.options)

    def update(self, model: nn.Module | None, x: torch.Tensor | None, y: torch.Tensor | None = None,
               attributions: torch.Tensor | None = None, mask: torch.Tensor | None = None, *,
               index: torch.Tensor | None = None) -> "MaskMetric":
        """Add one batch. ``index`` (B,): the images' positions in the data set, which key the tie
        order of the ranking metrics (default: the running count of images seen since ``reset``)."""
        if attributions is None or mask is None:
            raise ValueError(f"{self.name} needs attributions and a ground-truth mask: call "
                             "update(model, x, y, attributions, mask)")
        self._begin_update(None, attributions, index)
        self._rows.append(self.per_image(model, x, y, attributions, mask).detach().cpu())
        self._batches += 1
        return self

    def per_image(self, model, x, y, attributions, mask=None) -> torch.Tensor:
        keyed = {"index": self.batch_index} if self.ranked else {}
        return type(self).function(attributions, mask, **self.options, **keyed)

    def summarize(self, rows: torch.Tensor) -> MetricResult:
        return scalar_result(self, rows)


class PointingGame(MaskMetric):
    """Share of images whose maximum attribution lies in the mask (:func:`~explainreg.metrics.functional.localisation.pointing_game`).

    Args:
        weighted, abs: as :func:`~explainreg.metrics.functional.localisation.pointing_game`.

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.pointing_game` scores, ``per_image`` the scores.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import PointingGame
        >>> from explainreg.metrics.functional.localisation import pointing_game
        >>> result = PointingGame()(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), pointing_game(a, mask))
        >>> bool(same), round(result.value, 4)
        (True, 0.5)
    """

    name = "pointing_game"
    higher_is_better = True
    function = staticmethod(pointing_game)

    def __init__(self, weighted: bool = False, abs: bool = False) -> None:
        super().__init__(weighted=bool(weighted), abs=bool(abs))


class AttributionLocalisation(MaskMetric):
    """Mean share of |a| inside the mask (:func:`~explainreg.metrics.functional.localisation.attribution_localisation`).

    Args:
        abs, positive_only, weighted: as :func:`~explainreg.metrics.functional.localisation.attribution_localisation`.

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.attribution_localisation` scores, ``per_image`` the scores.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import AttributionLocalisation
        >>> from explainreg.metrics.functional.localisation import attribution_localisation
        >>> result = AttributionLocalisation()(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), attribution_localisation(a, mask))
        >>> bool(same), round(result.value, 4)
        (True, 0.3909)
    """

    name = "attribution_localisation"
    higher_is_better = True
    function = staticmethod(attribution_localisation)

    def __init__(self, abs: bool = True, positive_only: bool = False, weighted: bool = False) -> None:
        super().__init__(abs=bool(abs), positive_only=bool(positive_only), weighted=bool(weighted))


class TopKIntersection(MaskMetric):
    """Mean share of the k highest attributions inside the mask (:func:`~explainreg.metrics.functional.localisation.top_k_intersection`).

    Args:
        k, concept_influence, abs, seed: as :func:`~explainreg.metrics.functional.localisation.top_k_intersection` (``update``'s ``index`` keys the
            tie order; default: the running count of images).

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.top_k_intersection` scores, ``per_image`` the scores.

    Raises:
        ValueError: ``k`` not a positive whole number; at ``update``, ``k`` more than the entries of a map.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import TopKIntersection
        >>> from explainreg.metrics.functional.localisation import top_k_intersection
        >>> result = TopKIntersection(k=2)(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), top_k_intersection(a, mask, k=2))
        >>> bool(same), round(result.value, 4)
        (True, 0.5)
    """

    name = "top_k_intersection"
    higher_is_better = True
    function = staticmethod(top_k_intersection)
    ranked = True

    def __init__(self, k: int | None = None, concept_influence: bool = False, abs: bool = False,
                 seed: int = 0) -> None:
        super().__init__(k=_check_k(k), concept_influence=bool(concept_influence), abs=bool(abs), seed=int(seed))


class RelevanceRankAccuracy(MaskMetric):
    """Mean share of the |s| highest attributions inside the mask (:func:`~explainreg.metrics.functional.localisation.relevance_rank_accuracy`).

    Args:
        abs, seed: as :func:`~explainreg.metrics.functional.localisation.relevance_rank_accuracy` (``update``'s ``index`` keys the tie order).

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.relevance_rank_accuracy` scores, ``per_image`` the scores.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import RelevanceRankAccuracy
        >>> from explainreg.metrics.functional.localisation import relevance_rank_accuracy
        >>> result = RelevanceRankAccuracy()(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), relevance_rank_accuracy(a, mask))
        >>> bool(same), round(result.value, 4)
        (True, 0.5)
    """

    name = "relevance_rank_accuracy"
    higher_is_better = True
    function = staticmethod(relevance_rank_accuracy)
    ranked = True

    def __init__(self, abs: bool = False, seed: int = 0) -> None:
        super().__init__(abs=bool(abs), seed=int(seed))


class RelevanceMassAccuracy(MaskMetric):
    """Mean share of the attribution mass inside the mask (:func:`~explainreg.metrics.functional.localisation.relevance_mass_accuracy`).

    Args:
        abs: as :func:`~explainreg.metrics.functional.localisation.relevance_mass_accuracy`.

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.relevance_mass_accuracy` scores, ``per_image`` the scores.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import RelevanceMassAccuracy
        >>> from explainreg.metrics.functional.localisation import relevance_mass_accuracy
        >>> result = RelevanceMassAccuracy()(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), relevance_mass_accuracy(a, mask))
        >>> bool(same), round(result.value, 4)
        (True, 0.5)
    """

    name = "relevance_mass_accuracy"
    higher_is_better = True
    function = staticmethod(relevance_mass_accuracy)

    def __init__(self, abs: bool = False) -> None:
        super().__init__(abs=bool(abs))


class LocalisationAUC(MaskMetric):
    """Mean ROC AUC of the attributions as scores for the mask (:func:`~explainreg.metrics.functional.localisation.localisation_auc`).

    Args:
        abs: as :func:`~explainreg.metrics.functional.localisation.localisation_auc`.

    Shape:
        call / ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        A :class:`~explainreg.metrics.MetricResult`: ``value`` the NaN-safe mean of the per-image
        :func:`~explainreg.metrics.functional.localisation.localisation_auc` scores, ``per_image`` the scores.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> from explainreg.metrics.localisation import LocalisationAUC
        >>> from explainreg.metrics.functional.localisation import localisation_auc
        >>> result = LocalisationAUC()(None, None, None, a, mask)
        >>> same = torch.allclose(torch.as_tensor(result.per_image), localisation_auc(a, mask))
        >>> bool(same), round(result.value, 4)
        (True, 0.8333)
    """

    name = "localisation_auc"
    higher_is_better = True
    function = staticmethod(localisation_auc)

    def __init__(self, abs: bool = False) -> None:
        super().__init__(abs=bool(abs))


class WrongReason(MaskMetric):
    """XIL's WR (×100, lower is better): the maps and masks of every batch are kept (N×H×W floats on
    the CPU) because the binarisation threshold is the mean over the whole data set (see the module
    docstring). ``compute().extra`` holds the threshold and the number of all-zero maps left out.

    WR is XIL's wrong-reason score (Friedrich, Stammer, Schramowski & Kersting 2023).

    Shape:
        ``update(model, x, y, attributions, mask)``: attributions (B, C, H, W), mask m⁻ (B, H, W) or
        (B, {1, C}, H, W); model, x and y may be None.

    Returns:
        ``compute()``: a :class:`~explainreg.metrics.MetricResult` (``value`` in [0, 100], lower is better).

    Raises:
        ValueError: ``update`` without attributions or mask.
        RuntimeError: ``compute()`` before any ``update``.

    Example::

        >>> import torch
        >>> from explainreg.metrics.localisation import WrongReason
        >>> from explainreg.metrics.functional.localisation import wrong_reason
        >>> a, m = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(6, 4, 4)
        >>> m[:, :2] = 1
        >>> metric = WrongReason()
        >>> for i in (0, 3):                                    # two batches; the threshold is over all six
        ...     _ = metric.update(None, None, None, a[i:i + 3], m[i:i + 3])
        >>> result = metric.compute()
        >>> abs(result.value - float(wrong_reason(a, m))) < 1e-9, result.extra["all_zero_maps"]
        (True, 0)
    """

    name = "wrong_reason"
    higher_is_better = False
    mask_meaning = MUST_NOT_USE

    def __init__(self) -> None:
        super().__init__()
        self.add_state("_maps", [], "cat")
        self.add_state("_masks", [], "cat")

    def update(self, model, x, y=None, attributions=None, mask=None, *,
               index: torch.Tensor | None = None) -> "WrongReason":
        if attributions is None or mask is None:
            raise ValueError("wrong_reason needs attributions and the penalty mask m⁻: call "
                             "update(model, x, y, attributions, mask)")
        a, s = _flatten(attributions, mask)  # checks shapes
        self._begin_update(None, attributions, index)
        self._maps.append(normalize_map(attributions.detach().double(), positive_only=True).flatten(1).cpu())
        self._masks.append(s.cpu())
        self._batches += 1
        return self

    def compute(self) -> MetricResult:
        if not self._maps:
            raise RuntimeError("wrong_reason: call update(...) with at least one batch before compute()")
        maps, masks = torch.cat(self._maps), torch.cat(self._masks)
        # under torch.distributed: every rank's maps, in data-set order (the threshold is over all of them)
        index = row_index(self._indices, maps.shape[0])
        maps, masks = sync_rows(maps, index), sync_rows(masks.to(torch.uint8), index).bool()
        threshold = wrong_reason_threshold(maps)
        rows = wrong_reason_scores(maps, masks, threshold) * 100
        result = scalar_result(self, rows)
        result.extra = {"threshold": float(threshold), "all_zero_maps": int((maps.sum(1) == 0).sum())}
        return result


for _cls in (PointingGame, AttributionLocalisation, TopKIntersection, RelevanceRankAccuracy, RelevanceMassAccuracy,
             LocalisationAUC, WrongReason):
    METRICS.register(None, _cls)

#: the metrics that compare attributions with annotation masks: a live view (:class:`~explainreg.registry.RegistryView`)
#: of the entries of :data:`~explainreg.metrics.METRICS` that declare a ``mask_meaning`` and need attributions; a
#: metric registered later that declares them appears in it
LOCALISATION_METRICS: Registry[type[MaskMetric]] = METRICS.where(
    lambda cls: getattr(cls, "mask_meaning", None) is not None and getattr(cls, "needs_attributions", False),
    "localisation metric")
