"""Shortcut data sets generated from real MNIST (the CDEP code) and user-mask data sets.

* ColorMNIST: digit d coloured with palette colour d in training and 9 − d in validation and test,
  so a colour-only model scores ≈ 0 %; per-channel normalisation by the colour training set.
* DecoyMNIST: a 5×5 grey patch in one random corner, grey 255 − 25y in training and 25y at test,
  scaled to [−1, 1]; ``extras["mask"]`` is the union of the four corners.
* :class:`PixelBlobSampler`: CDEP's single-pixel blobs for ColorMNIST, drawn ∝ how often each pixel
  is non-zero in the training images.
* :func:`masked_dataset`: any ``(x, y, mask)`` as an :class:`ArrayDataset` whose batches carry the mask.
"""
from __future__ import annotations

import colorsys
import os
from functools import lru_cache
from typing import Any

import torch

from .._random import as_index, keyed_draw
from ..inputs import EVIDENCE, MUST_NOT_USE, check_mask_meaning, normalize_mask
from .arrays import ArrayDataset, stratified_subset
from .catalog import DATASETS, CarriedMask, DataSetFamily
from .mnist import load_mnist, locate
from .sources import DataNotFoundError
from .text import DECOY_WORDS

SHORTCUT_SPLITS = ("train", "val", "test")
#: digit count and the palette's end points (``Color("red").range_to(Color("purple"), 10)``)
_PURPLE_LIGHTNESS = (128 / 255) / 2


def color_palette() -> torch.Tensor:
    """The 10 ColorMNIST colours (10×3 RGB in [0, 1]): linear interpolation in HSL from red
    (hue 0°, L 0.5) to purple #800080 (hue 300°, L 0.251), S = 1, as the ``colour`` package does."""
    rows = []
    for i in range(10):
        hue = i / 9 * 300 / 360
        lightness = 0.5 + i / 9 * (_PURPLE_LIGHTNESS - 0.5)
        rows.append(colorsys.hls_to_rgb(hue, lightness, 1.0))
    return torch.tensor(rows, dtype=torch.float32)


def _check_split(split: str) -> None:
    if split not in SHORTCUT_SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SHORTCUT_SPLITS))}; got {split!r}")


def train_val_indices(n: int, val_fraction: float = 0.1, split_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's ``torch.manual_seed(split_seed); random_split(range(n), [n − v, v])`` indices."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[: n - n_val], perm[n - n_val:]


def _root_key(root) -> str | None:
    return None if root is None else str(root)


@lru_cache(maxsize=4)
def _mnist(split: str, root: str | None, name: str = "mnist") -> ArrayDataset:
    return load_mnist(name, split, root)


def _split_index(labels: torch.Tensor, split: str, val_fraction: float, split_seed: int,
                 limit: int | None) -> torch.Tensor:
    """Rows of the MNIST source for ``split``: all test rows, or the train / val part of the train set;
    ``limit``: a seeded subset of them stratified by label (:func:`~explainreg.data.arrays.stratified_subset`,
    seed 0), as every loader's ``limit``."""
    n = len(labels)
    if split == "test":
        index = torch.arange(n)
    else:
        train_idx, val_idx = train_val_indices(n, val_fraction, split_seed)
        index = train_idx if split == "train" else val_idx
    if limit is None:
        return index
    return index[stratified_subset(labels[index], limit)]


def _limit_note(limit: int | None) -> str:
    return "" if limit is None else f", limit {limit} (stratified by label, seed 0)"


def color_mnist_stats(root: str | os.PathLike | None = None, *, val_fraction: float = 0.1,
                      split_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (population) of the ColorMNIST training images (grey/255 × colour)."""
    gray = _mnist("train", _root_key(root))
    train_idx, _ = train_val_indices(len(gray), val_fraction, split_seed)
    g = gray.x[train_idx].flatten(1).double()
    colors = color_palette().double()[gray.y[train_idx]]  # N×3
    n_values = g.shape[0] * g.shape[1]
    mean = (colors * g.sum(1, keepdim=True)).sum(0) / n_values
    second = (colors.pow(2) * g.pow(2).sum(1, keepdim=True)).sum(0) / n_values
    return mean.float(), (second - mean.pow(2)).sqrt().float()


def color_mnist(split: str = "train", root: str | os.PathLike | None = None, *, normalize: bool = True,
                val_fraction: float = 0.1, split_seed: int = 0, limit: int | None = None) -> ArrayDataset:
    """ColorMNIST (B.2 §2.4) as 3×28×28 images ``x_c = grey/255 · colour[c]``, background 0.

    ``train``: the MNIST training images outside the validation split, digit d in colour d;
    ``val`` (``val_fraction`` of MNIST train, ``split_seed`` as the seed's ``manual_seed(0)``) and
    ``test`` (MNIST test): colour 9 − d. ``normalize``: per-channel mean/std of the colour training
    set, for every split. ``limit`` keeps a seeded subset of the split stratified by label.
    """
    _check_split(split)
    palette = color_palette()
    source = _mnist("test" if split == "test" else "train", _root_key(root))
    index = _split_index(source.y, split, val_fraction, split_seed, limit)
    y = source.y[index]
    color = palette[y if split == "train" else 9 - y]  # n×3
    x = source.x[index] * color[:, :, None, None]
    if normalize:
        mean, std = color_mnist_stats(root, val_fraction=val_fraction, split_seed=split_seed)
        x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    return ArrayDataset(x, y.clone(), name="colormnist",
                        source=f"ColorMNIST {split} from {source.source}, {len(index)} images{_limit_note(limit)}")


def pixel_nonzero_frequency(images: torch.Tensor) -> torch.Tensor:
    """H×W: the fraction of images (N×H×W or N×C×H×W, unnormalised) in which each pixel is non-zero."""
    if images.dim() == 4:
        images = images.abs().sum(1)
    if images.dim() != 3 or len(images) == 0:
        raise ValueError(f"images must be N×H×W or N×C×H×W with N ≥ 1, got shape {tuple(images.shape)}")
    return (images != 0).float().mean(0)


class PixelBlobSampler:
    """CDEP's ColorMNIST blobs (Rieger et al. 2020): ``n_blobs`` single pixels (all channels) per
    batch, each drawn with probability ∝ ``frequency`` (with replacement, as the seed's
    ``np.random.choice`` per blob).

    Args:
        frequency: H×W non-negative weights with a positive sum (:func:`pixel_nonzero_frequency`).
        n_blobs: pixels per batch.

    Shape:
        Called as ``sampler(generator, x=None)``; returns n_blobs×H×W one-hot masks (x's device
        and dtype when x is given).

    Example:
        >>> sampler = PixelBlobSampler(torch.tensor([[0.0, 1.0], [0.0, 3.0]]), n_blobs=5)
        >>> blobs = sampler(torch.Generator().manual_seed(0))
        >>> blobs.shape, blobs.sum((1, 2)).tolist(), bool(blobs[:, :, 0].sum() == 0)
        (torch.Size([5, 2, 2]), [1.0, 1.0, 1.0, 1.0, 1.0], True)
    """

    def __init__(self, frequency: torch.Tensor, n_blobs: int = 8) -> None:
        frequency = torch.as_tensor(frequency, dtype=torch.float64)
        if frequency.dim() != 2 or not torch.isfinite(frequency).all() or bool((frequency < 0).any()) \
                or float(frequency.sum()) <= 0:
            raise ValueError("frequency must be an H×W map of non-negative weights with a positive sum")
        if int(n_blobs) != n_blobs or n_blobs < 1:
            raise ValueError(f"n_blobs must be a positive whole number, got {n_blobs}")
        self.shape = tuple(frequency.shape)
        self.probs = (frequency / frequency.sum()).flatten()
        self.n_blobs = int(n_blobs)

    def __call__(self, generator: torch.Generator | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        pixels = torch.multinomial(self.probs, self.n_blobs, replacement=True, generator=generator)
        blobs = torch.zeros(self.n_blobs, self.probs.numel())
        blobs[torch.arange(self.n_blobs), pixels] = 1.0
        blobs = blobs.view(self.n_blobs, *self.shape)
        return blobs if x is None else blobs.to(x.device, x.dtype)

    def __repr__(self) -> str:
        return f"PixelBlobSampler(n_blobs={self.n_blobs}, shape={self.shape})"


def color_mnist_blob_sampler(root: str | os.PathLike | None = None, n_blobs: int = 8, *,
                             val_fraction: float = 0.1, split_seed: int = 0) -> PixelBlobSampler:
    """The blob sampler of CDEP's ColorMNIST runs: pixel non-zero frequency of the colour training set."""
    gray = _mnist("train", _root_key(root))
    train_idx, _ = train_val_indices(len(gray), val_fraction, split_seed)
    return PixelBlobSampler(pixel_nonzero_frequency(gray.x[train_idx, 0]), n_blobs)


def decoy_corner_mask(size: int = 28, patch: int = 5) -> torch.Tensor:
    """The DecoyMNIST blob: the union of the four ``patch``×``patch`` corners, size×size bool."""
    if not 0 < patch <= size // 2:
        raise ValueError(f"patch must be in [1, {size // 2}] for {size}×{size} images, got {patch}")
    mask = torch.zeros(size, size, dtype=torch.bool)
    for r in (0, size - patch):
        for c in (0, size - patch):
            mask[r:r + patch, c:c + patch] = True
    return mask


def add_decoy(images: torch.Tensor, values: torch.Tensor, generator: torch.Generator,
              patch: int = 5) -> torch.Tensor:
    """Write a ``patch``×``patch`` square of grey ``values`` (0–255, one per image) into one corner of
    each N×1×H×W 0–255 image; the corner (row and column offset ∈ {0, H − patch}) is drawn uniformly."""
    n, _, h, w = images.shape
    out = images.clone()
    rows = torch.randint(2, (n,), generator=generator) * (h - patch)
    cols = torch.randint(2, (n,), generator=generator) * (w - patch)
    r = rows[:, None, None] + torch.arange(patch)[None, :, None]
    c = cols[:, None, None] + torch.arange(patch)[None, None, :]
    out[torch.arange(n)[:, None, None], 0, r, c] = values.to(out.dtype)[:, None, None]
    return out


def decoy_mnist(split: str = "train", root: str | os.PathLike | None = None, *, seed: int = 0,
                val_fraction: float = 0.1, split_seed: int = 0, limit: int | None = None,
                with_mask: bool = True, mask: str = "corners", reward_mask: bool = False,
                source: str = "mnist") -> ArrayDataset:
    """DecoyMNIST (B.2 §2.5): grey 1×28×28 in [−1, 1] with a 5×5 corner patch of grey
    ``255 − 25y`` (``train``/``val``: a 90/10 split of the decoy training set) or ``25y`` (``test``).

    Corners are drawn with ``seed`` (the seed's code was unseeded); ``extras["mask"]`` (bool
    N×1×28×28) marks the four corners, the CDEP/RRR/EG blob (``mask="corners"``), or only the corner
    that holds the patch (``mask="patch"``, XIL's masks). ``reward_mask=True`` adds
    ``extras["reward_mask"]``: the object, pixels of the source image > 1/255 (XIL's HINT masks).
    ``source="fashion-mnist"`` makes Decoy-FMNIST (:func:`decoy_fmnist`). ``limit`` keeps a seeded subset
    stratified by label.
    """
    _check_split(split)
    if mask not in ("corners", "patch"):
        raise ValueError(f"mask must be 'corners' (the four corners) or 'patch' (the patch's corner); got {mask!r}")
    if source not in ("mnist", "fashion-mnist"):
        raise ValueError(f"source must be 'mnist' or 'fashion-mnist'; got {source!r}")
    base = _mnist("test" if split == "test" else "train", _root_key(root), source)
    y = base.y
    generator = torch.Generator().manual_seed(seed * 2 + (split == "test"))
    corners = torch.Generator()
    corners.set_state(generator.get_state())  # the same draws as add_decoy's, for the patch masks
    values = 25.0 * y if split == "test" else 255.0 - 25.0 * y
    x = add_decoy(base.x * 255.0, values.float(), generator)  # corners drawn for the whole set
    index = _split_index(base.y, split, val_fraction, split_seed, limit)
    extras: dict[str, torch.Tensor] = {}
    if with_mask and mask == "corners":
        extras["mask"] = decoy_corner_mask(x.shape[-1])[None, None].expand(len(index), 1, *x.shape[-2:])
    elif with_mask:
        patches = add_decoy(torch.zeros(len(base), 1, *x.shape[-2:]), torch.ones(len(base)), corners)
        extras["mask"] = patches[index].bool()
    if reward_mask:
        extras["reward_mask"] = base.x[index] * 255.0 > 1
    x = x[index] / 255.0 * 2.0 - 1.0
    name, title = ("decoymnist", "DecoyMNIST") if source == "mnist" else ("decoyfmnist", "Decoy-FMNIST")
    meanings = {"mask": MUST_NOT_USE, "reward_mask": EVIDENCE}
    return ArrayDataset(x, y[index].clone(), extras, name=name,
                        source=f"{title} {split} (seed {seed}) from {base.source}, {len(index)} images{_limit_note(limit)}",
                        mask_meanings={k: v for k, v in meanings.items() if k in extras})


def decoy_fmnist(split: str = "train", root: str | os.PathLike | None = None, **options: Any) -> ArrayDataset:
    """Decoy-FMNIST (documentation: methods/xil): the DecoyMNIST recipe of :func:`decoy_mnist` on Fashion-MNIST
    (patch grey 255 − 25y in training, 25y at test, where y is the garment class)."""
    return decoy_mnist(split, root, source="fashion-mnist", **options)


class DecoyShortcut:
    """DecoyMNIST's shortcut as an intervention hook (documentation: methods/shortcuts): every 5×5 corner set to
    the background (−1) and one corner, drawn per sample by a keyed draw (stream ``"decoy_corner"``),
    painted with class ``target``'s patch grey: ``255 − 25·target`` (``rule="train"``, the shortcut the
    training set teaches) or ``25·target`` (``rule="test"``), scaled to [−1, 1].

    Args:
        rule: ``"train"`` or ``"test"``. patch: the corner's side. seed: the corners' key.
        pixels: ``"unit"`` (images in [−1, 1], :func:`decoy_mnist`) or ``"raw"`` (0–255, XIL's).

    Shape:
        Called as ``hook(x, mask, target, index)``: x B×1×H×W in [−1, 1] (or 0–255), target and index (B,);
        returns B×1×H×W (``mask`` is not needed: the corners are the data set's).

    Example::

        >>> hook = DecoyShortcut()
        >>> out = hook(-torch.ones(2, 1, 28, 28), None, torch.tensor([0, 9]), torch.tensor([0, 1]))
        >>> sorted(round(v, 3) for v in out.unique().tolist())     # grey 255 and 30, background −1
        [-1.0, -0.765, 1.0]
    """

    def __init__(self, rule: str = "train", patch: int = 5, seed: int = 0, pixels: str = "unit") -> None:
        if rule not in ("train", "test"):
            raise ValueError(f"rule must be 'train' (grey 255 − 25·class) or 'test' (25·class); got {rule!r}")
        if pixels not in ("unit", "raw"):
            raise ValueError(f"pixels must be 'unit' (images in [−1, 1]) or 'raw' (0–255); got {pixels!r}")
        self.rule, self.patch, self.seed, self.pixels = rule, int(patch), int(seed), pixels

    def __call__(self, x: torch.Tensor, mask: Any, target: torch.Tensor, index: torch.Tensor | None = None
                 ) -> torch.Tensor:
        n, _, h, w = x.shape
        corners = decoy_corner_mask(h, self.patch).to(x.device)
        background = -1.0 if self.pixels == "unit" else 0.0
        out = torch.where(corners, torch.full_like(x, background), x)
        draws = keyed_draw("uniform", self.seed, as_index(index, n), (2,), "decoy_corner", device=x.device)
        rows = (draws[:, 0] < 0.5).long() * (h - self.patch)
        cols = (draws[:, 1] < 0.5).long() * (w - self.patch)
        target = target.to(x.device).float()
        grey = (255.0 - 25.0 * target) if self.rule == "train" else 25.0 * target
        r = rows[:, None, None] + torch.arange(self.patch, device=x.device)[None, :, None]
        c = cols[:, None, None] + torch.arange(self.patch, device=x.device)[None, None, :]
        value = (grey / 255.0 * 2.0 - 1.0 if self.pixels == "unit" else grey).to(x.dtype)
        out[torch.arange(n, device=x.device)[:, None, None], 0, r, c] = value[:, None, None]
        return out

    def region(self, x: torch.Tensor) -> torch.Tensor:
        """Where the hook plants the shortcut: the four corners (1×1×H×W bool)."""
        return decoy_corner_mask(x.shape[-1], self.patch).to(x.device)[None, None]

    def __repr__(self) -> str:
        raw = ", pixels='raw'" if self.pixels == "raw" else ""
        return f"DecoyShortcut(rule={self.rule!r}, patch={self.patch}, seed={self.seed}{raw})"


class TokenDecoyShortcut:
    """CDEP's SST decoy as an intervention hook: class ``target``'s decoy word (``word_ids[target]``,
    e.g. the ids of "video" / "text") replaces the masked token of a sentence that has one, or is
    inserted at a position drawn per sample in 0 … L (keyed, stream ``"decoy_position"``) into one that
    has none (the clean test set); the ids grow by one column of padding ``pad_id``.

    Args:
        word_ids: one id per class. pad_id: the padding id (0 in :class:`~explainreg.data.text.TextDataset`).
        seed: the positions' key.

    Example::

        >>> hook = TokenDecoyShortcut((7, 8))
        >>> ids, mask = torch.tensor([[3, 7, 4], [5, 6, 0]]), torch.tensor([[0, 1, 0], [0, 0, 0]])
        >>> out = hook(ids, mask, torch.tensor([1, 0]), torch.tensor([0, 1]))
        >>> out[0].tolist(), sorted(out[1].tolist())
        ([3, 8, 4, 0], [0, 5, 6, 7])
    """

    def __init__(self, word_ids: Any, pad_id: int = 0, seed: int = 0) -> None:
        self.word_ids = torch.as_tensor(word_ids, dtype=torch.long)
        if self.word_ids.dim() != 1 or len(self.word_ids) < 2:
            raise ValueError(f"word_ids must hold one token id per class (at least 2), got {word_ids!r}")
        self.pad_id, self.seed = int(pad_id), int(seed)

    @classmethod
    def for_vocab(cls, vocab, words: Any = None, seed: int = 0) -> "TokenDecoyShortcut":
        """The hook of CDEP's decoy words (``DECOY_WORDS``, negative then positive) in ``vocab``."""
        words = tuple(words or DECOY_WORDS)
        ids = [vocab.encode([w])[0] for w in words]
        return cls(ids, seed=seed)

    def __call__(self, ids: torch.Tensor, mask: Any, target: torch.Tensor, index: torch.Tensor | None = None
                 ) -> torch.Tensor:
        n, t = ids.shape
        word = self.word_ids.to(ids.device)[target.to(ids.device)]
        m = torch.zeros_like(ids, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=ids.device) > 0
        real = ids != self.pad_id
        m = m & real
        has = m.any(1)
        out = torch.cat([torch.where(m, word[:, None].expand_as(ids), ids), ids.new_full((n, 1), self.pad_id)], 1)
        lengths = real.sum(1)
        u = keyed_draw("uniform", self.seed, as_index(index, n), (), "decoy_position", device=ids.device,
                       dtype=torch.float64)
        pos = (u * (lengths + 1)).floor().long().clamp_max(lengths)
        j = torch.arange(t + 1, device=ids.device)[None, :]
        pad = ids.new_full((n, 1), self.pad_id)
        padded, shifted = torch.cat([ids, pad], 1), torch.cat([pad, ids], 1)  # shifted[:, j] = ids[:, j − 1]
        inserted = torch.where(j < pos[:, None], padded,
                               torch.where(j == pos[:, None], word[:, None].expand(n, t + 1), shifted))
        return torch.where(has[:, None], out, inserted)

    def region(self, ids: torch.Tensor) -> torch.Tensor:
        """Where a decoy word stands in ``ids`` (B×T bool)."""
        return torch.isin(ids, self.word_ids.to(ids.device))

    def __repr__(self) -> str:
        return f"TokenDecoyShortcut(word_ids={self.word_ids.tolist()}, pad_id={self.pad_id}, seed={self.seed})"


class ColorShortcut:
    """ColorMNIST's shortcut as an intervention hook: each image's digit recoloured with class
    ``target``'s training colour (``color_palette()[target]``), its grey level kept.

    The image's colour is read back as the palette colour closest in direction to its pixels, the
    grey level as the projection on it; ``mean`` / ``std`` undo and redo the per-channel
    normalisation (:func:`color_mnist_stats`; None for unnormalised images).

    Shape:
        Called as ``hook(x, mask, target, index)``: x B×3×H×W; returns B×3×H×W.

    Example::

        >>> hook = ColorShortcut()
        >>> x = torch.zeros(1, 3, 2, 2); x[0, :, 0, 0] = color_palette()[3] * 0.5      # a digit of colour 3
        >>> out = hook(x, None, torch.tensor([7]), torch.tensor([0]))
        >>> torch.allclose(out[0, :, 0, 0], color_palette()[7] * 0.5), bool(out[0, :, 1, 1].eq(0).all())
        (True, True)
    """

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mean is None else x * self.std.to(x) + self.mean.to(x)

    def grey(self, x: torch.Tensor) -> torch.Tensor:
        """The grey level B×1×H×W of (normalised) ColorMNIST images."""
        raw = self._raw(x)
        palette = color_palette().to(x)                                     # 10×3
        direction = raw.sum((2, 3))                                         # B×3: the image's overall colour
        cosine = (direction @ palette.T) / (direction.norm(dim=1, keepdim=True) * palette.norm(dim=1) + 1e-12)
        colour = palette[cosine.argmax(1)]                                  # B×3
        return ((raw * colour[:, :, None, None]).sum(1, keepdim=True) / colour.pow(2).sum(1)[:, None, None, None])

    def region(self, x: torch.Tensor) -> torch.Tensor:
        """The digit's pixels (B×1×H×W bool): where the colour is."""
        return self.grey(x) > 1e-3

    def __call__(self, x: torch.Tensor, mask: Any, target: torch.Tensor, index: torch.Tensor | None = None
                 ) -> torch.Tensor:
        recoloured = self.grey(x) * color_palette().to(x)[target.to(x.device)][:, :, None, None]
        return recoloured if self.mean is None else (recoloured - self.mean.to(x)) / self.std.to(x)

    def __repr__(self) -> str:
        return f"ColorShortcut(normalised={self.mean is not None})"


def shortcut_for(name: str, **options: Any):
    """The intervention hook of a generated data set that defines its shortcut (``decoymnist`` and
    ``decoyfmnist``: :class:`DecoyShortcut`), or None for a data set without one.

    Example::

        >>> shortcut_for("decoy-mnist"), shortcut_for("mnist")
        (DecoyShortcut(rule='train', patch=5, seed=0), None)
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    return DecoyShortcut(**options) if key in ("decoymnist", "decoyfmnist") else None


def _where(name: str, root: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    base = "fashion-mnist" if name == "decoy-fmnist" else "mnist"
    try:
        where = f"generated from {locate(base, 'train', root, download=False)[1]}"
    except DataNotFoundError:
        where = f"generated from {base}, which is not found"
    return [(name, "/".join(SHORTCUT_SPLITS), where)]


_LOADERS = {"decoy-mnist": decoy_mnist, "decoy-fmnist": decoy_fmnist, "color-mnist": color_mnist}


def _load(name: str, split: str, root, *, limit: int | None, subset_seed: int, **options: Any) -> ArrayDataset:
    return _LOADERS[name](split, root, limit=limit, **options)


_DECOY_MASKS = (CarriedMask("mask", MUST_NOT_USE, help="the decoy corners"),
                CarriedMask("reward_mask", EVIDENCE, option="reward_mask", help="the object's own pixels"))
for _name, _model, _help, _aliases, _masks in (
        ("decoy-mnist", "cdep_decoymnist", "DecoyMNIST: MNIST with a class-coded grey patch in a random corner (grey "
                                           "255 − 25y in training, 25y at test); masks of the corners.",
         ("decoymnist",), _DECOY_MASKS),
        ("decoy-fmnist", "cdep_decoymnist", "Decoy-FMNIST: the DecoyMNIST recipe on Fashion-MNIST; masks of the "
                                            "corners.", ("decoyfmnist",), _DECOY_MASKS),
        ("color-mnist", "cdep_colormnist", "ColorMNIST: digit d in colour d in training and 9 − d at test (a "
                                           "colour-only model scores about 0 %).", ("colormnist",), ())):
    DATASETS.register(_name, DataSetFamily(_name, _load, _help, SHORTCUT_SPLITS, _where, model=_model, masks=_masks),
                      aliases=_aliases)


def masked_dataset(x: Any, y: Any, mask: Any, *, meaning: str = MUST_NOT_USE, name: str = "custom",
                   source: str = "in memory") -> ArrayDataset:
    """A data set of images, labels and annotation masks, whose batches carry the mask as
    ``extras["mask"]`` for CDEP / RRR / ExpectedGradients (``meaning="must_not_use"``, the default) or
    Locality and the localisation metrics (``meaning="evidence"``); documentation: guide/concepts.

    The mask is read by :func:`explainreg.inputs.normalize_mask` with the data set in the batch's
    place, so it accepts what the penalties accept: one H×W for every image, N×H×W, N×1×H×W or
    N×C×H×W; values in [0, 1], 1 = the masked region. Binary masks are stored as
    bool, soft ones as float32.

    Args:
        x: N×C×H×W float images. y: N integer labels. mask: as above.
        meaning: what the mask marks: ``"must_not_use"`` (1 = the region the model should not use)
            or ``"evidence"`` (1 = where the right reasons are); recorded in ``mask_meanings``.
        name, source: the data set's name and a description of where it came from.

    Shape:
        ``extras["mask"]`` N×(1|C)×H×W.

    Returns:
        An :class:`~explainreg.data.arrays.ArrayDataset`.

    Example:
        >>> x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 2
        >>> mask = torch.zeros(8, 8)
        >>> mask[:2, :2] = 1
        >>> data = masked_dataset(x, y, mask)
        >>> data.extras["mask"].shape, data.extras["mask"].dtype, data.mask_meanings
        (torch.Size([6, 1, 8, 8]), torch.bool, {'mask': 'must_not_use'})
    """
    meaning = check_mask_meaning(meaning, "meaning")
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    mask = torch.as_tensor(mask)  # a sequence here is one mask per image, not a list of blobs
    if not x.is_floating_point() or x.dim() != 4:
        raise ValueError(f"x must be N×C×H×W floats, got {x.dtype} of shape {tuple(x.shape)}")
    if y.dim() != 1 or len(y) != len(x) or y.is_floating_point():
        raise ValueError(f"y must hold one integer label per image ({len(x)}), got {y.dtype} {tuple(y.shape)}")
    # the package's one mask parser, with the data set as the batch: 1×(N|1)×(1|C)×H×W
    parsed = normalize_mask(mask, x, who="masked_dataset")[0]
    binary = mask.dtype == torch.bool or bool(((parsed == 0) | (parsed == 1)).all())
    mask = (parsed.bool() if binary else parsed.float()).expand(len(x), *parsed.shape[1:])
    return ArrayDataset(x, y.long(), {"mask": mask}, name=name, source=source, mask_meanings={"mask": meaning})


__all__ = ["ColorShortcut", "DecoyShortcut", "PixelBlobSampler", "TokenDecoyShortcut", "shortcut_for",
           "SHORTCUT_SPLITS", "add_decoy", "color_mnist",
           "color_mnist_blob_sampler", "color_mnist_stats", "color_palette", "decoy_corner_mask", "decoy_fmnist",
           "decoy_mnist", "masked_dataset", "pixel_nonzero_frequency", "train_val_indices"]
