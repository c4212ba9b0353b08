"""Evaluation of attributions, the torchmetrics way round.

- :mod:`explainreg.metrics.functional`: each metric as a function of one batch returning tensors
  (``functional.morf(model, x, y, a)`` → the value; ``reduction="none"`` → per-image rows;
  ``functional.morf_curve`` → B×S curves).
- the classes, accumulating over batches: ``update(model, x, y, attributions)`` per batch,
  ``compute() -> MetricResult`` (``name`` and ``higher_is_better`` are class facts), registered by
  name with :func:`register_metric` and built by :func:`build_metric`; results become tidy pandas
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

The helpers explainreg 0.1 exported here (``trapezoid``, ``solve_imputation``, ``morf_curve``, …) are
importable from their modules (``explainreg.metrics.road.solve_imputation``); reached through
``explainreg.metrics`` they work for one release, with a ``DeprecationWarning``.
"""
from __future__ import annotations

import importlib
import warnings

from . import functional
from ._core import (ACTIVATION_BUDGET, MAX_BATCH, SEED_PERCENTILES, DegenerateAttributionWarning, Metric,
                    MetricResult, curve_result, results_frame, scalar_result)
from .complexity import Complexity, Sparseness
from .effective_complexity import EffectiveComplexity
from .perturbation import (Faithfulness, FaithfulnessCorrelation, LeRF, MaskedAccuracy, MoRF, PixelFlipping,
                           RegionPerturbation, RegionPerturbationLeRF)
from .registry import (METRIC_ALIASES, METRICS, SEED_TESTS, accepted_settings, build_metric, register_metric,
                       resolve_metric)
from .road import ROAD, ROADLeRF
from .roar import ROAR
from .robustness import GaussianNoise, MaxSensitivity, SquareBlocks

from .ground_truth import AUP, AUR, aup, aup_aur, aur, ground_truth_curves, random_ranking  # noqa: E402,I001
from .ground_truth import ranking_precision_recall  # noqa: E402
from .localisation import (LOCALISATION_METRICS, AttributionLocalisation, LocalisationAUC,  # noqa: E402
                           MaskMetric, PointingGame, RelevanceMassAccuracy, RelevanceRankAccuracy,
                           TopKIntersection, WrongReason, attribution_localisation, localisation_auc,
                           pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
                           wrong_reason)

from .shortcut import (SHORTCUT_METRICS, DecisionShare, FlipRate, GroupAccuracy,  # noqa: E402
                       ShortcutReliance)

# Deprecated for one release: these names are also submodules, so they are bound here (as before)
# rather than served by __getattr__ below; complexity and road warn when called.
from .complexity import complexity  # noqa: E402,F811
from .road import road  # noqa: E402,F811
from .roar import roar  # noqa: E402,F811

__all__ = [
    "ACTIVATION_BUDGET", "MAX_BATCH", "METRICS", "METRIC_ALIASES", "SEED_PERCENTILES", "SEED_TESTS",
    "DegenerateAttributionWarning", "Metric", "MetricResult", "accepted_settings", "build_metric", "curve_result",
    "functional", "register_metric", "resolve_metric", "results_frame", "scalar_result",
    "Complexity", "EffectiveComplexity", "Faithfulness", "FaithfulnessCorrelation", "GaussianNoise", "LeRF",
    "MaskedAccuracy", "MaxSensitivity", "MoRF", "PixelFlipping", "ROAD", "ROADLeRF", "ROAR", "RegionPerturbation",
    "RegionPerturbationLeRF", "Sparseness", "SquareBlocks",
    # ground truth and localisation (they take masks, not registered in METRICS)
    "AUP", "AUR", "aup", "aup_aur", "aur", "ground_truth_curves", "random_ranking", "ranking_precision_recall",
    "LOCALISATION_METRICS", "AttributionLocalisation", "LocalisationAUC", "MaskMetric", "PointingGame",
    "RelevanceMassAccuracy", "RelevanceRankAccuracy", "TopKIntersection", "WrongReason",
    "attribution_localisation", "localisation_auc", "pointing_game", "relevance_mass_accuracy",
    "relevance_rank_accuracy", "top_k_intersection", "wrong_reason",
    # behavioural shortcut evidence (registered; they take the must-not-use mask)
    "SHORTCUT_METRICS", "DecisionShare", "FlipRate", "GroupAccuracy", "ShortcutReliance",
]

#: names explainreg 0.1 exported here, and the module that holds each (deprecated here).
_MOVED = {
    **dict.fromkeys(("above_percentile_masks", "activation_bytes", "degenerate_maps", "nonzero_percentile",
                     "rows_per_forward", "trapezoid"), "_core"),
    **dict.fromkeys(("descending_ranks", "keyed_draw"), "explainreg._random"),
    **dict.fromkeys(("faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores",
                     "faithfulness_scores", "keyed_subsets", "lerf", "masked_accuracy", "masked_accuracy_rows",
                     "morf", "morf_curve", "pixel_flipping", "pixel_flipping_curve", "region_perturbation",
                     "region_perturbation_curve"), "perturbation"),
    **dict.fromkeys(("complexity_scores", "sparseness", "sparseness_scores"), "complexity"),
    **dict.fromkeys(("noisy_linear_imputation", "road_rows", "solve_imputation"), "road"),
    **dict.fromkeys(("fresh_copy", "remove_top", "roar", "roar_curve"), "roar"),
    **dict.fromkeys(("gaussian_noise", "gaussian_noise_rows", "max_sensitivity", "max_sensitivity_scores",
                     "square_block_images", "square_block_rows", "square_blocks"), "robustness"),
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    where = _MOVED[name]
    module = importlib.import_module(where if where.startswith("explainreg.") else f"{__name__}.{where}")
    shown = where if where.startswith("explainreg.") else f"{__name__}.{where}"
    warnings.warn(f"explainreg.metrics.{name} is deprecated here: import it from {shown} (the tensor-returning "
                  f"functions are in explainreg.metrics.functional)", DeprecationWarning, stacklevel=2)
    return getattr(module, name)
