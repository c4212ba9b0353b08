"""The metrics as functions of one batch that return tensors (torchmetrics' ``functional``).

One naming rule: ``<metric>(model, x, y, attributions, **settings, reduction="mean")`` returns the
metric's value as a 0-d float64 tensor, the number its class reports (``MoRF()(…).value ==
morf(…).item()``); ``reduction="none"`` returns the per-image rows its class accumulates: B scores
for a scalar metric, B×S curves for a curve metric. A curve metric also has ``<metric>_curve`` (the
B×S per-image curves). The computations live here, one module per family
(:mod:`~explainreg.metrics.functional.perturbation`, :mod:`~explainreg.metrics.functional.complexities`,
:mod:`~explainreg.metrics.functional.robustness`, :mod:`~explainreg.metrics.functional.imputation` for
ROAD, :mod:`~explainreg.metrics.functional.text` for ERASER on token ids,
:mod:`~explainreg.metrics.functional.ground_truth` for AUP and AUR,
:mod:`~explainreg.metrics.functional.localisation` for the mask metrics: B scores per batch,
:mod:`~explainreg.metrics.functional.retraining` for ROAR, :mod:`~explainreg.metrics.functional.shortcut` for
the behavioural shortcut evidence), each with its row functions (B scores or B×S curves); the classes (:class:`~explainreg.metrics.MoRF`,
…) hold their settings and declared state and call those functions, batch by batch.
``validate_args=False`` skips the one-row probe forward pass that
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

from .complexities import complexity, effective_complexity, sparseness
from .ground_truth import aup, aup_aur, aur
from .imputation import road, road_curve
from .localisation import (attribution_localisation, localisation_auc, pointing_game, relevance_mass_accuracy,
                           relevance_rank_accuracy, top_k_intersection, wrong_reason)
from .perturbation import (faithfulness, faithfulness_correlation, lerf, lerf_curve, masked_accuracy,
                           masked_accuracy_curve, morf, morf_curve, pixel_flipping, pixel_flipping_curve,
                           region_perturbation, region_perturbation_curve)
from .retraining import roar_accuracies
from .robustness import gaussian_noise, gaussian_noise_curve, max_sensitivity, square_blocks, square_blocks_curve
from .shortcut import decision_share, flip_rate, group_accuracy, shortcut_reliance
from .text import eraser, token_deletion_curve

__all__ = [
    "complexity", "effective_complexity", "faithfulness", "faithfulness_correlation", "gaussian_noise",
    "gaussian_noise_curve", "lerf", "lerf_curve", "masked_accuracy", "masked_accuracy_curve", "max_sensitivity",
    "morf", "morf_curve", "pixel_flipping", "pixel_flipping_curve", "region_perturbation",
    "region_perturbation_curve", "road", "road_curve", "sparseness", "square_blocks", "square_blocks_curve",
    "eraser", "token_deletion_curve", "aup", "aup_aur", "aur", "attribution_localisation", "localisation_auc",
    "pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "top_k_intersection", "wrong_reason",
    "roar_accuracies", "decision_share", "flip_rate", "group_accuracy", "shortcut_reliance",
]
