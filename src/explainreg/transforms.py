"""Differentiable image transforms written in torch (no torchvision)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validation import check_choice


def rotate(x: torch.Tensor, degrees: float | torch.Tensor, interpolation: str = "nearest",
           fill: float = 0.0) -> torch.Tensor:
    """Rotate images ``x`` counter-clockwise by ``degrees`` about the image centre (torchvision's ``rotate``
    convention).

    Args:
        x: the images.
        degrees: one angle, or one per image.
        interpolation: ``"nearest"`` (torchvision's default, used by the seed) or ``"bilinear"`` (smoother).
        fill: the value of pixels that come from outside the image.

    Shape:
        x: (B, C, H, W); degrees: () or (B,); output: (B, C, H, W).

    Returns:
        The rotated images, differentiable w.r.t. ``x`` (a fixed resampling grid).

    Example::

    >>> import torch; from explainreg.transforms import rotate
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 0, 1] = 1.0        # top middle
    >>> rotate(x, 90.0)[0, 0]                                   # → left middle
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [0., 0., 0.]])
    """
    check_choice("interpolation", interpolation, ("nearest", "bilinear"))
    if x.dim() != 4:
        raise ValueError(f"rotate expects B×C×H×W images, got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    theta = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).flatten() * (math.pi / 180.0)
    theta = theta.expand(b) if theta.numel() == 1 else theta
    if theta.numel() != b:
        raise ValueError(f"degrees must be one angle or one per image ({b}), got {theta.numel()}")
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Output pixel (u, v) in normalised coordinates samples the input at R(θ)·(u, v), with the y axis
    # pointing down; the aspect terms keep rotations rigid for non-square images.
    matrix = torch.stack([
        torch.stack([cos, -sin * h / w, torch.zeros_like(cos)], 1),
        torch.stack([sin * w / h, cos, torch.zeros_like(cos)], 1),
    ], 1)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    if fill == 0.0:
        return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(x[:, :1])
    inside = F.grid_sample(ones, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    out = F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out + (1 - inside) * fill


__all__ = ["rotate"]
