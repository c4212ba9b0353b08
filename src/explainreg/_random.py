"""Random draws keyed by (seed, stream, image index), so that a stochastic metric or attribution gives
the same value however its images are batched, chunked, or split over update calls or processes.

Each image ``i`` of the data set gets its own generator, seeded with
``key = mix(mix(mix(seed) ^ stream) ^ i)`` (``mix`` = SplitMix64's finaliser, exact in Python
integers; ``stream`` = CRC-32 of a name such as ``"noise"`` or ``"tie"``, so that different uses of
the same image draw independently). Draws are made on the CPU (torch's Mersenne Twister) and moved
to the requested device, so the values are also the same on a CPU and a GPU. The loop over images
only seeds a generator and draws into a preallocated buffer; every computation on the draws is
batched.
"""
from __future__ import annotations

import zlib
from typing import Sequence

import torch

_MASK = (1 << 64) - 1


def _mix(z: int) -> int:
    """SplitMix64's step and finaliser on a 64-bit unsigned integer."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def image_key(seed: int, index: int, stream: str) -> int:
    """The 64-bit generator seed of image ``index`` for ``stream`` under ``seed``."""
    s = zlib.crc32(stream.encode())
    return _mix(_mix(_mix(int(seed) & _MASK) ^ s) ^ (int(index) & _MASK))


def image_generator(seed: int, index: int, stream: str) -> torch.Generator:
    """A CPU generator seeded for image ``index`` (see :func:`image_key`); for reference loops."""
    return torch.Generator().manual_seed(image_key(seed, index, stream))


def as_index(index: torch.Tensor | Sequence[int] | None, n: int) -> torch.Tensor:
    """The data-set positions of a batch of ``n`` images as a CPU int64 tensor: ``index`` checked
    (``n`` integers ≥ 0), or ``0..n−1`` when None."""
    if index is None:
        return torch.arange(n)
    idx = torch.as_tensor(index)
    if idx.dim() != 1 or idx.shape[0] != n or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ValueError(f"index must be a 1-D integer tensor of the {n} images' positions in the data set, "
                         f"got {tuple(idx.shape)} {idx.dtype}")
    if n and int(idx.min()) < 0:
        raise ValueError(f"index must hold positions >= 0, got {int(idx.min())}")
    return idx.cpu().long()


def keyed_draw(kind: str, seed: int, index: torch.Tensor | Sequence[int], shape: Sequence[int], stream: str, *,
               device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """B×``shape`` draws, row b from image ``index[b]``'s generator: ``kind`` = ``"uniform"`` (U[0, 1))
    or ``"normal"`` (N(0, 1)). Row b depends only on (seed, stream, index[b], shape)."""
    if kind not in ("uniform", "normal"):
        raise ValueError(f"kind must be 'uniform' or 'normal', got {kind!r}")
    idx = torch.as_tensor(index).tolist()
    shape = tuple(int(s) for s in shape)
    out = torch.empty((len(idx),) + shape, dtype=dtype)
    gen = torch.Generator()
    draw = torch.rand if kind == "uniform" else torch.randn
    for b, i in enumerate(idx):
        gen.manual_seed(image_key(seed, i, stream))
        draw(shape, generator=gen, dtype=dtype, out=out[b])
    return out.to(device) if device is not None else out


def stable_ranks(scores: torch.Tensor, descending: bool = True) -> torch.Tensor:
    """rank[b, i] = position of feature i when row b of ``scores`` (B×N) is sorted by decreasing
    (``descending``) or increasing score, ties in position order (a stable sort).

    Example:
        >>> stable_ranks(torch.tensor([[0.5, 2.0, 0.5, 1.0]]))
        tensor([[2, 0, 3, 1]])
        >>> stable_ranks(torch.tensor([[0.5, 2.0, 0.5, 1.0]]), descending=False)
        tensor([[0, 3, 1, 2]])
    """
    order = torch.sort(scores, dim=1, descending=descending, stable=True).indices
    ranks = torch.empty_like(order)
    return ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))


def descending_ranks(scores: torch.Tensor, seed: int = 0, index: torch.Tensor | Sequence[int] | None = None,
                     stream: str = "tie") -> torch.Tensor:
    """rank[b, i] = position of feature i when row b of ``scores`` (B×N) is sorted by decreasing
    score, **ties broken by a seeded random order per image** (keyed by ``seed`` and the image's
    data-set position ``index[b]``, default ``b``).

    A stable sort (:func:`stable_ranks`) would remove tied features in raster order (top rows
    first), which moves removal metrics on maps with many exact ties (integrated gradients with a
    zero baseline is exactly 0 on the background). Here the features are first shuffled by a random
    permutation (argsort of keyed uniform draws), then stably ranked by score: tied features keep the
    random relative order, untied ones are ordered by score exactly (no value is perturbed).

    Example:
        >>> r = descending_ranks(torch.tensor([[0.0, 3.0, 0.0, 0.0, 1.0]]), seed=0)
        >>> r[0, 1].item(), r[0, 4].item(), sorted(r[0, [0, 2, 3]].tolist())
        (0, 1, [2, 3, 4])
    """
    b, n = scores.shape
    keys = keyed_draw("uniform", seed, as_index(index, b), (n,), stream, device=scores.device)
    shuffle = keys.argsort(dim=1)
    shuffled_ranks = stable_ranks(scores.gather(1, shuffle))
    return torch.empty_like(shuffled_ranks).scatter_(1, shuffle, shuffled_ranks)


__all__ = ["as_index", "descending_ranks", "image_generator", "image_key", "keyed_draw", "stable_ranks"]
