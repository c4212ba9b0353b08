"""The six input-gradient penalties of "Constraining explanations" (the xai-constrained-losses seed)."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .._validation import SEED_CONVENTIONS, check_choice, check_convention, check_range
from ..inputs import dense_mask
from ..gradients import minmax_normalize, resolve_score
from . import functional as P
from .base import PENALTIES, Penalty, PenaltyContext


def input_layout(ctx: PenaltyContext) -> str:
    """The layout of the batch (documentation: guide/concepts): the context's ``inputs.layout`` when it has one,
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
    """Shared setting: the scalar kind ``score`` whose input gradient the penalty constrains (``"logit"``
    as the seed; :data:`explainreg.gradients.SCORES`)."""

    def __init__(self, score: str | None = None) -> None:
        super().__init__()
        self.score = resolve_score(score)

    def settings(self) -> dict[str, Any]:
        return {"score": self.score}


@PENALTIES.register(aliases=("l1", "gradreg", "gradient_l1"))
class GradientL1(_SaliencyPenalty):
    """R = mean |g| over all B·C·H·W entries (gradient regularisation, Drucker & LeCun 1992; one of
    the constraints of "Constraining explanations", the xai-constrained-losses seed). On padded token
    or series batches the mean runs over the real positions only: padding never counts.

    Args:
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (or B×C×T series, B×F
        features, B×T token ids), y B labels; returns a 0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> r = GradientL1()(net, x, y)
        >>> bool(torch.isclose(r, input_gradient(net, x, y).abs().mean()))
        True
    """

    name = "gradient_l1"

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        g = ctx.gradient(self.score)
        return P.gradient_l1(g, ctx.inputs.real(g))


@PENALTIES.register(aliases=("double_backprop", "gradient_norm"))
class DoubleBackprop(_SaliencyPenalty):
    """R = (1/B) Σ_b ‖∂ℓ_b/∂x_b‖²₂, the squared L2 norm of each sample's input gradient of its loss
    ℓ_b = −log p_{b,y_b} (double backpropagation, Drucker & LeCun 1992, "Improving generalization
    performance using double backpropagation"; also the input-gradient regulariser of Ross &
    Doshi-Velez 2018, "Improving the adversarial robustness and interpretability of deep neural
    networks by regularizing their input gradients").

    Args:
        score: the scalar kind differentiated (``"nll"``, the cross-entropy, by default; any of
            :data:`explainreg.gradients.SCORES`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (or B×C×T series, B×F
        features, B×T token ids: gradient w.r.t. the embeddings), y B labels; returns a 0-d tensor,
        differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4, requires_grad=True), torch.tensor([0, 1, 2, 0])
        >>> loss = nn.functional.cross_entropy(net(x), y, reduction="sum")
        >>> g, = torch.autograd.grad(loss, x)
        >>> bool(torch.isclose(DoubleBackprop()(net, x.detach(), y), g.pow(2).flatten(1).sum(1).mean()))
        True
    """

    name = "double_backprop"

    def __init__(self, score: str | None = "nll") -> None:
        super().__init__(score)

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        return ctx.gradient(self.score).pow(2).flatten(1).sum(1).mean()


@PENALTIES.register(aliases=("smooth", "tv"))
class Smoothness(_SaliencyPenalty):
    """Anisotropic total variation of g: R = mean |g_ij − g_{i−o,j}| + mean |g_ij − g_{i,j−o}| over
    valid neighbours ``offset`` = o pixels apart (series: along time only, over pairs of real steps:
    the padded steps of variable-length series never count); ``convention="seed"``: the seed's
    pad-then-roll code (o = 2, zero padding).

    Args:
        offset: neighbour distance o in pixels (time steps).
        convention: ``"explainreg"`` (the default) or ``"seed"`` (the seed's o = 2 form, images only).
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (B×C×T series: along T),
        y B labels; returns a 0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> g = input_gradient(net, x, y)
        >>> tv = (g[..., 1:, :] - g[..., :-1, :]).abs().mean() + (g[..., 1:] - g[..., :-1]).abs().mean()
        >>> bool(torch.isclose(Smoothness()(net, x, y), tv))
        True
    """

    name = "smoothness"

    def __init__(self, offset: int = 1, score: str | None = None, *, convention: str = "explainreg") -> None:
        super().__init__(score)
        if int(offset) != offset or offset < 1:
            raise ValueError(f"offset must be a positive integer number of pixels, got {offset}")
        self.offset = int(offset)
        self.convention = check_convention("Smoothness", convention, SEED_CONVENTIONS)

    def settings(self) -> dict[str, Any]:
        return {"offset": self.offset, "convention": self.convention, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        layout = require_layout(ctx, ("image", "series"), "Smoothness",
                                "it compares neighbouring pixels (images) or time steps (series); other axes are "
                                "unordered (on B×F it would compare different samples)")
        if layout == "series":
            if self.convention == "seed":
                raise ValueError("Smoothness(convention='seed') reproduces the seed's image "
                                 "code (o = 2, zero padding); series use convention='explainreg' (total "
                                 "variation along time)")
            g = ctx.gradient(self.score)
            return P.smoothness_along_time(g, self.offset, ctx.inputs.real(g))
        return P.smoothness(ctx.gradient(self.score), self.offset, convention=self.convention)


@PENALTIES.register(aliases=("loc",))
class Locality(_SaliencyPenalty):
    """R = −mean[t·log(ĝ + ε) + (1 − t)·log(1 − ĝ + ε)], a soft binary cross-entropy between the
    normalised input gradient ĝ and a target map t: the annotation ``mask`` (1 = where the saliency should be)
    when ``use_mask`` and one is passed, else the per-sample min–max normalised channel mean of x.

    Args:
        eps: the ε inside the logarithms (> 0). use_mask: read ``mask`` from the extras when given.
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (B×C×T series too),
        ``mask`` any one-mask form of :func:`explainreg.inputs.normalize_mask`, y B labels; returns a
        0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[1:3, 1:3] = 1
        >>> r = Locality()(net, x, y, mask=mask)
        >>> g_hat = minmax_normalize(input_gradient(net, x, y))
        >>> bce = -(mask * torch.log(g_hat + 0.01) + (1 - mask) * torch.log(1 - g_hat + 0.01)).mean()
        >>> bool(torch.isclose(r, bce))
        True
    """

    name = "locality"
    mask_meaning = "evidence"  # the target map t: where the saliency should be (documentation: guide/concepts)
    mask_extra = "mask"

    def __init__(self, eps: float = 0.01, use_mask: bool = True, score: str | None = None, ) -> None:
        super().__init__(score)
        check_range("eps", eps, 0, None, low_open=True)
        self.eps, self.use_mask = float(eps), bool(use_mask)

    def settings(self) -> dict[str, Any]:
        return {"eps": self.eps, "use_mask": self.use_mask, **super().settings()}

    def reads_mask(self) -> tuple[str, str] | None:
        return super().reads_mask() if self.use_mask else None

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
        g = ctx.gradient(self.score)
        return P.locality(g, target_map, self.eps, ctx.inputs.real(g))


@PENALTIES.register(aliases=("fid",))
class Fidelity(_SaliencyPenalty):
    """R = max(0, mean_b |cos(f(x)_b, f(x ⊙ (1 − ĝ))_b)| − threshold): masking the input by its
    normalised input gradient should change the logits.

    Args:
        threshold: the hinge's margin in [0, 1].
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (B×C×T series, B×F features too),
        y B labels; returns a 0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> r = Fidelity(threshold=0.0)(net, x, y)
        >>> g_hat = minmax_normalize(input_gradient(net, x, y))
        >>> d = torch.cosine_similarity(net(x), net(x * (1 - g_hat)), dim=1).abs().mean()
        >>> bool(torch.isclose(r, d))
        True
    """

    name = "fidelity"

    def __init__(self, threshold: float = 0.1, score: str | None = None) -> None:
        super().__init__(score)
        check_range("threshold", threshold, 0, 1)
        self.threshold = float(threshold)

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        require_layout(ctx, ("image", "series", "tabular"), "Fidelity",
                       "it multiplies the input by 1 − ĝ and runs the model again; token ids cannot be scaled")
        g = ctx.gradient(self.score)
        return P.fidelity(ctx.model, ctx.x, g, ctx.logits, self.threshold, ctx.inputs.real(g[:, :1]))


@PENALTIES.register(aliases=("cons",))
class Consistency(_SaliencyPenalty):
    """R = (1/B) Σ_{i<j, same predicted class} (1 − cos(ĝ_i, ĝ_j)) / (max(1 − cos(x_i, x_j), δ) + ε):
    inputs of one class that look alike should be explained alike (see
    :func:`explainreg.penalties.functional.consistency` for the floor δ).

    Args:
        eps: the additive ε of the ratio (> 0).
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images (any layout; token ids
        compare their embeddings), y B labels; returns a 0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> r = Consistency()(net, x, y)
        >>> bool(r >= 0) and r.shape == torch.Size([])
        True
    """

    name = "consistency"

    def __init__(self, eps: float = 1e-8, score: str | None = None) -> None:
        super().__init__(score)
        check_range("eps", eps, 0, None, low_open=True)
        self.eps = float(eps)

    def settings(self) -> dict[str, Any]:
        return {"eps": self.eps, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        predicted = ctx.logits.detach().argmax(1)
        # token batches: the input similarity is that of the (padding-free) embeddings (documentation: guide/concepts)
        explained = ctx.inputs.strip_padding(ctx.explained) if hasattr(ctx, "inputs") else ctx.x
        g = ctx.gradient(self.score)
        return P.consistency(g, explained, predicted, self.eps, real=ctx.inputs.real(g))


@PENALTIES.register(aliases=("symm", "rotation"))
class Symmetry(_SaliencyPenalty):
    """R = mean_b (1 − |cos(g(rotate(x, θ))_b, rotate(g_b, θ))|): the saliency should rotate with
    the image; one angle θ per batch, drawn from ``angles`` with the context's generator.

    Args:
        angles: the rotation angles in degrees to draw from. interpolation: ``"nearest"`` or ``"bilinear"``.
        score: the scalar kind whose input gradient g is constrained (``"logit"``, the seed's; see
            :func:`explainreg.input_gradient`).

    Shape:
        Called as ``penalty(model, x, y, **extras)``: x B×C×H×W images,
        y B labels; returns a 0-d tensor, differentiable w.r.t. the model's parameters.

    Returns:
        The raw, unweighted R (an :class:`~explainreg.objective.Objective` weighs it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from explainreg import input_gradient
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> r = Symmetry(angles=(90,))(net, x, y)
        >>> g, g_rot = input_gradient(net, x, y), input_gradient(net, torch.rot90(x, 1, (2, 3)), y)
        >>> cos = torch.cosine_similarity(g_rot.flatten(1), torch.rot90(g, 1, (2, 3)).flatten(1), dim=1)
        >>> bool(torch.isclose(r, (1 - cos.abs()).mean(), atol=1e-6))
        True
    """

    name = "symmetry"

    def __init__(self, angles: Sequence[float] = (5, 10, 15, 20), interpolation: str = "nearest",
                 score: str | None = None) -> None:
        super().__init__(score)
        if len(angles) == 0:
            raise ValueError("angles must hold at least one rotation angle in degrees")
        check_choice("interpolation", interpolation, ("nearest", "bilinear"))
        self.angles, self.interpolation = tuple(float(a) for a in angles), interpolation

    def settings(self) -> dict[str, Any]:
        return {"angles": list(self.angles), "interpolation": self.interpolation, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        require_layout(ctx, ("image",), "Symmetry", "it rotates the input in the image plane")
        angle = self.angles[int(torch.randint(len(self.angles), (1,), generator=ctx.rng()))]
        return P.symmetry(ctx.model, ctx.x, ctx.y, ctx.gradient(self.score), angle, self.score, self.interpolation)


__all__ = ["Consistency", "DoubleBackprop", "Fidelity", "GradientL1", "Locality", "Smoothness", "Symmetry", "input_layout",
           "require_layout"]
