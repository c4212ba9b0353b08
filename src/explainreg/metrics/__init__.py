"""Evaluation of attributions, the torchmetrics way round.

- :mod:`explainreg.metrics.functional`: each metric as a function of one batch returning tensors
  (``functional.morf(model, x, y, a)`` → the value; ``reduction="none"`` → per-image rows;
  ``functional.morf_curve`` → B×S curves).
- the classes, accumulating over batches: ``update(model, x, y, attributions)`` per batch,
  ``compute() -> MetricResult`` (``name`` and ``higher_is_better`` are class facts), registered by
  name in :data:`METRICS` (``@METRICS.register(name)``) and built by :func:`build_metric`; results become tidy pandas
  tables (:func:`results_frame`).

Seed 1's six tests: :class:`MoRF`, :class:`Faithfulness`, :class:`Complexity`, :class:`ROAR`,
:class:`GaussianNoise`, :class:`SquareBlocks`; SGT's :class:`MaskedAccuracy`; and :class:`LeRF`,
:class:`FaithfulnessCorrelation`, :class:`Sparseness`, :class:`EffectiveComplexity`,
:class:`PixelFlipping`, :class:`RegionPerturbation`, :class:`ROAD`, :class:`MaxSensitivity`, with
``convention="quantus"`` where Quantus 0.6 has the metric (see docs/metrics.md).

Random draws and tie-breaks are keyed per image by (seed, the image's position in the data set), so
no value depends on batching; forward passes are chunked by the model's activation memory
(``ACTIVATION_BUDGET``, capped by ``max_batch``); constant attribution maps are counted in
``MetricResult.n_degenerate`` with a :class:`DegenerateAttributionWarning`.

The row functions and helpers (``morf_rows``, ``solve_imputation``, …) live in the functional
family modules (``explainreg.metrics.functional.imputation.solve_imputation``); ``explainreg.metrics.road``
and the other submodules are the modules themselves (the classes).
"""
from __future__ import annotations

from . import functional
from ._core import (ACTIVATION_BUDGET, MAX_BATCH, SEED_PERCENTILES, DegenerateAttributionWarning, Metric,
                    MetricResult, curve_result, results_frame, scalar_result)
from .complexity import Complexity, Sparseness
from .effective_complexity import EffectiveComplexity
from .perturbation import (Faithfulness, FaithfulnessCorrelation, LeRF, MaskedAccuracy, MoRF, PixelFlipping,
                           RegionPerturbation, RegionPerturbationLeRF)
from .registry import METRICS, SEED_TESTS, accepted_settings, build_metric
from .road import ROAD, ROADLeRF
from .roar import ROAR
from .robustness import GaussianNoise, MaxSensitivity, SquareBlocks

from .ground_truth import AUP, AUR  # noqa: E402,I001
from .functional.ground_truth import (aup, aup_aur, aur, ground_truth_curves, random_ranking,  # noqa: E402
                                      ranking_precision_recall)
from .localisation import (LOCALISATION_METRICS, AttributionLocalisation, LocalisationAUC,  # noqa: E402
                           MaskMetric, PointingGame, RelevanceMassAccuracy, RelevanceRankAccuracy,
                           TopKIntersection, WrongReason)
from .functional.localisation import (attribution_localisation, localisation_auc, pointing_game,  # noqa: E402
                                      relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
                                      wrong_reason)

from .shortcut import (SHORTCUT_METRICS, DecisionShare, FlipRate, GroupAccuracy,  # noqa: E402
                       ShortcutReliance)
from .text import Comprehensiveness, Sufficiency  # noqa: E402

__all__ = [
    "ACTIVATION_BUDGET", "MAX_BATCH", "METRICS", "SEED_PERCENTILES", "SEED_TESTS",
    "DegenerateAttributionWarning", "Metric", "MetricResult", "accepted_settings", "build_metric", "curve_result",
    "functional", "results_frame", "scalar_result",
    "Complexity", "EffectiveComplexity", "Faithfulness", "FaithfulnessCorrelation", "GaussianNoise", "LeRF",
    "MaskedAccuracy", "MaxSensitivity", "MoRF", "PixelFlipping", "ROAD", "ROADLeRF", "ROAR", "RegionPerturbation",
    "RegionPerturbationLeRF", "Sparseness", "SquareBlocks",
    # ground truth and localisation (registered; they take masks or the ground truth, class facts
    # mask_meaning and needs_ground_truth)
    "AUP", "AUR", "aup", "aup_aur", "aur", "ground_truth_curves", "random_ranking", "ranking_precision_recall",
    "LOCALISATION_METRICS", "AttributionLocalisation", "LocalisationAUC", "MaskMetric", "PointingGame",
    "RelevanceMassAccuracy", "RelevanceRankAccuracy", "TopKIntersection", "WrongReason",
    "attribution_localisation", "localisation_auc", "pointing_game", "relevance_mass_accuracy",
    "relevance_rank_accuracy", "top_k_intersection", "wrong_reason",
    # behavioural shortcut evidence (registered; they take the must-not-use mask)
    "SHORTCUT_METRICS", "DecisionShare", "FlipRate", "GroupAccuracy", "ShortcutReliance",
    # ERASER on token ids (registered; layouts ("tokens",))
    "Comprehensiveness", "Sufficiency",
]
