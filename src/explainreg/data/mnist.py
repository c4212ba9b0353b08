"""The IDX image sets, MNIST and Fashion-MNIST: :func:`locate` finds (or fetches) their files,
:func:`load_mnist` reads them as an :class:`~explainreg.data.arrays.ArrayDataset` of N×1×28×28 floats.

MNIST: LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document
recognition". Fashion-MNIST: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a novel image dataset for
benchmarking machine learning algorithms".
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from .arrays import ArrayDataset, stratified_subset, subset_note
from .catalog import DATASETS, DataSetFamily
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

__all__ = ["SPLITS", "STATS", "load_mnist", "locate"]

#: Mean and standard deviation of the training pixels on [0, 1].
STATS: dict[str, tuple[float, float]] = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
SPLITS = ("train", "test")


def _check_name(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in SOURCES:
        raise ValueError(f"unknown IDX data set {name!r}; available: {', '.join(SOURCES)} (every data set: "
                         "explainreg.data.DATASETS)")
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


def load_mnist(name: str = "mnist", split: str = "train", root: str | os.PathLike | None = None, *,
               download: bool = True, allow_bundled: bool = False,
               normalize: bool | tuple[float, float] = False, limit: int | None = None,
               subset_seed: int = 0) -> ArrayDataset:
    """Load MNIST or Fashion-MNIST as an :class:`ArrayDataset` of N×1×28×28 floats.

    Pixels are in [0, 1] (as the seed); ``normalize=True`` applies the data set's train mean/std,
    a ``(mean, std)`` pair applies those. ``limit`` keeps a seeded subset of ``limit`` images stratified by
    label (:func:`~explainreg.data.arrays.stratified_subset`; the same meaning for the text and UCR sets), named in ``source``.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (``fashion_mnist``, ``FashionMNIST`` accepted).
        split: ``"train"`` or ``"test"``.
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
        >>> data = load_mnist("fashion-mnist", "train", tmp.name, download=False, limit=3)
        >>> data.x.shape, sorted(data.y.tolist())              # 3 of 4 rows, both labels kept
        (torch.Size([3, 1, 28, 28]), [0, 0, 6])
        >>> round(float(load_mnist("fashion-mnist", "train", tmp.name, download=False).x[0, 0, 0, 5]) * 255)  # [0, 1]
        5
        >>> data.source.endswith("limit 3 (stratified by label, seed 0)")
        True
        >>> mean, std = STATS["fashion-mnist"]
        >>> z = load_mnist("fashion-mnist", "test", tmp.name, download=False, normalize=True)
        >>> bool(torch.allclose(z.x * std + mean, load_mnist("fashion-mnist", "test", tmp.name, download=False).x))
        True
        >>> tmp.cleanup()
    """
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



def _where(name: str, root: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    """Each split's folder (or "not found"), and whether the package bundles a subset of it."""
    rows = []
    for split in SPLITS:
        try:
            where = locate(name, split, root, download=False)[1]
        except DataNotFoundError:
            where = "not found"
        bundled = "yes" if find_split(BUNDLED_DIR, SOURCES[name], split) else "no"
        rows.append((name, split, f"{where}   (bundled subset: {bundled})"))
    return rows


def _load(name: str, split: str, root, *, limit: int | None, subset_seed: int, **options) -> ArrayDataset:
    return load_mnist(name, split, root, limit=limit, subset_seed=subset_seed, **options)


for _name, _model, _help, _aliases in (
        ("mnist", "cnn3b", "MNIST: 28×28 grey handwritten digits, 10 classes (IDX files; downloaded if missing).", ()),
        ("fashion-mnist", "cnn4b", "Fashion-MNIST: 28×28 grey garments, 10 classes (IDX files; downloaded if "
                                   "missing).", ("fashionmnist",))):
    DATASETS.register(_name, DataSetFamily(_name, _load, _help, SPLITS, _where, model=_model,
                                           options=("download", "allow_bundled", "normalize")), aliases=_aliases)
