"""In-memory image data sets: :class:`ArrayDataset` and the MNIST-family loaders."""
from __future__ import annotations

import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from .idx import read_idx
from .sources import (
    BUNDLED_DIR,
    ENV_VAR,
    SOURCES,
    DataNotFoundError,
    candidate_dirs,
    download as download_files,
    file_in,
    find_split,
    resolve_data_root,
)

#: Mean and standard deviation of the training pixels on [0, 1].
STATS: dict[str, tuple[float, float]] = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
SPLITS = ("train", "test")
#: text data sets (data/text.py): token ids with lengths and token masks; SST also has a "dev" split
TEXT_NAMES = ("sst", "sst-2", "sst2", "sst-decoy", "sst-article", "sst-gender", "rotten-tomatoes", "rt")


@dataclass
class ArrayDataset(Dataset):
    """Images ``x`` (N×C×H×W float), labels ``y`` (N, long) and optional per-sample ``extras``.

    Items are ``(x_i, y_i, {name: extra_i})``. ``source`` says where the data came from.

    Args:
        x: the images (or any N×… features).
        y: one integer label per row.
        extras: per-row tensors (masks, flags), each with N rows.
        name: the data set's name.
        source: where the rows came from (recorded in runs).
        mask_meanings: what each mask among the extras means (documentation: guide/concepts): ``{"mask":
            "must_not_use"}`` (a shortcut the model must not use) or ``"evidence"`` (where the right
            reasons are); a mask not named here carries no stated meaning.

    Shape:
        x: (N, ...); y: (N,); each extra: (N, ...). ``num_classes`` is max(y) + 1.

    Raises:
        ValueError: x without a batch dimension, or y / an extra with another number of rows.

    Example::

        >>> import torch
        >>> from explainreg.data import ArrayDataset
        >>> data = ArrayDataset(torch.zeros(10, 1, 2, 2), torch.arange(10) % 3, {"mask": torch.ones(10, 1, 2, 2)})
        >>> x, y, extras = data[4]
        >>> len(data), data.num_classes, int(y), tuple(extras["mask"].shape)
        (10, 3, 1, (1, 2, 2))
        >>> train, val = data.split(0.3, seed=0)
        >>> len(train), len(val), sorted(train.take(3).y.tolist() + val.y.tolist())[:1]
        (7, 3, [0])
    """

    x: torch.Tensor
    y: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    name: str = "custom"
    source: str = "in memory"
    mask_meanings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dim() < 2:
            raise ValueError(f"x must have a batch dimension and features, got shape {tuple(self.x.shape)}")
        if self.y.dim() != 1 or len(self.y) != len(self.x):
            raise ValueError(f"y must be 1-D with one label per image ({len(self.x)}), got shape {tuple(self.y.shape)}")
        for key, value in self.extras.items():
            if len(value) != len(self.x):
                raise ValueError(f"extras[{key!r}] has {len(value)} rows, expected {len(self.x)}")
        from ..inputs import check_mask_meaning

        self.mask_meanings = {k: check_mask_meaning(v, f"mask_meanings[{k!r}]")
                              for k, v in dict(self.mask_meanings).items() if v is not None}

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index], {k: v[index] for k, v in self.extras.items()}

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def take(self, indices: torch.Tensor | Sequence[int] | int) -> "ArrayDataset":
        """A new data set with the rows ``indices`` (an int ``n`` means the first n).

        Example::

            >>> import torch
            >>> from explainreg.data import ArrayDataset
            >>> data = ArrayDataset(torch.arange(5.0).view(5, 1), torch.arange(5))
            >>> data.take([4, 0]).y, len(data.take(3)), data.take(2).source
            (tensor([4, 0]), 3, 'in memory, 2 rows')
        """
        if isinstance(indices, int):
            indices = torch.arange(min(indices, len(self)))
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ArrayDataset(
            self.x[indices], self.y[indices], {k: v[indices] for k, v in self.extras.items()},
            name=self.name, source=f"{self.source}, {len(indices)} rows", mask_meanings=dict(self.mask_meanings),
        )

    def split(self, fraction: float, seed: int = 0) -> tuple["ArrayDataset", "ArrayDataset"]:
        """Random split into (1 − fraction, fraction) parts, e.g. train / validation.

        Seeded; each part keeps the original row order. ``fraction`` must be in (0, 1).

        Example::

            >>> import torch
            >>> from explainreg.data import ArrayDataset
            >>> data = ArrayDataset(torch.zeros(8, 1), torch.arange(8))
            >>> a, b = data.split(0.25, seed=1)
            >>> len(a), len(b), sorted(a.y.tolist() + b.y.tolist()) == list(range(8))
            (6, 2, True)
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_second = int(round(fraction * len(self)))
        return self.take(perm[n_second:].sort().values), self.take(perm[:n_second].sort().values)


def stratified_subset(labels: torch.Tensor | Sequence[int], limit: int | None, seed: int = 0) -> torch.Tensor:
    """The rows that ``limit=N`` keeps: a seeded subset of ``N`` rows stratified by label, in their original order.

    Each class keeps its share of the ``N`` rows (largest remainders; ties to the smaller label), drawn
    from one seeded permutation of the rows, so that a file grouped or sorted by label gives the same
    class balance as the whole split. Every ``limit`` of every loader (:func:`load_dataset`, the text
    and UCR loaders) has this meaning.

    Args:
        labels: one integer label per row.
        limit: how many rows; None, or at least the number of rows: all of them.
        seed: seed of the draw (recorded in the data set's ``source``).

    Returns:
        A sorted 1-D long tensor of row indices.

    Raises:
        ValueError: ``limit`` not a positive integer.

    Example::

        >>> import torch
        >>> from explainreg.data.datasets import stratified_subset
        >>> labels = torch.tensor([0] * 6 + [1] * 2)           # a file grouped by label
        >>> keep = stratified_subset(labels, 4, seed=0)
        >>> labels[keep].tolist(), bool((keep.diff() > 0).all()), stratified_subset(labels, 4, seed=0).equal(keep)
        ([0, 0, 0, 1], True, True)
        >>> stratified_subset(labels, None).tolist() == list(range(8))
        True
    """
    labels = torch.as_tensor(labels).reshape(-1).long()
    n = len(labels)
    if limit is None:
        return torch.arange(n)
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
        raise ValueError(f"limit must be a positive number of rows (a seeded subset stratified by label), "
                         f"got {limit!r}")
    if limit >= n:
        return torch.arange(n)
    classes, counts = labels.unique(return_counts=True)
    exact = counts.double() * limit / n
    quota = exact.floor().long()
    remainder = limit - int(quota.sum())
    order = sorted(range(len(classes)), key=lambda c: (-float(exact[c] - quota[c]), c))
    for c in order[:remainder]:
        quota[c] += 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    keep = [perm[labels[perm] == cls][:int(q)] for cls, q in zip(classes, quota)]
    return torch.cat(keep).sort().values


def subset_note(limit: int | None, seed: int) -> str:
    """The words a loader adds to ``source`` for ``limit`` (empty when no limit).

    Example::

        >>> subset_note(500, 0), subset_note(None, 0)
        (', limit 500 (stratified by label, seed 0)', '')
    """
    return "" if limit is None else f", limit {limit} (stratified by label, seed {seed})"


def available_datasets() -> list[str]:
    """The names of the IDX image data sets :func:`load_dataset` reads (text, UCR and shortcut sets aside).

    Example::

        >>> from explainreg.data import available_datasets
        >>> available_datasets()
        ['fashion-mnist', 'mnist']
    """
    return sorted(SOURCES)


def _check_name(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}, "
                         "and the UCR/UEA archive's sets as 'ucr/NAME' (e.g. 'ucr/GunPoint')")
    return key


def locate(name: str, split: str = "train", root: str | os.PathLike | None = None,
           download: bool = True, allow_bundled: bool = False) -> tuple[Path, str]:
    """Find (or fetch) the folder holding ``split`` of data set ``name``; returns ``(folder, description)``.

    Looks under the data root (:func:`~explainreg.data.sources.resolve_data_root`) in ``ROOT/<name>/``,
    ``ROOT/<Name>/raw/`` and ``ROOT``; then downloads (``download=True``); then, with
    ``allow_bundled=True``, falls back to the small real subset shipped with the package (with a warning).

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (``fashion_mnist``, ``FashionMNIST`` accepted).
        split: ``"train"`` or ``"test"``.
        root: the data root; None reads ``$EXPLAINREG_DATA``, then ``~/.cache/explainreg``.
        download: fetch missing files (md5-checked).
        allow_bundled: accept the bundled subset.

    Returns:
        ``(folder, description)``.

    Raises:
        ValueError: an unknown name or split.
        DataNotFoundError: the files are nowhere (the message lists where it looked).

    Example::

        >>> import os, tempfile, torch
        >>> from explainreg.data.idx import write_idx
        >>> tmp = tempfile.TemporaryDirectory()              # a tiny stand-in for the IDX files
        >>> os.makedirs(os.path.join(tmp.name, "mnist"))
        >>> for prefix in ("train", "t10k"):
        ...     for kind, array in (("images-idx3", torch.arange(4 * 28 * 28).view(4, 28, 28) % 256),
        ...                         ("labels-idx1", torch.tensor([0, 6, 0, 6]))):
        ...         write_idx(os.path.join(tmp.name, "mnist", f"{prefix}-{kind}-ubyte.gz"), array.to(torch.uint8))
        >>> folder, how = locate("MNIST", "test", tmp.name, download=False)
        >>> folder.name, sorted(p.name for p in folder.iterdir())[:2]
        ('mnist', ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'])
        >>> locate("fashion-mnist", "train", tmp.name, download=False)
        Traceback (most recent call last):
        ...
        explainreg.data.sources.DataNotFoundError: fashion-mnist train files (train-images-idx3-ubyte.gz, ...) not found; ...
        >>> tmp.cleanup()
    """
    key = _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = SOURCES[key]
    data_root, how = resolve_data_root(root)
    folder = find_split(data_root, source, split)
    if folder is not None:
        return folder, str(folder)
    problem = ""
    if download:
        try:
            folder = download_files(source, split, data_root / source.name)
            return folder, f"{folder} (downloaded)"
        except OSError as exc:
            problem = f" Download failed: {exc}."
    bundled = find_split(BUNDLED_DIR, source, split)
    if allow_bundled and bundled is not None:
        warnings.warn(
            f"{key} not found under {data_root}; using the small real subset bundled with explainreg "
            f"({bundled}). Point --data-root or ${ENV_VAR} at the full files for real results.",
            stacklevel=2,
        )
        return bundled, f"{bundled} (bundled subset)"
    looked = ", ".join(str(d) for d in candidate_dirs(data_root, source))
    raise DataNotFoundError(
        f"{key} {split} files ({', '.join(source.split_files(split))}) not found; looked in {looked} "
        f"(data root from {how}).{problem} Pass --data-root / root=... or set ${ENV_VAR} to a folder "
        f"holding {source.name}/ with the IDX .gz files."
    )


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, *,
                 download: bool = True, allow_bundled: bool = False,
                 normalize: bool | tuple[float, float] = False, limit: int | None = None,
                 subset_seed: int = 0) -> ArrayDataset:
    """Load MNIST or Fashion-MNIST as an :class:`ArrayDataset` of N×1×28×28 floats.

    Pixels are in [0, 1] (as the seed); ``normalize=True`` applies the data set's train mean/std,
    a ``(mean, std)`` pair applies those. ``limit`` keeps a seeded subset of ``limit`` images stratified by
    label (:func:`stratified_subset`; the same meaning for the text and UCR sets), named in ``source``.

    ``"ucr/NAME"`` (e.g. ``"ucr/GunPoint"``) loads a UCR/UEA archive set from ``ROOT/ucr/NAME/NAME_{TRAIN,TEST}.ts``
    as a :class:`~explainreg.data.ucr.SeriesDataset` of N×C×T series (see :func:`explainreg.data.ucr.load_ucr`).
    The text names (:data:`TEXT_NAMES`) load SST / Rotten Tomatoes (:mod:`explainreg.data.text`), and
    ``"decoy-mnist"``, ``"decoy-fmnist"``, ``"color-mnist"`` the shortcut sets generated from the IDX files.

    Args:
        name: a data set name (above).
        split: ``"train"`` or ``"test"`` (SST also ``"dev"``).
        root, download, allow_bundled: as :func:`locate`.
        normalize: True: the train mean/std of :data:`STATS`; a ``(mean, std)`` pair: those.
        limit: keep ``limit`` rows: a seeded subset stratified by label, in file order.
        subset_seed: seed of the ``limit`` subset.

    Shape:
        x: (N, 1, 28, 28) float, y: (N,) long.

    Returns:
        An :class:`ArrayDataset` (``source`` names the folder).

    Raises:
        ValueError: an unknown name, a bad split or limit, images and labels that do not match.
        DataNotFoundError: the files are nowhere.

    Example::

        >>> import os, tempfile, torch
        >>> from explainreg.data.idx import write_idx
        >>> tmp = tempfile.TemporaryDirectory()              # a tiny stand-in for the IDX files
        >>> os.makedirs(os.path.join(tmp.name, "fashion-mnist"))
        >>> for prefix in ("train", "t10k"):
        ...     for kind, array in (("images-idx3", torch.arange(4 * 28 * 28).view(4, 28, 28) % 256),
        ...                         ("labels-idx1", torch.tensor([0, 6, 0, 6]))):
        ...         write_idx(os.path.join(tmp.name, "fashion-mnist", f"{prefix}-{kind}-ubyte.gz"), array.to(torch.uint8))
        >>> data = load_dataset("fashion-mnist", "train", tmp.name, download=False, limit=3)
        >>> data.x.shape, sorted(data.y.tolist())              # 3 of 4 rows, both labels kept
        (torch.Size([3, 1, 28, 28]), [0, 0, 6])
        >>> round(float(load_dataset("fashion-mnist", "train", tmp.name, download=False).x[0, 0, 0, 5]) * 255)  # [0, 1]
        5
        >>> data.source.endswith("limit 3 (stratified by label, seed 0)")
        True
        >>> mean, std = STATS["fashion-mnist"]
        >>> z = load_dataset("fashion-mnist", "test", tmp.name, download=False, normalize=True)
        >>> bool(torch.allclose(z.x * std + mean, load_dataset("fashion-mnist", "test", tmp.name, download=False).x))
        True
        >>> tmp.cleanup()
    """
    if isinstance(name, str) and name.lower().replace("_", "-") in TEXT_NAMES:
        from .text import load_text_dataset  # SST (sst, sst-2, sst-decoy|article|gender), rotten-tomatoes

        return load_text_dataset(name, split, root, limit=limit, subset_seed=subset_seed)
    if isinstance(name, str) and name.lower().startswith("ucr/"):
        from .ucr import load_ucr

        return load_ucr(name, split, root, limit=limit, subset_seed=subset_seed)
    shortcut = str(name).lower().replace("_", "-")
    shortcut = {"decoymnist": "decoy-mnist", "decoyfmnist": "decoy-fmnist", "colormnist": "color-mnist"}.get(shortcut,
                                                                                                              shortcut)
    if shortcut in ("decoy-mnist", "decoy-fmnist", "color-mnist"):  # generated from the IDX files (data/shortcuts.py)
        from .shortcuts import SHORTCUT_DATASETS

        return SHORTCUT_DATASETS[shortcut](split, root, limit=limit)
    key = _check_name(name)
    folder, description = locate(key, split, root, download=download, allow_bundled=allow_bundled)
    image_file, label_file = SOURCES[key].split_files(split)
    images = read_idx(file_in(folder, image_file))
    labels = read_idx(file_in(folder, label_file))
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
        raise ValueError(f"{folder}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    if limit is not None:
        keep = stratified_subset(labels, limit, subset_seed)
        images, labels = images[keep], labels[keep]
        description += subset_note(limit, subset_seed)
    x = images.unsqueeze(1).float().div_(255.0)
    if normalize:
        mean, std = STATS[key] if normalize is True else normalize
        x = (x - mean) / std
    return ArrayDataset(x, labels.long(), name=key, source=description)


__all__ = ["ArrayDataset", "SPLITS", "STATS", "TEXT_NAMES", "available_datasets", "load_dataset", "locate",
           "stratified_subset", "subset_note"]
