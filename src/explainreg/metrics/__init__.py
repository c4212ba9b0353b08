"""Evaluation of attributions (methods.md A.5): every metric is a pure function and an accumulating
object (``update(model, x, y, attributions)`` per batch, ``compute() -> MetricResult``) with a
``higher_is_better`` attribute; results turn into tidy pandas tables (:func:`results_frame`).

Seed 1's six tests: :class:`MoRF`, :class:`Faithfulness`, :class:`Complexity`, :class:`ROAR`,
:class:`GaussianNoise`, :class:`SquareBlocks`; SGT's :class:`MaskedAccuracy`; and :class:`LeRF`,
:class:`FaithfulnessCorrelation`, :class:`Sparseness`, :class:`PixelFlipping`,
:class:`RegionPerturbation`, :class:`ROAD`, :class:`MaxSensitivity`, with ``convention="quantus"``
where Quantus 0.6 has the metric (see docs/metrics.md).

Random draws and tie-breaks are keyed per image by (seed, the image's position in the data set), so
no value depends on batching; forward passes are chunked by the model's activation memory
(``ACTIVATION_BUDGET``, capped by ``max_batch``); constant attribution maps are counted in
``MetricResult.n_degenerate`` with a :class:`DegenerateAttributionWarning`.
"""
from __future__ import annotations

from typing import Any

from .._random import descending_ranks, keyed_draw
from ._core import (ACTIVATION_BUDGET, MAX_BATCH, SEED_PERCENTILES, DegenerateAttributionWarning, Metric,
                    MetricResult, above_percentile_masks, activation_bytes, degenerate_maps, nonzero_percentile,
                    results_frame, rows_per_forward, trapezoid)
from .complexity import Complexity, Sparseness, complexity, complexity_scores, sparseness, sparseness_scores
from .perturbation import (Faithfulness, FaithfulnessCorrelation, LeRF, MaskedAccuracy, MoRF, PixelFlipping,
                           RegionPerturbation, faithfulness, faithfulness_correlation, faithfulness_correlation_scores,
                           faithfulness_scores, keyed_subsets, lerf, masked_accuracy, masked_accuracy_rows, morf, morf_curve,
                           pixel_flipping, pixel_flipping_curve, region_perturbation, region_perturbation_curve)
from .road import ROAD, noisy_linear_imputation, road, road_rows, solve_imputation
from .roar import ROAR, fresh_copy, remove_top, roar, roar_curve
from .robustness import (GaussianNoise, MaxSensitivity, SquareBlocks, gaussian_noise, gaussian_noise_rows,
                         max_sensitivity, max_sensitivity_scores, square_block_images, square_block_rows,
                         square_blocks)

#: Names accepted by :func:`build_metric` and ``explainreg evaluate --metrics``.
METRICS: dict[str, type[Metric]] = {
    "morf": MoRF, "lerf": LeRF, "faithfulness": Faithfulness, "faithfulness_correlation": FaithfulnessCorrelation,
    "complexity": Complexity, "sparseness": Sparseness, "roar": ROAR, "road": ROAD, "gaussian": GaussianNoise,
    "blocks": SquareBlocks, "masked_accuracy": MaskedAccuracy, "max_sensitivity": MaxSensitivity,
    "pixel_flipping": PixelFlipping, "region_perturbation": RegionPerturbation,
}
#: The seed's six tests (methods.md B.1 §1.5).
SEED_TESTS = ("morf", "faithfulness", "complexity", "roar", "gaussian", "blocks")


def resolve_metric(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    key = {"gauss": "gaussian", "gaussian_noise": "gaussian", "square_blocks": "blocks", "entropy": "complexity",
           "gini": "sparseness", "sgt": "masked_accuracy"}.get(key, key)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; metrics must be among {', '.join(METRICS)}")
    return key


def build_metric(name: str, **settings: Any) -> Metric:
    """An accumulating metric by name (see ``METRICS``) with its settings."""
    return METRICS[resolve_metric(name)](**settings)


__all__ = [
    "ACTIVATION_BUDGET", "DegenerateAttributionWarning", "activation_bytes", "degenerate_maps", "descending_ranks",
    "keyed_draw", "keyed_subsets", "rows_per_forward",
    "MAX_BATCH", "METRICS", "SEED_PERCENTILES", "SEED_TESTS", "Complexity", "Faithfulness", "FaithfulnessCorrelation",
    "GaussianNoise", "LeRF", "MaskedAccuracy", "MaxSensitivity", "Metric", "MetricResult", "MoRF", "PixelFlipping",
    "ROAD", "ROAR", "RegionPerturbation", "Sparseness", "SquareBlocks", "above_percentile_masks", "build_metric",
    "complexity", "complexity_scores", "faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores",
    "faithfulness_scores", "fresh_copy", "gaussian_noise", "gaussian_noise_rows", "lerf", "masked_accuracy",
    "masked_accuracy_rows", "max_sensitivity", "max_sensitivity_scores", "morf", "morf_curve",
    "noisy_linear_imputation", "nonzero_percentile", "pixel_flipping", "pixel_flipping_curve",
    "region_perturbation", "region_perturbation_curve", "remove_top", "resolve_metric", "results_frame", "road",
    "road_rows", "roar", "roar_curve", "solve_imputation", "sparseness", "sparseness_scores", "square_block_images",
    "square_block_rows",
    "square_blocks", "trapezoid",
]

from .ground_truth import (AUP, AUR, aup, aup_aur, aur, ground_truth_curves, random_ranking,  # noqa: E402
                           ranking_precision_recall)

__all__ += ["AUP", "AUR", "aup", "aup_aur", "aur", "ground_truth_curves", "random_ranking",
            "ranking_precision_recall"]

from .localisation import (LOCALISATION_METRICS, AttributionLocalisation, LocalisationAUC,  # noqa: E402
                           MaskMetric, PointingGame, RelevanceMassAccuracy, RelevanceRankAccuracy,
                           TopKIntersection, WrongReason, attribution_localisation, localisation_auc,
                           pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
                           wrong_reason)

__all__ += ["LOCALISATION_METRICS", "AttributionLocalisation", "LocalisationAUC", "MaskMetric", "PointingGame",
            "RelevanceMassAccuracy", "RelevanceRankAccuracy", "TopKIntersection", "WrongReason",
            "attribution_localisation", "localisation_auc", "pointing_game", "relevance_mass_accuracy",
            "relevance_rank_accuracy", "top_k_intersection", "wrong_reason"]
