"""Effective complexity (Nguyen & Martínez 2020) as an accumulating class over
:func:`explainreg.metrics.functional.complexities.effective_complexity_scores`: the number of features whose
attribution exceeds a threshold in absolute value (lower is better).
"""
from __future__ import annotations

from .._validation import validate
from ._core import QUANTUS_CONVENTIONS, check_convention
from .complexity import AttributionScore
from .functional.complexities import _EPS, effective_complexity_scores
from .registry import METRICS


@METRICS.register("effective_complexity")
class EffectiveComplexity(AttributionScore):
    """Mean effective complexity |{k : |a_k| > ε}| over all images (lower is better).

        Nguyen & Martínez (2020), "On quantitative aspects of model interpretability".

        Args:
            eps: the threshold ε ≥ 0.
            convention: ``"explainreg"`` (raw |a|) or ``"quantus"`` (|a| / max |a| over the batch first).

        Shape:
            ``update(None, x, y, attributions)``: attributions (B, ...).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` (``per_image``: the B counts).

        Example::

        >>> import torch; from explainreg.metrics import EffectiveComplexity
        >>> a = torch.tensor([[0.0, 0.5, -2.0], [0.0, 0.0, 1e-6]])
        >>> EffectiveComplexity()(None, None, None, a).value
        1.0
        >>> EffectiveComplexity(eps=0.3, convention="quantus")(None, None, None, a).value   # |a| / 2 > 0.3
        0.5
    """

    name = "effective_complexity"
    higher_is_better = False
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, eps: float = 1e-5, convention: str = "explainreg") -> None:
        super().__init__()
        validate("EffectiveComplexity", eps=(eps, _EPS))
        self.eps, self.convention = float(eps), check_convention("EffectiveComplexity", convention, self.conventions)

    def scores(self, attributions):
        return effective_complexity_scores(attributions, eps=self.eps, convention=self.convention)


__all__ = ["EffectiveComplexity"]
