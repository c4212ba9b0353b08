"""The XIL penalties beside RRR and CDEP: RRR-GradCAM, HINT and RBR (documentation: methods/xil).

All three are differentiable to the weights (``create_graph=True`` throughout), Grad-CAM from
:mod:`explainreg.gradcam`: Captum's ``LayerGradCam`` computes its gradients without ``create_graph``,
so a loss on its maps gives no gradient through the Grad-CAM weights α (the XIL code used it inside
its losses). ``detach_weights=True`` (:func:`~explainreg.gradcam.grad_cam`,
``RRRGradCAM``, ``HINT``) reproduces that: α detached, A keeping its graph, so the layers after the
Grad-CAM layer get no gradient from the penalty (``explainreg study xil`` uses it by default).

Masks: ``mask`` (1 = must not matter, m⁻) as for RRR/CDEP; HINT's reward mask ``reward_mask``
(1 = should matter, m⁺) is a separate batch extra, so a data set can carry both.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..gradcam import INTERPOLATIONS, find_conv_layer, forward_with_activation, grad_cam, resize_map
from .._validation import check_choice, check_reduction
from ..inputs import dense_mask
from .annotation import _AnnotationPenalty
from .base import PENALTIES, PenaltyContext

#: the reductions a penalty accepts, of the vocabulary "mean", "sum", "none" (R is one number per batch)
REDUCTIONS = ("mean", "sum")
_PER_BATCH = "a penalty is one number per batch, the term of the training loss"


# ----------------------------------------------------------------------------------------------
# pure functions


def normalize_map(a: torch.Tensor, positive_only: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """XIL's per-sample normalisation (``norm_saliencies_fast``): a⁺ = max(a, 0) if ``positive_only``;
    â_b = (a_b − min a_b) / (max(a_b − min a_b) + eps) over all entries but the batch dimension."""
    flat = a.flatten(1)
    if positive_only:
        flat = flat.clamp_min(0)
    flat = flat - flat.min(1, keepdim=True).values
    return (flat / (flat.max(1, keepdim=True).values + eps)).view_as(a)


def _reduce(values: torch.Tensor, reduction: str, batch: int) -> torch.Tensor:
    total = values.sum()
    return total if reduction == "sum" else total / batch


def rrr_gradcam(cam: torch.Tensor, mask: torch.Tensor, *, reduction: str = "sum",
                interpolation: str = "bilinear") -> torch.Tensor:
    """R = Σ_b Σ_{h,w} (m⁻ ⊙ Â)² (``reduction="sum"``) or that / B (``"mean"``).

    Args:
        cam: B×1×h×w Grad-CAM maps, already normalised (:func:`normalize_map`).
        mask: B|1×C×H×W penalty mask (channels reduced by max), resized to h×w with ``interpolation``
            (XIL: ``transforms.Resize``, bilinear).
    """
    check_reduction(reduction, REDUCTIONS, _PER_BATCH)
    m = mask.to(cam.dtype).amax(1, keepdim=True)
    m = resize_map(m, tuple(cam.shape[2:]), interpolation)
    return _reduce((m * cam).pow(2), reduction, cam.shape[0])


def hint(cam: torch.Tensor, reward_mask: torch.Tensor, *, reduction: str = "mean",
         interpolation: str = "nearest") -> torch.Tensor:
    """R = MSE(up(Â), m⁺) = mean_{b,c,h,w} (up(Â) − m⁺)² (``"mean"``) or the sum (``"sum"``, XIL's default).

    Args:
        cam: B×1×h×w normalised Grad-CAM maps of the true class.
        reward_mask: B|1×C×H×W, 1 = where the model should look; Â is upsampled to H×W with
            ``interpolation`` (XIL: Captum's ``LayerAttribution.interpolate``, nearest) and broadcast
            over the mask's channels.
    """
    check_reduction(reduction, REDUCTIONS, _PER_BATCH)
    up = resize_map(cam, tuple(reward_mask.shape[2:]), interpolation)
    target = reward_mask.to(cam.dtype).expand(cam.shape[0], *reward_mask.shape[1:])
    up = up.expand_as(target)
    return F.mse_loss(up, target, reduction=reduction)


def influence_gradient(model: nn.Module, x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """RBR's IF = ∂q/∂x with q = Σ over all trainable parameters θ of ∂CE/∂θ (one scalar; CE the
    batch-mean cross-entropy, the Hessian replaced by the identity as in XIL). Third-order path:
    both gradients with ``create_graph=True``. ``logits`` must come from ``x`` (requires grad)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("RBR needs trainable parameters: the model has none with requires_grad=True")
    ce = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(ce, params, create_graph=True, allow_unused=True)
    q = sum(g.sum() for g in grads if g is not None)
    if not isinstance(q, torch.Tensor) or not q.requires_grad:
        raise ValueError("RBR: the cross-entropy's parameter gradients do not depend on the input")
    (influence,) = torch.autograd.grad(q, x, create_graph=True, retain_graph=True)
    return influence


def rbr(influence: torch.Tensor, g: torch.Tensor, mask: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """R = Σ_b Σ_{c,h,w} (m⁻ ⊙ IF ⊙ g)² (``"sum"``) or that / B (``"mean"``); g = ∂ Σ_k log p_k / ∂x."""
    check_reduction(reduction, REDUCTIONS, _PER_BATCH)
    return _reduce((mask * influence * g).pow(2), reduction, g.shape[0])


# ----------------------------------------------------------------------------------------------
# classes


class _GradCAMPenalty(_AnnotationPenalty):
    """Shared: the Grad-CAM layer and its normalised maps (one extra hooked forward pass on x)."""

    double_backprop = True  # the map is a gradient of that forward, penalised

    def __init__(self, layer: str | None = None, reduction: str = "sum", positive_only: bool = False,
                 interpolation: str = "bilinear", *, detach_weights: bool = False) -> None:
        super().__init__(None)
        check_reduction(reduction, REDUCTIONS, _PER_BATCH)
        check_choice("interpolation", interpolation, INTERPOLATIONS)
        if layer is not None and not isinstance(layer, str):
            raise TypeError(f"layer must be the name of a module (model.named_modules()), got {type(layer).__name__}")
        self.layer, self.reduction = layer, reduction
        self.positive_only, self.interpolation = bool(positive_only), interpolation
        #: α detached as Captum's LayerGradCam (XIL): no gradient to the layers after ``layer``
        self.detach_weights = bool(detach_weights)

    def settings(self) -> dict[str, Any]:
        return {"layer": self.layer, "reduction": self.reduction, "positive_only": self.positive_only,
                "interpolation": self.interpolation, "detach_weights": self.detach_weights}

    def cam(self, ctx: PenaltyContext, target: str) -> torch.Tensor:
        """Normalised Grad-CAM Â (B×1×h×w) of the predicted (``"predicted"``) or true (``"label"``) class."""
        layer = find_conv_layer(ctx.model, self.layer, ctx.x)
        x = ctx.x.detach()
        logits, activation = forward_with_activation(ctx.model, x, layer)
        t = logits.detach().argmax(1) if target == "predicted" else ctx.y
        with torch.enable_grad():
            return normalize_map(grad_cam(logits, activation, t, detach_weights=self.detach_weights),
                                 positive_only=self.positive_only)


@PENALTIES.register(aliases=("rrr_g", "rrr_gc", "rrr_gradcam", "rrrg"))
class RRRGradCAM(_GradCAMPenalty):
    """R = Σ (m⁻ ⊙ Â)², Â the normalised, signed Grad-CAM of the **predicted** class on ``layer``
    (default: the last Conv2d on the way to the output), m⁻ resized to Â's size (Schramowski et al. 2020;
    Friedrich et al. 2023).
    ``reduction="mean"`` divides by B. ``detach_weights=True``: α detached, as Captum's
    ``LayerGradCam`` in XIL's code (no gradient to the layers after ``layer``).

    Args:
        layer: the name of the module Grad-CAM is taken at (default: the last ``nn.Conv2d`` on the way
            to the output, :func:`find_conv_layer`).
        reduction: ``"sum"`` or ``"mean"`` (÷ B). positive_only: normalise max(Â, 0).
        interpolation: how the mask (or the map) is resized. detach_weights: α without gradient.

    Shape:
        Called as ``penalty(model, x, y, mask=...)``: x B×C×H×W, ``mask`` one mask in any form of
        :func:`explainreg.inputs.normalize_mask`; returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1
        >>> logits, a = forward_with_activation(net, x, net[0])
        >>> cam = normalize_map(grad_cam(logits, a, logits.argmax(1)))
        >>> r = RRRGradCAM()(net, x, y, mask=mask)
        >>> bool(torch.isclose(r, rrr_gradcam(cam, mask[None, None])))
        True
    """

    name = "rrr_gradcam"
    needs_input_grad = False

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask = dense_mask(ctx.extra("mask", self.name), ctx.x, who=self.name)
        return rrr_gradcam(self.cam(ctx, "predicted"), mask, reduction=self.reduction,
                           interpolation=self.interpolation)


@PENALTIES.register()
class HINT(_GradCAMPenalty):
    """R = MSE(up(Â), m⁺): the normalised Grad-CAM of the **true** class (``positive_only``: of its
    positive part) upsampled to the reward mask ``reward_mask`` (Selvaraju et al. 2019; Friedrich et al. 2023).
    ``reduction="sum"`` is XIL's Σ (up(Â) − m⁺)²; ``detach_weights=True`` detaches α as XIL's
    Captum ``LayerGradCam`` did.

    Args:
        layer: the name of the module Grad-CAM is taken at (default: the last ``nn.Conv2d`` on the way
            to the output, :func:`find_conv_layer`).
        reduction: ``"sum"`` or ``"mean"`` (÷ B). positive_only: normalise max(Â, 0).
        interpolation: how the mask (or the map) is resized. detach_weights: α without gradient.

    Shape:
        Called as ``penalty(model, x, y, reward_mask=...)``: x B×C×H×W, ``reward_mask`` one mask in any form of
        :func:`explainreg.inputs.normalize_mask`; returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1
        >>> r = HINT()(net, x, y, reward_mask=mask)
        >>> bool(r >= 0) and r.shape == torch.Size([])
        True
    """

    name = "hint"
    mask_meaning = "evidence"  # the reward mask m⁺: where the right reasons are (documentation: guide/concepts)
    mask_extra = "reward_mask"
    needs_input_grad = False

    def __init__(self, layer: str | None = None, reduction: str = "mean", positive_only: bool = False,
                 interpolation: str = "nearest", *, detach_weights: bool = False) -> None:
        super().__init__(layer, reduction, positive_only, interpolation, detach_weights=detach_weights)

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        reward = dense_mask(ctx.extra("reward_mask", self.name), ctx.x, who=self.name, name="reward_mask")
        return hint(self.cam(ctx, "label"), reward, reduction=self.reduction, interpolation=self.interpolation)


@PENALTIES.register(aliases=("right_for_better_reasons",))
class RBR(_AnnotationPenalty):
    """R = Σ (m⁻ ⊙ IF ⊙ g)², IF = ∂/∂x Σ_θ ∂CE/∂θ (influence-function path, identity Hessian) and
    g = ∂ Σ_k log p_k/∂x (Shao et al. 2021; Friedrich et al. 2023). Third-order: the dearest penalty here.

    Args:
        reduction: ``"sum"`` (XIL's) or ``"mean"`` (÷ B).

    Shape:
        Called as ``penalty(model, x, y, mask=...)``: x B×C×H×W, ``mask`` one mask in any form of
        :func:`explainreg.inputs.normalize_mask`; returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1
        >>> r = RBR()(net, x, y, mask=mask)
        >>> r.backward()
        >>> net[0].weight.grad is not None
        True
    """

    name = "rbr"

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__(None)
        check_reduction(reduction, REDUCTIONS, _PER_BATCH)
        self.reduction = reduction

    def settings(self) -> dict[str, Any]:
        return {"reduction": self.reduction}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask = dense_mask(ctx.extra("mask", self.name), ctx.x, who=self.name)
        with torch.enable_grad():
            influence = influence_gradient(ctx.model, ctx.x, ctx.logits, ctx.y)
            return rbr(influence, ctx.gradient("sum_log_prob"), mask, reduction=self.reduction)


__all__ = ["HINT", "RBR", "REDUCTIONS", "RRRGradCAM", "hint", "influence_gradient", "normalize_map", "rbr",
           "rrr_gradcam"]
