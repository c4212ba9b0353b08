"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks via gradient-based
localization"), in one place below the penalties and the metrics: ``attribute(..., "gradcam")``, the XIL
penalties (:class:`~explainreg.penalties.RRRGradCAM`, :class:`~explainreg.penalties.HINT`) and the
wrong-reason maps (:func:`~explainreg.metrics.functional.localisation.wrong_reason_maps`) all call :func:`grad_cam`.

The map is built from a forward hook and ``torch.autograd.grad``, differentiable to the weights with
``create_graph=True`` (Captum's ``LayerGradCam`` computes its gradients without it, so a loss on its maps
gives no gradient through the weights α); ``detach_weights=True`` reproduces Captum's maps in a loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice
from .layers import find_layer

#: the modes :func:`resize_map` takes (``F.interpolate``'s; ``linear`` for series maps B×1×T)
INTERPOLATIONS = ("nearest", "linear", "bilinear", "bicubic", "area")


def find_conv_layer(model: nn.Module, layer: str | nn.Module | None = None,
                    sample: torch.Tensor | None = None, *, who: str = "Grad-CAM") -> nn.Module:
    """The module Grad-CAM is taken at: ``layer`` by name (``model.named_modules()``) or module; None =
    the convolution of the input's kind (``nn.Conv1d`` for B×C×T samples, ``nn.Conv2d`` otherwise) whose
    output reaches the model's output, traced on ``sample`` (:func:`explainreg.layers.find_layer`; in a
    plain CNN the last one, as XIL's ``get_last_conv_layer``). ``who`` names the caller in errors.

    Example::

        >>> import torch; from torch import nn; from explainreg.gradcam import find_conv_layer
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Flatten(), nn.Linear(8, 3))
        >>> find_conv_layer(net, sample=torch.rand(1, 1, 6, 6)) is net[2]
        True
    """
    kind = nn.Conv1d if sample is not None and sample.dim() == 3 else nn.Conv2d
    return find_layer(model, layer, kind, who=who, sample=sample)


def forward_with_activation(model: nn.Module, x: torch.Tensor, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, A)``: one forward pass of ``x`` recording the output A of ``layer`` (its last call)."""
    store: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        store["a"] = output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        handle.remove()
    if "a" not in store or not isinstance(store["a"], torch.Tensor):
        raise ValueError(f"the Grad-CAM layer {layer.__class__.__name__} was not called with a tensor output in "
                         "the forward pass; pass layer='<name>' of a module the model runs")
    return logits, store["a"]


def grad_cam(logits: torch.Tensor, activation: torch.Tensor, target: torch.Tensor, *,
             create_graph: bool = True, detach_weights: bool = False) -> torch.Tensor:
    """Signed Grad-CAM (Selvaraju et al. 2017, Captum's ``LayerGradCam`` without ReLU):
    α_bk = mean_{h,w} ∂z_{b,t_b}/∂A_bkhw, cam_b = Σ_k α_bk A_bk.

    Args:
        logits: B×K, computed from ``activation`` (which must be part of their graph).
        activation: B×K'×h×w layer output A.
        target: B class indices t_b.
        create_graph: keep the graph so that the map is differentiable to the weights.
        detach_weights: α computed without ``create_graph`` and detached, as Captum's
            ``LayerGradCam`` (the XIL code): the map keeps A's graph only, so a loss on it sends no
            gradient to the layers after the Grad-CAM layer.

    Returns:
        B×1×h×w maps.

    Example::

        >>> import torch; from torch import nn; from explainreg.gradcam import forward_with_activation, grad_cam
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
        >>> logits, a = forward_with_activation(net, torch.randn(2, 1, 4, 4), net[0])
        >>> cam = grad_cam(logits, a, torch.tensor([0, 2]))
        >>> cam.shape, cam.requires_grad                         # differentiable to the weights
        (torch.Size([2, 1, 4, 4]), True)
    """
    score = logits.gather(1, target[:, None].to(logits.device)).sum()
    (grads,) = torch.autograd.grad(score, activation, create_graph=create_graph and not detach_weights,
                                   retain_graph=True)
    weights = grads.mean(dim=tuple(range(2, grads.dim())), keepdim=True)
    if detach_weights:
        weights = weights.detach()
    return (weights * activation).sum(1, keepdim=True)


def resize_map(m: torch.Tensor, size: tuple[int, ...], mode: str = "bilinear") -> torch.Tensor:
    """B×C×H×W (or B×C×T) maps resized to ``size`` (``F.interpolate``, ``align_corners=False`` where it
    applies: Captum's ``LayerAttribution.interpolate``).

    Example::

        >>> import torch; from explainreg.gradcam import resize_map
        >>> resize_map(torch.tensor([[[[1.0, 2.0]]]]), (1, 4), "nearest").flatten().tolist()
        [1.0, 1.0, 2.0, 2.0]
    """
    check_choice("interpolation", mode, INTERPOLATIONS)
    if tuple(m.shape[2:]) == tuple(size):
        return m
    kwargs = {"align_corners": False} if mode in ("linear", "bilinear", "bicubic") else {}
    return F.interpolate(m, size=tuple(size), mode=mode, **kwargs)


__all__ = ["INTERPOLATIONS", "find_conv_layer", "forward_with_activation", "grad_cam", "resize_map"]
