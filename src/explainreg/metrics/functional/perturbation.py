"""Removal (perturbation) metrics as functions of one batch: MoRF / LeRF, the seed's cumulative
faithfulness, the Bhatt et al. faithfulness correlation, pixel flipping, region perturbation and SGT's masked accuracy
(the seed code of "Learning interpretable explanations by optimising saliency maps at training time",
IPL-UV xAI-constrained-losses; Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning interpretability by
saliency guided training"; Samek et al. 2017; Bach et al. 2015; Bhatt, Weller & Moura 2020). Every perturbed
copy of every image of a batch goes through one stack of forward passes chunked by the activation budget
(``max_batch`` caps the rows).

Rankings (pixel flipping, region perturbation, masked accuracy) break ties by a seeded random order
per image (:func:`explainreg._random.descending_ranks`, keyed by ``seed`` and the image's position
in the data set), not by raster order. The seed's percentile rules (MoRF, LeRF, faithfulness, ROAR)
need no tie-break: entries tied in value are removed together (a > q). Random subsets
(faithfulness correlation) and random region orders are drawn per image the same way, so no value
depends on the batching.

Each metric's functions live in their own module, re-exported here:
:mod:`~explainreg.metrics.functional.percentile_removal` (MoRF / LeRF),
:mod:`~explainreg.metrics.functional.faithfulness_measures`, :mod:`~explainreg.metrics.functional.flipping` (pixel flipping), :mod:`~explainreg.metrics.functional.regions` (region perturbation),
:mod:`~explainreg.metrics.functional.masking` (masked accuracy) and what they share,
:mod:`~explainreg.metrics.functional.removal`.
"""
from __future__ import annotations

from .faithfulness_measures import (faithfulness, faithfulness_correlation, faithfulness_correlation_scores,
                                    faithfulness_scores, keyed_subsets, random_subsets)
from .flipping import pixel_flipping, pixel_flipping_curve, pixel_flipping_rows
from .masking import SGT_DROPS, masked_accuracy, masked_accuracy_curve, masked_accuracy_rows
from .percentile_removal import lerf, lerf_curve, morf, morf_curve, morf_rows, morf_value
from .regions import region_perturbation, region_perturbation_curve, region_perturbation_rows
from .removal import per_image_auc_value, series_real

__all__ = ["SGT_DROPS", "faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores",
    "faithfulness_scores", "keyed_subsets", "lerf", "lerf_curve", "masked_accuracy", "masked_accuracy_curve",
    "masked_accuracy_rows", "morf", "morf_curve", "morf_rows", "morf_value", "per_image_auc_value", "pixel_flipping",
    "pixel_flipping_curve", "pixel_flipping_rows", "random_subsets", "region_perturbation",
    "region_perturbation_curve", "region_perturbation_rows", "series_real"]
