"""Saliency Guided Training (Ismail et al. 2021; documentation: methods/saliency-guided; the SGT code).

Per batch, with a detached saliency g = ∂ log p_y / ∂x computed in eval mode:

    x̃ = x with its k = ⌊fraction · D⌋ lowest-ranked features replaced     (D = features per sample)
    R  = KL(p(x) ‖ p(x̃)) = (1/B) Σ_b Σ_c p_c(x_b) (log p_c(x_b) − log p_c(x̃_b))

ranked by |g| (``by="abs"``, the paper's text) or by signed g (``by="signed"``, the seed's code:
the most negative gradients). Masked features get U(min x_b, max x_b) values drawn per feature
from each image's own range (``fill="random"``, the seed's MNIST setting) or a constant. The
objective adds CE(f(x), y) and the weight λ (1 in the paper); both branches keep their graph.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._dist import shard_rand
from .._validation import Interval, Options, check_choice
from ..modes import eval_mode as _eval_mode
from ..gradients import resolve_score as _resolve_score
from ..gradients import float32, full_precision, input_gradient
from .base import PENALTIES, Penalty, PenaltyContext
from .text import saliency_guided_tokens

ORDERS = ("abs", "signed")


_FRACTION = Interval(float, 0.0, 1.0, closed="neither")
_FILL = (Options(("random",)), Interval(float, None, None))


def check_fraction(fraction: float) -> float:
    """``fraction`` must be a number in the open interval (0, 1)."""
    if not _FRACTION.is_satisfied_by(fraction):
        raise ValueError(f"fraction must be a number in (0, 1) (the share of features masked per sample, "
                         f"0.5 in the paper's MNIST setting); got {fraction!r}")
    return float(fraction)


def check_fill(fill: Any) -> str | float:
    """``fill`` must be ``"random"`` or a finite number."""
    if not any(c.is_satisfied_by(fill) for c in _FILL):
        raise ValueError(f"fill must be 'random' (U(min x_b, max x_b) per image) or a finite number; got {fill!r}")
    return fill if isinstance(fill, str) else float(fill)


def masked_count(num_features: int, fraction: float) -> int:
    """k = ⌊fraction · D⌋ (the seed's ``int(featuresDroped · C·H·W)``)."""
    return int(math.floor(check_fraction(fraction) * num_features + 1e-9))


def saliency_guided_mask(x: torch.Tensor, g: torch.Tensor, fraction: float = 0.5, by: str = "abs",
                         fill: str | float = "random", generator: torch.Generator | None = None, *,
                         k: int | None = None, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask the k lowest-ranked features of each sample; returns ``(x_masked, mask)``.

    Features are all D entries of a sample (C·H·W for images, T·F for sequences), ranked by |g|
    (``by="abs"``) or by g (``by="signed"``); the k = ⌊fraction·D⌋ lowest (or exactly ``k`` when
    given, 0 ≤ k ≤ D) are replaced by U(min x_b, max x_b) draws from ``generator``
    (``fill="random"``) or by the constant ``fill``. ``mask`` is a bool tensor of x's shape
    (True = replaced). One ``topk`` + ``scatter`` over the whole batch. ``x_masked`` is
    differentiable w.r.t. ``x`` at the kept features; ``g`` is only used for its order.

    ``valid`` (bool, broadcastable to x, e.g. B×1×T for padded series): only valid features are
    candidates and counted, k_b = ⌊fraction · (valid features of sample b)⌋; padding is never masked
    and does not enter the fill range.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(g, torch.Tensor):
        raise TypeError("x and g must be tensors")
    if g.shape != x.shape:
        raise ValueError(f"g must have the shape of x {tuple(x.shape)}, got {tuple(g.shape)}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch B×..., got shape {tuple(x.shape)}")
    check_choice("by", by, ORDERS)
    fill = check_fill(fill)
    b, d = x.shape[0], x[0].numel()
    if valid is not None:
        if k is not None:
            raise ValueError("give either k or valid (k then follows each sample's number of valid features)")
        return _masked_valid(x, g, fraction, by, fill, generator, valid)
    if k is None:
        k = masked_count(d, fraction)
    elif isinstance(k, bool) or int(k) != k or not 0 <= int(k) <= d:
        raise ValueError(f"k must be an integer number of features in [0, {d}], got {k!r}")
    k = int(k)
    flat = x.flatten(1)
    score = g.detach().flatten(1)
    if by == "abs":
        score = score.abs()
    index = score.topk(k, dim=1, largest=False, sorted=False).indices              # B×k
    mask = torch.zeros(b, d, dtype=torch.bool, device=x.device).scatter_(1, index, True)
    if fill == "random":
        low = flat.detach().min(1, keepdim=True).values
        high = flat.detach().max(1, keepdim=True).values
        device = generator.device if generator is not None else x.device
        u = shard_rand((b, k), generator, device, x.dtype).to(x.device)  # a rank's rows of the global draw
        values = low + (high - low) * u
    else:
        values = torch.full((b, k), fill, dtype=x.dtype, device=x.device)
    masked = flat.scatter(1, index, values)
    return masked.view_as(x), mask.view_as(x)


def _masked_valid(x: torch.Tensor, g: torch.Tensor, fraction: float, by: str, fill: str | float,
                  generator: torch.Generator | None, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`saliency_guided_mask` over the valid features only (k_b per sample; padding untouched)."""
    try:
        ok = torch.as_tensor(valid, device=x.device).to(torch.bool).expand_as(x).flatten(1)
    except RuntimeError as exc:
        raise ValueError(f"valid of shape {tuple(torch.as_tensor(valid).shape)} does not broadcast to x "
                         f"{tuple(x.shape)} (e.g. B×1×T for a B×T padding mask of B×C×T series)") from exc
    b, d = ok.shape
    counts = ok.sum(1)
    if bool((counts == 0).any()):
        raise ValueError("a sample has no valid feature (an empty series): drop it from the batch")
    k_b = torch.floor(check_fraction(fraction) * counts.to(torch.float64) + 1e-9).long()   # B
    k_max = int(k_b.max())
    flat = x.flatten(1)
    score = g.detach().flatten(1)
    if by == "abs":
        score = score.abs()
    score = score.masked_fill(~ok, float("inf"))                     # padding is never among the lowest
    index = score.topk(k_max, dim=1, largest=False, sorted=True).indices       # B×k_max, lowest first
    take = torch.arange(k_max, device=x.device).unsqueeze(0) < k_b.unsqueeze(1)   # B×k_max: within k_b
    mask = torch.zeros(b, d, dtype=torch.bool, device=x.device)
    mask.scatter_(1, index, take)
    if fill == "random":
        masked_x = flat.detach()
        low = masked_x.masked_fill(~ok, float("inf")).min(1, keepdim=True).values
        high = masked_x.masked_fill(~ok, float("-inf")).max(1, keepdim=True).values
        device = generator.device if generator is not None else x.device
        u = shard_rand((b, k_max), generator, device, x.dtype).to(x.device)
        values = low + (high - low) * u
    else:
        values = torch.full((b, k_max), fill, dtype=x.dtype, device=x.device)
    values = torch.where(take, values, flat.gather(1, index))       # ranks beyond k_b keep their value
    return flat.scatter(1, index, values).view_as(x), mask.view_as(x)


def kl_divergence(logits: torch.Tensor, masked_logits: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = (1/B) Σ_b Σ_c p_bc (log p_bc − log q_bc), p = softmax(logits), q = softmax(masked_logits).

    The seed's ``KLDivLoss(log_target=True, reduction='batchmean')(log q, log p)``; no detach."""
    if logits.shape != masked_logits.shape or logits.dim() != 2:
        raise ValueError(f"logits and masked_logits must both be B×K of the same shape, got "
                         f"{tuple(logits.shape)} and {tuple(masked_logits.shape)}")
    with full_precision(logits.device):  # float32 under autocast: bfloat16 made the KL negative
        log_p = F.log_softmax(float32(logits), dim=1)
        log_q = F.log_softmax(float32(masked_logits), dim=1)
        return (log_p.exp() * (log_p - log_q)).sum(1).mean()


def _series_padding(ctx: PenaltyContext) -> torch.Tensor | None:
    """B×1×T valid-step mask of a padded B×C×T series batch (``extras["padding_mask"]``, True = a real
    step), or None when the batch has no padding."""
    pad = ctx.extras.get("padding_mask")
    if pad is None or ctx.x.dim() != 3:
        return None
    pad = torch.as_tensor(pad, device=ctx.x.device).to(torch.bool)
    if pad.shape != (ctx.x.shape[0], ctx.x.shape[2]):
        raise ValueError(f"padding_mask of shape {tuple(pad.shape)} does not match the series "
                         f"{tuple(ctx.x.shape)}: give B×T (True = a real time step)")
    return None if bool(pad.all()) else pad.unsqueeze(1)


def detached_saliency(model: nn.Module, x: torch.Tensor, y: torch.Tensor, score: str | None = None,
                      eval_mode: bool = True, layer: Any = None) -> torch.Tensor:
    """∂ Σ_b t_b / ∂x on a detached copy of x, no graph kept; the model in eval mode (dropout off)
    while it runs when ``eval_mode``, each module's mode restored afterwards. ``score``: the scalar
    kind t_b (``"log_prob"`` by default)."""
    score = _resolve_score(score, default="log_prob")
    with _eval_mode(model) if eval_mode else nullcontext(), torch.enable_grad():
        g = input_gradient(model, x.detach(), y, score, create_graph=False, layer=layer)   # 4th: the scalar kind
    return g.detach()


@PENALTIES.register(aliases=("sgt", "saliency_guided_training"))
class SaliencyGuided(Penalty):
    """Saliency Guided Training: R = KL(p(x) ‖ p(x̃)), x̃ = x with the ⌊fraction·D⌋ features of lowest
    (|g| or signed g) saliency of log p_y masked (documentation: methods/saliency-guided). Use with weight λ = 1 as the paper.

    ``fill``: ``"random"`` (U(min x_b, max x_b) per feature) or a constant; ``score``: the scalar
    whose input gradient ranks the features (``"log_prob"`` as the seed); ``eval_saliency``: compute g with dropout/BatchNorm in eval mode (the seed). The masked
    forward runs in the model's own mode (train mode during training). Padded series (B×C×T with
    ``padding_mask`` B×T among the batch extras): only real steps are ranked and masked, k_b =
    ⌊fraction · C · L_b⌋ (see :func:`saliency_guided_mask`, ``valid``).
    """

    name = "saliency_guided"
    needs_input_grad = False

    def __init__(self, fraction: float = 0.5, by: str = "abs", fill: str | float = "random",
                 score: str | None = None, eval_saliency: bool = True) -> None:
        super().__init__()
        self.fraction = check_fraction(fraction)
        check_choice("by", by, ORDERS)
        self.by, self.fill = by, check_fill(fill)
        self.score = _resolve_score(score, default="log_prob")
        self.eval_saliency = bool(eval_saliency)

    def settings(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "by": self.by, "fill": self.fill, "score": self.score,
                "eval_saliency": self.eval_saliency}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        if getattr(ctx, "inputs", None) is not None and ctx.inputs.is_tokens:
            return self._tokens(ctx)
        g = detached_saliency(ctx.model, ctx.x, ctx.y, self.score, self.eval_saliency)
        generator = ctx.rng() if self.fill == "random" else None
        valid = _series_padding(ctx)
        x_masked, _ = saliency_guided_mask(ctx.x.detach(), g, self.fraction, self.by, self.fill, generator,
                                           valid=valid)
        with torch.enable_grad():
            masked_logits = ctx.model(x_masked)
        return kl_divergence(ctx.logits, masked_logits)

    def _tokens(self, ctx: PenaltyContext) -> torch.Tensor:
        """Token batches: rank tokens by s_bt = Σ_e g·e of the detached embedding saliency and replace
        the embeddings of the ⌊fraction · L_b⌋ lowest (documentation: guide/concepts; padding never masked)."""
        g = detached_saliency(ctx.model, ctx.x, ctx.y, self.score, self.eval_saliency, layer=ctx.inputs.layer)
        e = ctx.explained
        scores = ctx.inputs.scores(ctx.inputs.strip_padding(g), e.detach())
        generator = ctx.rng() if self.fill == "random" else None
        e_masked, _ = saliency_guided_tokens(e, scores, ctx.inputs.padding, self.fraction, self.by, self.fill,
                                             generator)
        with torch.enable_grad():
            masked_logits = ctx.inputs.run(ctx.model, e_masked)
        return kl_divergence(ctx.logits, masked_logits)


__all__ = ["ORDERS", "SaliencyGuided", "check_fill", "check_fraction", "detached_saliency", "kl_divergence",
           "masked_count", "saliency_guided_mask"]
