"""Effective complexity (Nguyen & Martínez 2020): the number of features whose attribution exceeds a
threshold in absolute value, |{k : |a_k| > ε}| (lower is better: a simpler explanation).

``convention="quantus"`` first divides the attributions by max |a| over the whole batch, as
``quantus.EffectiveComplexity`` 0.6 does by default (``normalise=True``); the default
``"explainreg"`` counts the raw |a_k| > ε, so an image's count does not depend on its batch.
"""
from __future__ import annotations

import torch

from .._validation import Interval, validate
from ._core import QUANTUS_CONVENTIONS, check_convention, check_inputs
from .complexity import AttributionScore
from .registry import METRICS

_EPS = Interval(float, 0.0, None, closed="left")


def effective_complexity_scores(attributions: torch.Tensor, *, eps: float = 1e-5,
                                convention: str = "explainreg") -> torch.Tensor:
    """Per-image count |{k : |a_k| > ``eps``}| over all entries of each map (B×... → B, float64).

    Args:
        attributions: B×... attribution maps.
        eps: the threshold ε ≥ 0.
        convention: ``"explainreg"`` (raw |a|) or ``"quantus"`` (|a| / max |a| over the batch first).

    Example::

        >>> effective_complexity_scores(torch.tensor([[0.0, 0.5, -2.0], [0.0, 0.0, 1e-6]]))
        tensor([2., 0.], dtype=torch.float64)
    """
    validate("effective_complexity_scores", eps=(eps, _EPS))
    check_convention("effective_complexity_scores", convention, QUANTUS_CONVENTIONS)
    if not isinstance(attributions, torch.Tensor) or attributions.dim() < 2:
        got = tuple(attributions.shape) if isinstance(attributions, torch.Tensor) else type(attributions).__name__
        raise ValueError(f"attributions must be a batched tensor B×..., got {got}")
    check_inputs(attributions.new_zeros(attributions.shape), None, attributions)
    a = attributions.detach().flatten(1).double().abs()
    if convention == "quantus" and bool((a > 0).any()):
        a = a / a.max()
    return (a > eps).sum(1).double()


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


__all__ = ["EffectiveComplexity", "effective_complexity_scores"]
