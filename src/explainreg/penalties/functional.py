"""The pure function of every penalty, in one place (the classes of :mod:`explainreg.penalties`
hold their settings and call these).

Defined here, the six input-gradient constraints of "Constraining explanations" (the
xai-constrained-losses seed): :func:`gradient_l1`, :func:`smoothness` (and
:func:`smoothness_along_time` for series), :func:`locality`, :func:`fidelity`,
:func:`consistency`, :func:`symmetry`. ``g`` is the signed input gradient (B×C×H×W) and ``ĝ`` its
per-sample min–max normalisation. All return the raw scalar R and are differentiable w.r.t.
anything ``g`` depends on.

Re-exported from beside their classes (one definition each): CDEP (Rieger et al. 2020)
:func:`cdep`, :func:`cdep_share`, :func:`cdep_text`, :func:`cdep_text_penalty`; RRR (Ross et al.
2017) :func:`rrr`; Expected Gradients (Erion et al. 2021) :func:`expected_gradients`,
:func:`expected_gradient_terms`, :func:`expected_gradients_penalty`,
:func:`expected_gradients_seed_penalty`; Saliency Guided Training (Ismail et al. 2021)
:func:`saliency_guided_mask`, :func:`saliency_guided_tokens`, :func:`kl_divergence`; the XIL
penalties (Friedrich et al. 2023) :func:`grad_cam`, :func:`rrr_gradcam`, :func:`hint`,
:func:`influence_gradient`, :func:`rbr`.

Example:
    >>> import torch
    >>> g = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]])
    >>> gradient_l1(g)
    tensor(1.)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .._validation import SEED_CONVENTIONS, check_convention
from ..inputs import real_mean
from ..gradients import gradient_of, minmax_normalize, resolve_score
from ..transforms import rotate


def gradient_l1(g: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """R = mean over all B·C·H·W entries of |g|; with ``real`` (0/1, broadcastable against g: the real
    positions of a padded batch), the mean over the real entries only.

    Example:
        >>> gradient_l1(torch.tensor([[1.0, -3.0]]))
        tensor(2.)
        >>> gradient_l1(torch.tensor([[1.0, -3.0, 0.0]]), real=torch.tensor([[1.0, 1.0, 0.0]]))
        tensor(2.)
    """
    return real_mean(g.abs(), real)


def smoothness(g: torch.Tensor, offset: int = 1, *, convention: str = "explainreg") -> torch.Tensor:
    """Anisotropic total variation of g with neighbours ``offset`` pixels apart:
    R = mean |g[..,i,j] − g[..,i−o,j]| + mean |g[..,i,j] − g[..,i,j−o]| over valid pairs (no padding).

    ``convention="seed"`` reproduces the seed's pad-then-roll code: o = 2 with zero padding, i.e.
    R = mean_{b,i,j}(|g_ij − g_{i−2,j}| + |g_ij − g_{i,j−2}|) with out-of-range neighbours 0
    """
    if check_convention("smoothness", convention, SEED_CONVENTIONS) == "seed":
        down = F.pad(g, (0, 0, 2, 0))[..., : g.shape[-2], :]
        right = F.pad(g, (2, 0, 0, 0))[..., :, : g.shape[-1]]
        return (g - down).abs().mean() + (g - right).abs().mean()
    if offset < 1 or offset >= min(g.shape[-2:]):
        raise ValueError(f"offset must be in [1, {min(g.shape[-2:]) - 1}] for {tuple(g.shape[-2:])} maps, got {offset}")
    vertical = (g[..., offset:, :] - g[..., :-offset, :]).abs().mean()
    horizontal = (g[..., :, offset:] - g[..., :, :-offset]).abs().mean()
    return vertical + horizontal


def smoothness_along_time(g: torch.Tensor, offset: int = 1, real: torch.Tensor | None = None) -> torch.Tensor:
    """Total variation of a series saliency g (B×C×T) along time only:
    R = mean over b, c and valid t of |g[b, c, t] − g[b, c, t − o]| (no padding; channels unordered).
    ``real`` (B×T or B×1×T, 1 at real steps) restricts the pairs to those whose two steps are real, so
    the padded steps of variable-length series never count.

    Example:
        >>> smoothness_along_time(torch.tensor([[[0.0, 1.0, 3.0]]]))
        tensor(1.5000)
        >>> smoothness_along_time(torch.tensor([[[0.0, 1.0, 0.0]]]), real=torch.tensor([[1, 1, 0]]))
        tensor(1.)
    """
    if offset < 1 or offset >= g.shape[-1]:
        raise ValueError(f"offset must be in [1, {g.shape[-1] - 1}] for series of {g.shape[-1]} steps, got {offset}")
    steps = (g[..., offset:] - g[..., :-offset]).abs()
    if real is None:
        return steps.mean()
    real = real.to(g.dtype).reshape(g.shape[0], 1, g.shape[-1])
    return real_mean(steps, real[..., offset:] * real[..., :-offset])


def input_target(x: torch.Tensor) -> torch.Tensor:
    """Locality's default target: the channel mean of x, min–max normalised per sample (B×1×H×W)."""
    return minmax_normalize(x.detach().mean(1, keepdim=True))


def locality(g: torch.Tensor, target: torch.Tensor, eps: float = 0.01,
             real: torch.Tensor | None = None) -> torch.Tensor:
    """R = −mean_{b,pixels}[t·log(ĝ+ε) + (1−t)·log(1−ĝ+ε)]: a soft binary cross-entropy pushing
    the normalised saliency ĝ towards the target map t ∈ [0,1] (broadcast over channels). ``real``
    (0/1, the real positions of a padded batch): ĝ and the mean over the real positions only."""
    g_hat = minmax_normalize(g, real=real)
    target = target.to(g_hat.dtype).expand_as(g_hat)
    return -real_mean(target * torch.log(g_hat + eps) + (1 - target) * torch.log(1 - g_hat + eps), real)


def fidelity(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, g: torch.Tensor,
             logits: torch.Tensor, threshold: float = 0.1, real: torch.Tensor | None = None) -> torch.Tensor:
    """x_m = x ⊙ (1 − ĝ), d_b = |cos(f(x)_b, f(x_m)_b)|, R = max(0, mean_b d_b − threshold).

    For C > 1, ĝ is that of the channel-summed gradient, broadcast over channels. ``real`` (B×1×T,
    padded series): ĝ normalised over the real steps, 0 at padding (padding is left as it is).
    """
    g_hat = minmax_normalize(g.sum(1, keepdim=True) if g.shape[1] > 1 else g, real=real)
    masked_logits = model(x * (1 - g_hat))
    d = F.cosine_similarity(logits, masked_logits, dim=1).abs()
    return F.relu(d.mean() - threshold)


#: floor on the input distance 1 − cos(x_i, x_j) in :func:`consistency` (see there)
CONSISTENCY_MIN_DISTANCE = 1e-3


def consistency(g: torch.Tensor, x: torch.Tensor, predicted: torch.Tensor, eps: float = 1e-8,
                min_distance: float = CONSISTENCY_MIN_DISTANCE, real: torch.Tensor | None = None) -> torch.Tensor:
    """R = (1/B) Σ_{i<j, same predicted class} (1 − cos(ĝ_i, ĝ_j)) / (max(1 − cos(x_i, x_j), δ) + ε).

    The floor δ = ``min_distance`` (default 1e-3) guards the ratio: without it, two constant or
    near-identical images (1 − cos(x_i, x_j) ≈ 0) make a pair's term (1 − cos ĝ)/ε, up to 2e8 for
    ε = 1e-8 (5e5 was seen on constant images), so one pair outweighs the whole batch. With the
    floor each pair's term is at most 2/δ = 2000. δ lies below the input distance of every
    same-class pair of the first 3,000 train images of MNIST (smallest 0.017) and Fashion-MNIST
    (0.006), so on real images the penalty is the published one (documentation: methods/gradient); such
    pairs are kept, not left out, as near-duplicates should still explain alike.
    ``min_distance=0`` gives the unguarded definition.

    Args:
        g: saliency B×C×H×W; x: inputs B×...; predicted: (B,) predicted classes.
        eps: the definition's additive ε; min_distance: the floor δ ≥ 0.
        real: the real positions of a padded batch (0/1, broadcastable against g): ĝ over those, 0 at padding.
    Returns:
        the scalar R (differentiable w.r.t. ``g``).
    """
    if min_distance < 0:
        raise ValueError(f"min_distance must be ≥ 0, got {min_distance}")
    g_unit = F.normalize(minmax_normalize(g, real=real).flatten(1), dim=1, eps=1e-12)
    x_unit = F.normalize(x.detach().flatten(1), dim=1, eps=1e-12)
    saliency_gap = 1 - g_unit @ g_unit.T
    input_gap = (1 - x_unit @ x_unit.T).clamp_min(min_distance)
    pairs = (predicted[:, None] == predicted[None, :]).triu(diagonal=1)
    return (saliency_gap / (input_gap + eps))[pairs].sum() / g.shape[0]


def symmetry(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
             degrees: float, score: str | None = None, interpolation: str = "nearest") -> torch.Tensor:
    """x_r = rotate(x, θ), g_r = saliency at x_r; R = mean_b (1 − |cos(g_r,b, rotate(g_b, θ))|)."""
    x_rot = rotate(x.detach(), degrees, interpolation).requires_grad_(True)
    with torch.enable_grad():
        g_rot = gradient_of(model(x_rot), x_rot, y, resolve_score(score), create_graph=True)
    rotated_g = rotate(g, degrees, interpolation)
    return (1 - F.cosine_similarity(g_rot.flatten(1), rotated_g.flatten(1), dim=1, eps=1e-12).abs()).mean()


# The pure functions of the annotation, saliency-guided, text and XIL penalties live beside their
# classes; they are re-exported here so that every penalty's functional form is in one place.
from .annotation import (cdep, cdep_share, expected_gradient_terms, expected_gradients,  # noqa: E402
                         expected_gradients_penalty, expected_gradients_seed_penalty, rrr)
from .saliency_guided import kl_divergence, saliency_guided_mask  # noqa: E402
from .text import cdep_text, cdep_text_penalty, saliency_guided_tokens  # noqa: E402
from ..gradcam import grad_cam  # noqa: E402
from .xil import hint, influence_gradient, rbr, rrr_gradcam  # noqa: E402

__all__ = [
    "cdep", "cdep_share", "cdep_text", "cdep_text_penalty", "consistency", "expected_gradient_terms",
    "expected_gradients", "expected_gradients_penalty", "expected_gradients_seed_penalty", "fidelity", "grad_cam",
    "gradient_l1", "hint", "influence_gradient", "input_target", "kl_divergence", "locality", "rbr", "rrr",
    "rrr_gradcam", "saliency_guided_mask", "saliency_guided_tokens", "smoothness", "smoothness_along_time",
    "symmetry",
]
