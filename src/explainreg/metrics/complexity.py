"""Complexity (entropy) and sparseness (Gini) of attributions as accumulating classes (the seed's test 3)
over :mod:`explainreg.metrics.functional.complexities`. No model is needed: ``update(None, x, y, attributions)``.
"""
from __future__ import annotations

import torch

from ._core import CONVENTIONS, QUANTUS_CONVENTIONS, Metric, check_convention, check_inputs, scalar_result
from .functional.complexities import complexity_scores, sparseness_scores
from .functional.removal import _zero_padding
from .perturbation import PaddedSeries
from .registry import METRICS


class AttributionScore(PaddedSeries, Metric):
    """A metric of the attributions alone (no model): per-image ``scores(attributions)``, their NaN-safe mean over
    images. On series padded to a common length pass ``padding_mask=`` (or ``lengths=``): padding never counts.

    Args:
        (none of its own; subclasses define ``scores``). All-zero maps count as degenerate.

    Shape:
        ``update(None, x, y, attributions)``: attributions (B, ...); x, when given, is checked against their shape.

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` with ``value`` the NaN-safe mean and
        ``per_image`` the scores.

    Example::

    >>> import torch; from explainreg.metrics import METRICS
    >>> from explainreg.metrics.complexity import AttributionScore
    >>> class MaxAttribution(AttributionScore):   # not registered: a one-off
    ...     name = "max_attribution"
    ...     def scores(self, a): return a.flatten(1).amax(1).double()
    >>> MaxAttribution()(None, None, None, torch.tensor([[1.0, 3.0], [2.0, 0.0]])).value
    2.5
    """

    needs_model = False
    degenerate = "zero"

    def scores(self, attributions: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def per_image(self, model, x, y, attributions):
        if x is not None:
            check_inputs(x, None, attributions)
        return self.scores(_zero_padding(attributions, self.batch_real))

    def summarize(self, rows):
        return scalar_result(self, rows)


@METRICS.register("complexity", aliases=("entropy",))
class Complexity(AttributionScore):
    """Mean entropy of p = |a| / Σ|a| over **all** images (lower is better); all-zero maps are NaN, skipped and counted.

        Bhatt, Weller & Moura (2020); the seed's test 3.

        Args:
            convention: ``"explainreg"``, ``"seed"`` or ``"quantus"`` (see :func:`complexity_scores`).
            validate_args: accepted for symmetry (no model is probed).

        Shape:
            ``update(None, x, y, attributions)``: attributions (B, ...).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` (``value``: the mean entropy,
            ``per_image``: B entropies).

        Example::

        >>> import torch; from explainreg.metrics import Complexity
        >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
        >>> round(Complexity()(None, None, None, a).value, 4)        # (0 + log 16) / 2
        1.3863
        >>> Complexity(convention="seed").settings()
        {'convention': 'seed'}
    """

    name = "complexity"
    higher_is_better = False

    conventions = CONVENTIONS

    def __init__(self, convention: str = "explainreg") -> None:
        super().__init__()
        self.convention = check_convention("Complexity", convention, self.conventions)

    def scores(self, attributions):
        return complexity_scores(attributions, convention=self.convention, real=self.batch_real)


@METRICS.register("sparseness", aliases=("gini",))
class Sparseness(AttributionScore):
    """Mean Gini index of |a| over all images (higher is better).

    Args:
        convention: ``"explainreg"`` or ``"quantus"`` (see :func:`sparseness_scores`).

    Shape:
        ``update(None, x, y, attributions)``: attributions (B, ...).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from explainreg.metrics import Sparseness
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> Sparseness()(None, None, None, a).value                  # (15/16 + 0) / 2
    0.46875
    """

    name = "sparseness"
    higher_is_better = True

    conventions = QUANTUS_CONVENTIONS

    def __init__(self, convention: str = "explainreg") -> None:
        super().__init__()
        self.convention = check_convention("Sparseness", convention, self.conventions)

    def scores(self, attributions):
        return sparseness_scores(attributions, convention=self.convention, real=self.batch_real)


__all__ = ["AttributionScore", "Complexity", "Sparseness"]
