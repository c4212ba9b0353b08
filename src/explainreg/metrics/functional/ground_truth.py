"""Saliency against a known ground-truth mask, as functions of one batch: precision / recall of the top-k ranking, and their
areas AUP and AUR (documentation: methods/saliency-guided; Ismail et al. 2020, the SGT poster's Table 2).

Per sample b with D features (every entry of C×T for series, of C×H×W for images), scores
s_b = |a_b| and ground truth m_b ∈ {0, 1}^D; the features sorted by s_b, descending (ties keep
index order), and the top-k set K_k:

    precision_b(k) = Σ_{i∈K_k} w_i m_i / Σ_{i∈K_k} w_i        recall_b(k) = Σ_{i∈K_k} w_i m_i / Σ_i w_i m_i

with w = 1 (``convention="explainreg"``, the contract's counts) or w = the per-sample min–max rescaled
|a| (``convention="benchmark"``: the benchmark's *weighted* precision and recall). For each fraction
f ∈ {0.1, …, 0.9}, k = ⌊f·D⌋ (at least 1; ``"explainreg"``), or the fewest top features that hold
a share f of the rescaled saliency mass (``"benchmark"``, its ``getIndexOfAllhighestSalientValues``).
Curves are averaged over samples (NaN-safe: a sample whose denominator is 0 is left out, as the
benchmark's counts do); AUP and AUR are their trapezoid areas over f. The random reference ranks the
same |a| values randomly permuted within each sample; Diff(AUP) = AUP − AUP(random).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..._validation import check_choice
from .._core import check_fractions, nanmean, reduce_rows, trapezoid

#: the benchmark's fractions 10 %, …, 90 %.
FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 10))
CONVENTIONS = ("explainreg", "benchmark")


def ranking_precision_recall(scores: torch.Tensor, mask: torch.Tensor, ks: torch.Tensor,
                             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision and recall of each sample's top-k features against a binary mask (shared with the
    localisation metrics: "how much of the ranking's top lies in the ground truth").

    precision[b, s] = Σ_{top ks[b,s]} w·m / Σ_{top ks[b,s]} w, recall[b, s] = Σ_{top ks[b,s]} w·m / Σ w·m,
    NaN where a denominator is 0. Features are ranked by ``scores`` descending, ties in index order;
    a score of −inf marks a feature that is never counted (padding).

    Args:
        scores: B×D ranking scores (higher = more important).
        mask: B×D ground truth (bool or {0, 1}).
        ks: B×S or S top-set sizes, each in [0, D].
        weights: optional B×D non-negative weights (default 1: counts).

    Returns:
        (precision, recall), each B×S float64.
    """
    if scores.dim() != 2 or mask.shape != scores.shape:
        raise ValueError(f"scores and mask must both be B×D of the same shape, got {tuple(scores.shape)} and "
                         f"{tuple(mask.shape)}")
    b, d = scores.shape
    ks = torch.as_tensor(ks, device=scores.device, dtype=torch.long)
    ks = ks.expand(b, -1) if ks.dim() == 1 else ks
    if ks.shape[0] != b or (ks.numel() and (int(ks.min()) < 0 or int(ks.max()) > d)):
        raise ValueError(f"ks must be S or B×S sizes in [0, {d}], got shape {tuple(ks.shape)}")
    w = torch.ones_like(scores, dtype=torch.float64) if weights is None else weights.double()
    w = torch.where(torch.isneginf(scores), torch.zeros_like(w), w)
    m = mask.to(torch.float64)
    order = scores.double().sort(dim=1, descending=True, stable=True).indices
    w_sorted, m_sorted = w.gather(1, order), m.gather(1, order)
    zero = torch.zeros(b, 1, dtype=torch.float64, device=scores.device)
    hits = torch.cat([zero, (w_sorted * m_sorted).cumsum(1)], 1).gather(1, ks)          # B×S
    taken = torch.cat([zero, w_sorted.cumsum(1)], 1).gather(1, ks)
    relevant = (w * m).sum(1, keepdim=True)
    nan = torch.full_like(hits, float("nan"))
    precision = torch.where(taken > 0, hits / taken.clamp_min(1e-300), nan)
    recall = torch.where(relevant > 0, hits / relevant.clamp_min(1e-300), nan)
    return precision, recall


def _flat_inputs(attributions: torch.Tensor, ground_truth: torch.Tensor, padding_mask: torch.Tensor | None):
    if not isinstance(attributions, torch.Tensor) or not attributions.is_floating_point():
        raise TypeError("attributions must be a floating-point tensor")
    gt = torch.as_tensor(ground_truth, device=attributions.device)
    if gt.shape != attributions.shape:
        raise ValueError(f"ground_truth {tuple(gt.shape)} must have the shape of the attributions "
                         f"{tuple(attributions.shape)} (same layout: B×C×T for series — a B×T×F mask needs "
                         "mask.transpose(1, 2))")
    if attributions.dim() < 2 or attributions.shape[0] == 0:
        raise ValueError(f"attributions must be a non-empty batch B×..., got {tuple(attributions.shape)}")
    if not torch.isfinite(attributions).all():
        raise ValueError("attributions contain NaN or inf; fix or drop those samples")
    scores = attributions.detach().abs().flatten(1).double()
    valid = None
    if padding_mask is not None:
        pm = torch.as_tensor(padding_mask, device=attributions.device).bool()
        if attributions.dim() == 3 and pm.shape == (attributions.shape[0], attributions.shape[2]):
            pm = pm[:, None, :].expand_as(attributions)
        if pm.shape != attributions.shape:
            raise ValueError(f"padding_mask must be B×T (series) or of the attributions' shape "
                             f"{tuple(attributions.shape)}, got {tuple(pm.shape)}")
        valid = pm.flatten(1)
        scores = torch.where(valid, scores, torch.full_like(scores, -torch.inf))
    truth = gt.flatten(1).bool() if valid is None else gt.flatten(1).bool() & valid
    return scores, truth, valid


def _rescaled(scores: torch.Tensor) -> torch.Tensor:
    """Per-sample min–max rescaling of |a| over the valid (finite) features, 0 at padding."""
    finite = torch.isfinite(scores)
    low = torch.where(finite, scores, torch.full_like(scores, torch.inf)).min(1, keepdim=True).values
    high = torch.where(finite, scores, torch.full_like(scores, -torch.inf)).max(1, keepdim=True).values
    span = (high - low)
    r = torch.where(span > 0, (scores - low) / span.clamp_min(1e-300), torch.ones_like(scores))
    return torch.where(finite, r, torch.zeros_like(r))


def ground_truth_curves(attributions: torch.Tensor, ground_truth: torch.Tensor,
                        fractions: Sequence[float] = FRACTIONS, *, convention: str = "explainreg",
                        padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample precision and recall curves B×S of |attributions| against ``ground_truth`` (same
    shape; ``padding_mask`` B×T or of that shape excludes padded steps). See the module docstring."""
    check_choice("convention", convention, CONVENTIONS)
    fr = torch.tensor(check_fractions("fractions", fractions, 0.0, 1.0), dtype=torch.float64)
    scores, truth, valid = _flat_inputs(attributions, ground_truth, padding_mask)
    fr = fr.to(scores.device)
    n_valid = (valid.sum(1, keepdim=True) if valid is not None
               else torch.full((scores.shape[0], 1), scores.shape[1], device=scores.device))
    if convention == "explainreg":
        ks = (fr[None, :] * n_valid + 1e-9).floor().long().clamp(min=1)
        ks = torch.minimum(ks, n_valid.long())
        return ranking_precision_recall(scores, truth, ks)
    weights = _rescaled(scores)
    mass = weights.sort(dim=1, descending=True, stable=True).values.cumsum(1)                  # B×D
    total = mass[:, -1:]
    ks = (mass[:, None, :] < fr[None, :, None] * total[:, :, None] - 1e-12).sum(2) + 1      # fewest with mass ≥ f
    ks = torch.minimum(ks, n_valid.long())
    return ranking_precision_recall(scores, truth, ks, weights)


def random_ranking(attributions: torch.Tensor, generator: torch.Generator | None = None,
                   padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The same values with the features permuted at random within each sample; with a
    ``padding_mask`` only the valid features are permuted, among the valid positions."""
    flat = attributions.detach().flatten(1)
    gen_device = generator.device if generator is not None else flat.device
    keys = torch.rand(flat.shape, generator=generator, device=gen_device, dtype=torch.float64).to(flat.device)
    if padding_mask is None:
        return flat.gather(1, keys.argsort(1)).view_as(attributions)
    pm = torch.as_tensor(padding_mask, device=flat.device).bool()
    if attributions.dim() == 3 and pm.shape == (attributions.shape[0], attributions.shape[2]):
        pm = pm[:, None, :].expand_as(attributions)
    invalid = (~pm.reshape(flat.shape)).double()
    source = (keys + 2 * invalid).argsort(1)                      # valid features in random order, then padding
    index = torch.arange(flat.shape[1], device=flat.device, dtype=torch.float64) / flat.shape[1]
    target = (index[None, :] + 2 * invalid).argsort(1)            # valid positions in order, then padding
    return flat.scatter(1, target, flat.gather(1, source)).view_as(attributions)


def aup_aur(attributions: torch.Tensor, ground_truth: torch.Tensor, fractions: Sequence[float] = FRACTIONS, *,
            convention: str = "explainreg", padding_mask: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> dict[str, float]:
    """AUP and AUR (trapezoid areas over ``fractions`` of the sample-mean curves), the same for the
    random reference ranking, and the differences ``diff_aup`` = AUP − AUP(random), ``diff_aur``."""
    fr = check_fractions("fractions", fractions, 0.0, 1.0)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    p, r = ground_truth_curves(attributions, ground_truth, fr, convention=convention, padding_mask=padding_mask)
    shuffled = random_ranking(attributions, gen, padding_mask)
    p0, r0 = ground_truth_curves(shuffled, ground_truth, fr, convention=convention, padding_mask=padding_mask)
    out = {name: float(curve_area(rows, fr)) for name, rows in (("aup", p), ("aur", r), ("aup_random", p0), ("aur_random", r0))}
    out["diff_aup"], out["diff_aur"] = out["aup"] - out["aup_random"], out["aur"] - out["aur_random"]
    out["n"] = int(attributions.shape[0])
    return out


def curve_area(rows: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """The trapezoid area over ``fractions`` of the NaN-safe sample mean of B×S curves (a 0-d float64 tensor)."""
    return trapezoid(nanmean(rows.detach().cpu().double(), 0), torch.tensor(list(fractions), dtype=torch.float64))


def aup(attributions: torch.Tensor, ground_truth: torch.Tensor, fractions: Sequence[float] = FRACTIONS, *,
        convention: str = "explainreg", padding_mask: torch.Tensor | None = None,
        reduction: str = "mean") -> torch.Tensor:
    """AUP: the area over ``fractions`` of the sample-mean top-k precision curve against ``ground_truth``
    (higher is better; :class:`~explainreg.metrics.AUP`'s value).

    Args:
        attributions: the maps (no model needed); ranked by |a|.
        ground_truth: the relevant features, of the attributions' shape (bool or {0, 1}).
        fractions: the top-set fractions f ∈ (0, 1).
        convention: ``"explainreg"`` (counts, k = ⌊f·D⌋) or ``"benchmark"`` (weighted by rescaled |a|).
        padding_mask: B×T (series) or of the attributions' shape; False marks padding, never counted.
        reduction: ``"mean"`` (the area, 0-d) or ``"none"`` (the B×S precision curves).

    Shape:
        attributions, ground_truth: (B, ...); output: () or (B, S), float64.

    Example::

        >>> import torch
        >>> a = torch.tensor([[4.0, 3.0, 2.0, 1.0]]); truth = torch.tensor([[1, 1, 0, 0]])
        >>> aup(a, truth, (0.25, 0.5, 0.75), reduction="none")      # top 1, 2, 3 features
        tensor([[1.0000, 1.0000, 0.6667]], dtype=torch.float64)
        >>> round(float(aup(a, truth, (0.25, 0.5, 0.75))), 4)
        0.4583
    """
    fr = check_fractions("fractions", fractions, 0.0, 1.0)
    p, _ = ground_truth_curves(attributions, ground_truth, fr, convention=convention, padding_mask=padding_mask)
    return reduce_rows(p, reduction, lambda rows: curve_area(rows, fr))


def aur(attributions: torch.Tensor, ground_truth: torch.Tensor, fractions: Sequence[float] = FRACTIONS, *,
        convention: str = "explainreg", padding_mask: torch.Tensor | None = None,
        reduction: str = "mean") -> torch.Tensor:
    """AUR: the area over ``fractions`` of the sample-mean top-k recall curve against ``ground_truth``
    (higher is better; :class:`~explainreg.metrics.AUR`'s value). Arguments as :func:`aup`.

    Shape:
        attributions, ground_truth: (B, ...); output: () or (B, S), float64.

    Example::

        >>> import torch
        >>> a = torch.tensor([[4.0, 3.0, 2.0, 1.0]]); truth = torch.tensor([[1, 1, 0, 0]])
        >>> aur(a, truth, (0.25, 0.5, 0.75), reduction="none")
        tensor([[0.5000, 1.0000, 1.0000]], dtype=torch.float64)
    """
    fr = check_fractions("fractions", fractions, 0.0, 1.0)
    _, r = ground_truth_curves(attributions, ground_truth, fr, convention=convention, padding_mask=padding_mask)
    return reduce_rows(r, reduction, lambda rows: curve_area(rows, fr))


__all__ = ["CONVENTIONS", "FRACTIONS", "aup", "aup_aur", "aur", "curve_area", "ground_truth_curves",
           "random_ranking", "ranking_precision_recall"]
