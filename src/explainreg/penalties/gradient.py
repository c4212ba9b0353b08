"""The six input-gradient penalties of seed 1 (xai-constrained-losses), methods.md A.2."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .._validation import check_choice, check_range
from ..inputs import dense_mask
from ..saliency import resolve_score
from . import functional as P
from .base import Penalty, PenaltyContext, register_penalty, target_alias


def input_layout(ctx: PenaltyContext) -> str:
    """The layout of the batch (methods.md A.7): the context's ``inputs.layout`` when it has one,
    else from x: 4 dims ``"image"`` (B×C×H×W), 3 ``"series"`` (B×C×T), 2 ``"tabular"`` (B×F)."""
    inputs = getattr(ctx, "inputs", None)
    if inputs is not None and getattr(inputs, "layout", None):
        return inputs.layout
    return {4: "image", 3: "series", 2: "tabular"}.get(ctx.x.dim(), f"{ctx.x.dim()}-d")


def require_layout(ctx: PenaltyContext, allowed: Sequence[str], who: str, why: str) -> str:
    """The batch's layout, or a clear error when ``who`` is not defined for it."""
    layout = input_layout(ctx)
    if layout not in allowed:
        raise ValueError(f"{who} is defined for {' and '.join(allowed)} inputs, not {layout} inputs "
                         f"(x of shape {tuple(ctx.x.shape)}): {why}")
    return layout


class _SaliencyPenalty(Penalty):
    """Shared setting: the scalar kind ``score`` whose saliency the penalty constrains (``"logit"``
    as the seed; :data:`explainreg.saliency.SCORES`). ``target`` is its deprecated alias."""

    target = target_alias

    def __init__(self, score: str | None = None, *, target: str | None = None) -> None:
        super().__init__()
        direct = type(self).__init__ is _SaliencyPenalty.__init__  # the warning points at the user's call
        self.score = resolve_score(score, target, stacklevel=3 if direct else 4)

    def settings(self) -> dict[str, Any]:
        return {"score": self.score}


@register_penalty("l1", "gradreg", "gradient_l1")
class GradientL1(_SaliencyPenalty):
    """R = mean |g| over all B·C·H·W entries."""

    name = "gradient_l1"

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        return P.gradient_l1(ctx.saliency(self.score))


@register_penalty("smooth", "tv")
class Smoothness(_SaliencyPenalty):
    """Anisotropic total variation of g, neighbours ``offset`` apart; ``compat=True``: the seed's o=2 quirk."""

    name = "smoothness"

    def __init__(self, offset: int = 1, compat: bool = False, score: str | None = None, *,
                 target: str | None = None) -> None:
        super().__init__(score, target=target)
        if int(offset) != offset or offset < 1:
            raise ValueError(f"offset must be a positive integer number of pixels, got {offset}")
        self.offset, self.compat = int(offset), bool(compat)

    def settings(self) -> dict[str, Any]:
        return {"offset": self.offset, "compat": self.compat, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        layout = require_layout(ctx, ("image", "series"), "Smoothness",
                                "it compares neighbouring pixels (images) or time steps (series); other axes are "
                                "unordered (on B×F it would compare different samples)")
        if layout == "series":
            if self.compat:
                raise ValueError("Smoothness(compat=True) reproduces the seed's image code (o = 2, zero padding); "
                                 "series use compat=False (total variation along time)")
            return P.smoothness_along_time(ctx.saliency(self.score), self.offset)
        return P.smoothness(ctx.saliency(self.score), self.offset, self.compat)


@register_penalty("loc")
class Locality(_SaliencyPenalty):
    """BCE between ĝ and a target map: the annotation ``mask`` when ``use_mask`` and one is passed,
    else the per-sample min–max normalised channel mean of x."""

    name = "locality"

    def __init__(self, eps: float = 0.01, use_mask: bool = True, score: str | None = None, *,
                 target: str | None = None) -> None:
        super().__init__(score, target=target)
        check_range("eps", eps, 0, None, low_open=True)
        self.eps, self.use_mask = float(eps), bool(use_mask)

    def settings(self) -> dict[str, Any]:
        return {"eps": self.eps, "use_mask": self.use_mask, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask = ctx.extras.get("mask") if self.use_mask else None
        if mask is None:
            require_layout(ctx, ("image",), "Locality without a mask",
                           "its target is the image itself (channel mean, min–max normalised); pass mask=... "
                           "(the region the saliency should cover) for other inputs")
            target_map = P.input_target(ctx.x)
        else:
            layout = require_layout(ctx, ("image", "series"), "Locality with a mask",
                                    "the mask must line up with the input's pixels or time steps")
            target_map = dense_mask(mask, ctx.x, layout, "Locality")
        return P.locality(ctx.saliency(self.score), target_map, self.eps)


@register_penalty("fid")
class Fidelity(_SaliencyPenalty):
    """Hinge on the batch-mean |cos| between logits of x and of x ⊙ (1 − ĝ)."""

    name = "fidelity"

    def __init__(self, threshold: float = 0.1, score: str | None = None, *, target: str | None = None) -> None:
        super().__init__(score, target=target)
        check_range("threshold", threshold, 0, 1)
        self.threshold = float(threshold)

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        require_layout(ctx, ("image", "series", "tabular"), "Fidelity",
                       "it multiplies the input by 1 − ĝ and runs the model again; token ids cannot be scaled")
        return P.fidelity(ctx.model, ctx.x, ctx.saliency(self.score), ctx.logits, self.threshold)


@register_penalty("cons")
class Consistency(_SaliencyPenalty):
    """Pairwise saliency dissimilarity over input dissimilarity within each predicted class."""

    name = "consistency"

    def __init__(self, eps: float = 1e-8, score: str | None = None, *, target: str | None = None) -> None:
        super().__init__(score, target=target)
        check_range("eps", eps, 0, None, low_open=True)
        self.eps = float(eps)

    def settings(self) -> dict[str, Any]:
        return {"eps": self.eps, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        predicted = ctx.logits.detach().argmax(1)
        # token batches: the input similarity is that of the (padding-free) embeddings (methods.md A.7)
        explained = ctx.inputs.strip_padding(ctx.explained) if hasattr(ctx, "inputs") else ctx.x
        return P.consistency(ctx.saliency(self.score), explained, predicted, self.eps)


@register_penalty("symm", "rotation")
class Symmetry(_SaliencyPenalty):
    """Rotation equivariance of the saliency: one angle per batch drawn from ``angles``."""

    name = "symmetry"

    def __init__(self, angles: Sequence[float] = (5, 10, 15, 20), interpolation: str = "nearest",
                 score: str | None = None, *, target: str | None = None) -> None:
        super().__init__(score, target=target)
        if len(angles) == 0:
            raise ValueError("angles must hold at least one rotation angle in degrees")
        check_choice("interpolation", interpolation, ("nearest", "bilinear"))
        self.angles, self.interpolation = tuple(float(a) for a in angles), interpolation

    def settings(self) -> dict[str, Any]:
        return {"angles": list(self.angles), "interpolation": self.interpolation, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        require_layout(ctx, ("image",), "Symmetry", "it rotates the input in the image plane")
        angle = self.angles[int(torch.randint(len(self.angles), (1,), generator=ctx.rng()))]
        return P.symmetry(ctx.model, ctx.x, ctx.y, ctx.saliency(self.score), angle, self.score, self.interpolation)
