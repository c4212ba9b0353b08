"""Image preprocessing in torch (no torchvision): resize, centre crop, normalise (methods.md A.12).

All functions take a C×H×W (or B×C×H×W) float tensor and return a tensor of the same rank.
Masks are resized with nearest-neighbour interpolation so that they stay binary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

Size = int | tuple[int, int]


def _pair(name: str, size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        pair = (size, size)
    else:
        pair = tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive int or an (H, W) pair of positive ints, got {size!r}")
    return pair  # type: ignore[return-value]


def resized_shape(height: int, width: int, size: Size) -> tuple[int, int]:
    """torchvision's convention: an int ``s`` scales the shorter side to ``s`` (aspect kept,
    the longer side rounded down); an ``(H, W)`` pair is the exact output size."""
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"size must be a positive int or an (H, W) pair, got {size!r}")
        if height <= width:
            return size, max(1, int(size * width / height))
        return max(1, int(size * height / width)), size
    return _pair("size", size)


def resize(image: torch.Tensor, size: Size, *, mask: bool = False) -> torch.Tensor:
    """Resize ``image`` (C×H×W or B×C×H×W) to ``size`` (see :func:`resized_shape`).

    Images: bilinear with antialiasing (as PIL/torchvision); ``mask=True``: nearest neighbour.
    """
    squeeze = image.dim() == 3
    x = image[None] if squeeze else image
    if x.dim() != 4:
        raise ValueError(f"resize expects C×H×W or B×C×H×W, got shape {tuple(image.shape)}")
    out_hw = resized_shape(x.shape[-2], x.shape[-1], size)
    if out_hw != tuple(x.shape[-2:]):
        if mask:
            x = F.interpolate(x.float(), size=out_hw, mode="nearest").to(image.dtype)
        else:
            x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)
    return x[0] if squeeze else x


def center_crop(image: torch.Tensor, size: Size) -> torch.Tensor:
    """The central ``size`` window of ``image`` (…×H×W); the offset is ``(H − h) // 2`` as torchvision
    rounds it (``int(round((H − h) / 2))``). A crop larger than the image is an error."""
    h, w = _pair("crop", size)
    H, W = image.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop {h}×{w} is larger than the (resized) image {H}×{W}; lower crop or raise size")
    top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
    return image[..., top:top + h, left:left + w]


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x − mean_c) / std_c per channel (``mean``/``std`` of length C, or 1 for every channel)."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device).reshape(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device).reshape(-1, 1, 1)
    channels = image.shape[-3]
    if mean_t.shape[0] not in (1, channels) or std_t.shape[0] not in (1, channels):
        raise ValueError(f"mean and std need 1 or {channels} values (one per channel), got {len(mean_t)} and "
                         f"{len(std_t)}")
    if bool((std_t <= 0).any()):
        raise ValueError(f"std must be positive, got {list(map(float, std_t.flatten()))}")
    return (image - mean_t) / std_t


@dataclass(frozen=True)
class ImageTransform:
    """resize → centre crop → normalise, applied alike to an image and (geometrically) to its mask.

    Args:
        size: ``int`` (shorter side) or ``(H, W)``; ``None`` keeps the size.
        crop: ``int`` or ``(H, W)`` central crop after resizing; ``None``: no crop.
        mean, std: per-channel statistics on [0, 1]; ``None``: pixels stay in [0, 1].
    """

    size: Size | None = None
    crop: Size | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            resized_shape(8, 8, self.size)
        if self.crop is not None:
            _pair("crop", self.crop)
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std (or neither)")

    def image(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is not None:
            x = resize(x, self.size)
        if self.crop is not None:
            x = center_crop(x, self.crop)
        if self.mean is not None:
            x = normalize(x, self.mean, self.std)  # type: ignore[arg-type]
        return x

    def mask(self, m: torch.Tensor) -> torch.Tensor:
        if self.size is not None:
            m = resize(m, self.size, mask=True)
        if self.crop is not None:
            m = center_crop(m, self.crop)
        return m

    def to_dict(self) -> dict:
        return {"size": self.size, "crop": self.crop, "mean": self.mean, "std": self.std}


__all__ = ["ImageTransform", "center_crop", "normalize", "resize", "resized_shape"]
