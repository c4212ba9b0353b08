"""Image preprocessing in torch (no torchvision): resize, centre crop, normalise, with torchvision's
conventions (an int size scales the shorter side; the crop offset rounded as ``transforms.CenterCrop``).

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
    the longer side rounded down); an ``(H, W)`` pair is the exact output size.

    Args:
        height, width: the input size.
        size: a positive int or an ``(H, W)`` pair of positive ints.

    Returns:
        The output ``(H, W)``.

    Raises:
        ValueError: a size that is not positive.

    Example::

        >>> from explainreg.data.image_ops import resized_shape
        >>> resized_shape(300, 450, 224), resized_shape(450, 300, 224), resized_shape(300, 450, (64, 32))
        ((224, 336), (336, 224), (64, 32))
    """
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

    Args:
        image: a float image (or an annotation mask with ``mask=True``).
        size: an int (shorter side) or ``(H, W)``.
        mask: nearest-neighbour interpolation, so a binary mask stays binary.

    Shape:
        C×H×W → C×H'×W', or B×C×H×W → B×C×H'×W'.

    Returns:
        The resized tensor (the input itself when the size does not change).

    Raises:
        ValueError: a tensor that is not 3-D or 4-D, or a bad size.

    Example::

        >>> import torch
        >>> from explainreg.data.image_ops import resize
        >>> image = torch.rand(3, 8, 12)
        >>> resize(image, 4).shape
        torch.Size([3, 4, 6])
        >>> m = torch.zeros(1, 8, 12); m[:, :4] = 1
        >>> small = resize(m, (4, 6), mask=True)
        >>> sorted(small.unique().tolist()), int(small.sum())     # still binary: the top half
        ([0.0, 1.0], 12)
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
    rounds it (``int(round((H − h) / 2))``). A crop larger than the image is an error.

    Args:
        image: …×H×W.
        size: an int (square) or ``(h, w)``.

    Shape:
        …×H×W → …×h×w.

    Returns:
        A view of the central window.

    Raises:
        ValueError: the crop is larger than the image.

    Example::

        >>> import torch
        >>> from explainreg.data.image_ops import center_crop
        >>> image = torch.arange(25.0).view(1, 5, 5)
        >>> center_crop(image, 3)[0, 0], center_crop(image, (1, 2))    # left offset round(1.5) = 2
        (tensor([6., 7., 8.]), tensor([[[12., 13.]]]))
    """
    h, w = _pair("crop", size)
    H, W = image.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop {h}×{w} is larger than the (resized) image {H}×{W}; lower crop or raise size")
    top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
    return image[..., top:top + h, left:left + w]


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x − mean_c) / std_c per channel (``mean``/``std`` of length C, or 1 for every channel).

    Args:
        image: C×H×W or B×C×H×W.
        mean, std: C values (or one for every channel); std positive.

    Shape:
        the input's.

    Returns:
        The normalised image.

    Raises:
        ValueError: a number of values other than 1 or C, or a std ≤ 0.

    Example::

        >>> import torch
        >>> from explainreg.data.image_ops import normalize
        >>> image = torch.stack([torch.full((2, 2), 0.5), torch.full((2, 2), 1.0)])
        >>> normalize(image, mean=(0.5, 0.5), std=(0.25, 0.5))[:, 0, 0]
        tensor([0., 1.])
        >>> normalize(image, mean=(0.5,), std=(0.0,))
        Traceback (most recent call last):
        ...
        ValueError: std must be positive, got [0.0]
    """
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

    ``image(x)`` applies all three, ``mask(m)`` only the geometric two (nearest-neighbour resize and
    the same crop), so the mask stays aligned with the image; ``to_dict()`` is the recorded setting.

    Shape:
        C×H×W or B×C×H×W in, the same rank out.

    Raises:
        ValueError: a bad size or crop, or only one of mean and std.

    Example::

        >>> import torch
        >>> from explainreg.data.image_ops import ImageTransform
        >>> t = ImageTransform(size=8, crop=6, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> image, m = torch.rand(3, 16, 24), torch.ones(1, 16, 24)
        >>> t.image(image).shape, t.mask(m).shape
        (torch.Size([3, 6, 6]), torch.Size([1, 6, 6]))
        >>> t.to_dict()
        {'size': 8, 'crop': 6, 'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5)}
        >>> ImageTransform(mean=(0.5,))
        Traceback (most recent call last):
        ...
        ValueError: give both mean and std (or neither)
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
