"""Complexity (entropy) and sparseness (Gini) of attributions (Bhatt, Weller & Moura 2020,
"Evaluating and aggregating feature-based model explanations"; Chalasani et al. 2020, "Concise explanations of
neural networks using adversarial training"); the seed's test 3.

No model is needed: ``update(None, x, y, attributions)`` or the functions on attributions alone.
"""
from __future__ import annotations

from typing import Any

import torch

from ._core import (CONVENTIONS, QUANTUS_CONVENTIONS, Metric, MetricResult, check_convention, check_inputs,
                    scalar_result)
from .perturbation import PaddedSeries, _zero_padding
from .registry import METRICS


def _check_attr(attributions: torch.Tensor) -> torch.Tensor:
    if not isinstance(attributions, torch.Tensor) or not attributions.is_floating_point():
        raise TypeError("attributions must be a floating-point tensor B×...")
    if attributions.dim() < 2:
        raise ValueError(f"attributions must be batched (B×...), got shape {tuple(attributions.shape)}")
    check_inputs(attributions.new_zeros(attributions.shape), None, attributions)
    return attributions.detach().flatten(1).double()


def complexity_scores(attributions: torch.Tensor, *, convention: str = "explainreg",
                      real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image entropy H = −Σ_k p_k log p_k of p = |a| / Σ|a| (0·log 0 = 0); NaN for an all-zero map.

        Complexity as in Bhatt, Weller & Moura (2020), "Evaluating and aggregating feature-based model
        explanations".

        Args:
            attributions: the maps (no model needed).
            convention: ``"explainreg"`` (the exact entropy), ``"seed"`` (the seed code's
                H = −Σ p_k log(p_k + 0.01)) or ``"quantus"`` (as ``quantus.Complexity``: a / max|a| over the
                whole batch, then |·|, then log(p + 1e-12)).
            real: for padded series, the real steps (B×1×T, 1 = real; see
                :func:`~explainreg.metrics.perturbation.series_real`): padding gets no share of p.

        Shape:
            attributions: (B, ...); output: (B,), float64.

        Returns:
            The B entropies. A one-hot map scores 0, a uniform one log(N).

        Example::

        >>> import torch
        >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
        >>> complexity_scores(a).abs()
        tensor([0.0000, 2.7726], dtype=torch.float64)
        >>> complexity_scores(a, convention="seed")
        tensor([-0.0100,  2.6242], dtype=torch.float64)
    """
    convention = check_convention("complexity_scores", convention, CONVENTIONS)
    a = _check_attr(_zero_padding(attributions, real))
    if convention == "quantus":
        top = a.abs().max()
        a = a / top if top > 0 else a
    a = a.abs()
    total = a.sum(1, keepdim=True)
    p = a / total
    if convention == "seed":
        h = -(p * torch.log(p + 0.01)).sum(1)
    elif convention == "quantus":
        h = -(p * torch.log(p + 1e-12)).sum(1)
    else:
        h = -torch.special.xlogy(p, p).sum(1)
    return torch.where(total.squeeze(1) > 0, h, torch.full_like(h, float("nan")))


def sparseness_scores(attributions: torch.Tensor, *, convention: str = "explainreg",
                      real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image Gini index of |a| (Chalasani et al. 2020, "Concise explanations of neural networks using adversarial
    training").

    Args:
        attributions: the maps (no model needed).
        convention: ``"explainreg"`` or ``"quantus"`` (as ``quantus.Sparseness``: a / max|a| over the
            batch, |·|, then + 1e-7 to every entry).
        real: for padded series, the real steps (B×1×T, 1 = real): the index of each image over its N_b
            real entries only.

    Shape:
        attributions: (B, ...); output: (B,), float64.

    Returns:
        With |a| sorted increasingly, G = Σ_k (2k − N − 1) a_(k) / (N Σ a): 0 for a uniform map,
        (N − 1)/N for a one-hot one, NaN for an all-zero map.

    Example::

    >>> import torch
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> sparseness_scores(a)
    tensor([0.9375, 0.0000], dtype=torch.float64)
    """
    check_convention("sparseness_scores", convention, QUANTUS_CONVENTIONS)
    a = _check_attr(_zero_padding(attributions, real)).abs()
    keep = torch.ones_like(a, dtype=torch.bool) if real is None else \
        (real.to(a.device) > 0).expand(attributions.shape).flatten(1)
    if convention == "quantus":
        top = a.max()
        a = (a / top if top > 0 else a) + 1e-7
    n = keep.sum(1, keepdim=True).to(a.dtype)                       # N_b real entries, sorted first
    s = a.masked_fill(~keep, float("inf")).sort(1).values
    k = torch.arange(1, a.shape[1] + 1, dtype=s.dtype, device=s.device).expand_as(s)
    s = torch.where(k <= n, s, torch.zeros_like(s))
    total = s.sum(1)
    g = ((2 * k - n - 1) * s).sum(1) / (n.squeeze(1) * total)
    return torch.where(total > 0, g, torch.full_like(g, float("nan")))


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




__all__ = ["AttributionScore", "Complexity", "Sparseness", "complexity_scores", "sparseness_scores"]
