"""Complexity (entropy), sparseness (Gini) and effective complexity of attributions as functions of one
batch (Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model explanations";
Chalasani et al. 2020, "Concise explanations of neural networks using adversarial training"; Nguyen &
Martínez 2020); complexity is the seed's test 3. No model is needed: they read the attributions alone.

Effective complexity counts |{k : |a_k| > ε}| (lower is better). ``convention="quantus"`` first divides the
attributions by max |a| over the whole batch, as ``quantus.EffectiveComplexity`` 0.6 does by default
(``normalise=True``); the default ``"explainreg"`` counts the raw |a_k| > ε, so an image's count does not
depend on its batch.
"""
from __future__ import annotations

from typing import Any

import torch

from ..._validation import Interval, validate
from .._core import CONVENTIONS, QUANTUS_CONVENTIONS, check_convention, check_inputs, reduce_rows, scores_value
from ._settings import check_settings
from .removal import _zero_padding

Tensor = torch.Tensor


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
                :func:`~explainreg.metrics.functional.perturbation.series_real`): padding gets no share of p.

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


# ---------------------------------------------------------------------------------------- complexity
def complexity(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean entropy H = −Σ_k p_k log p_k of p = |a| / Σ|a| (Bhatt, Weller & Moura 2020; lower is better).

    Args:
        attributions: the maps, B×... (no model needed).
        reduction: ``"mean"`` or ``"none"``.
        settings: ``convention`` (``"explainreg"``, ``"seed"``: log(p + 0.01), ``"quantus"``) of
            :func:`explainreg.metrics.functional.complexities.complexity_scores`.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B entropies (NaN for all-zero maps).

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.complexity(a, reduction="none").abs()       # one-hot: 0, uniform: log 16
    tensor([0.0000, 2.7726], dtype=torch.float64)
    """
    check_settings(complexity_scores, 1, settings)
    return reduce_rows(complexity_scores(attributions, **settings), reduction, scores_value)


def sparseness(attributions: Tensor, *, reduction: str = "mean", **settings: Any) -> Tensor:
    """Mean Gini index of |a| (Chalasani et al. 2020, "Concise explanations of neural networks using adversarial
    training"; higher is better).

    Args:
        attributions: the maps, B×... (no model needed).
        reduction: ``"mean"`` or ``"none"``.
        settings: ``convention`` (``"explainreg"`` or ``"quantus"``) of
            :func:`explainreg.metrics.functional.complexities.sparseness_scores`.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B Gini indices.

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.sparseness(a, reduction="none")             # one-hot: (N − 1)/N, uniform: 0
    tensor([0.9375, 0.0000], dtype=torch.float64)
    """
    check_settings(sparseness_scores, 1, settings)
    return reduce_rows(sparseness_scores(attributions, **settings), reduction, scores_value)
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


def effective_complexity(attributions: Tensor, *, eps: float = 1e-5, convention: str = "explainreg",
                         reduction: str = "mean") -> Tensor:
    """Mean number of entries with |a| > ``eps`` (Nguyen & Martínez 2020, "On quantitative aspects of model
    interpretability"; lower is better).

    Args:
        attributions: the maps, B×....
        eps: the threshold ε ≥ 0.
        convention: ``"explainreg"`` (raw |a|) or ``"quantus"`` (|a| / max |a| over the batch first).
        reduction: ``"mean"`` or ``"none"``.

    Shape:
        attributions: (B, ...); output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B counts.

    Example::

    >>> import torch; from explainreg.metrics import functional as MF
    >>> a = torch.zeros(2, 1, 4, 4); a[0, 0, 0, 0] = 1.0; a[1] = 1.0
    >>> MF.effective_complexity(a)
    tensor(8.5000, dtype=torch.float64)
    """
    return reduce_rows(effective_complexity_scores(attributions, eps=eps, convention=convention), reduction,
                       scores_value)


__all__ = ["complexity", "complexity_scores", "effective_complexity", "effective_complexity_scores", "sparseness",
    "sparseness_scores"]
