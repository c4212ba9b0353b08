"""Loading any data set by name: :func:`load_dataset` over the registered families (:data:`DATASETS`).

The families live in their own modules, each registering its sets when it loads: the IDX image sets
(:mod:`~explainreg.data.mnist`), the shortcut sets generated from them (:mod:`~explainreg.data.shortcuts`),
SST and Rotten Tomatoes (:mod:`~explainreg.data.text`) and the UCR/UEA archive (:mod:`~explainreg.data.ucr`).
This module imports them all, so that the registry is complete wherever :func:`load_dataset` is.
"""
from __future__ import annotations

import os

from . import mnist, shortcuts, text, ucr  # noqa: F401  (each registers its data sets in DATASETS)
from .arrays import ArrayDataset, stratified_subset, subset_note  # noqa: F401  (the rows every family builds)
from .catalog import DATASETS, DataSetFamily, dataset_family  # noqa: F401
from .mnist import SPLITS, STATS, locate  # noqa: F401

__all__ = ["available_datasets", "load_dataset"]



def available_datasets() -> list[str]:
    """Every data set name :func:`load_dataset` reads, in the registry's order (a family's sets as ``PREFIX/NAME``:
    those of the shared data folder; other archive sets under the data root load too).

    Example::

        >>> from explainreg.data import available_datasets
        >>> names = available_datasets()
        >>> names[:2], "decoy-mnist" in names, "sst-2" in names, "ucr/GunPoint" in names
        (['mnist', 'fashion-mnist'], True, True, True)
    """
    return [name for family in DATASETS.values() for name in family.names()]


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, *,
                 download: bool = True, allow_bundled: bool = False,
                 normalize: bool | tuple[float, float] = False, limit: int | None = None,
                 subset_seed: int = 0) -> ArrayDataset:
    """Load the registered data set ``name`` (:data:`DATASETS`; ``explainreg datasets`` lists them).

    ``"mnist"`` and ``"fashion-mnist"`` are N×1×28×28 floats in [0, 1] (:func:`~explainreg.data.mnist.load_mnist`);
    ``"decoy-mnist"``, ``"decoy-fmnist"``, ``"color-mnist"`` the shortcut sets generated from them
    (:mod:`~explainreg.data.shortcuts`); ``"sst"``, ``"sst-2"``, ``"sst-decoy"`` / ``"-article"`` / ``"-gender"`` and
    ``"rotten-tomatoes"`` token ids (:func:`~explainreg.data.text.load_text_dataset`); ``"ucr/NAME"`` (e.g.
    ``"ucr/GunPoint"``) a UCR/UEA archive set from ``ROOT/ucr/NAME/NAME_{TRAIN,TEST}.ts`` as N×C×T series
    (:func:`~explainreg.data.ucr.load_ucr`). ``limit`` keeps a seeded subset of ``limit`` rows stratified by
    label (:func:`~explainreg.data.arrays.stratified_subset`), named in ``source``, for every data set.

    Args:
        name: a registered name (case and ``-`` / ``_`` do not matter; aliases such as ``"rt"`` work).
        split: one of the data set's splits (``DATASETS[name].splits``: ``"train"``, ``"test"``; SST also
            ``"dev"``; the shortcut sets ``"val"``).
        root: the data root (None: ``$EXPLAINREG_DATA``, then ``~/.cache/explainreg``).
        download, allow_bundled: as :func:`~explainreg.data.mnist.locate` (the IDX sets).
        normalize: the IDX sets: True, the train mean/std of :data:`~explainreg.data.mnist.STATS`; a
            ``(mean, std)`` pair: those.
        limit: keep ``limit`` rows: a seeded subset stratified by label, in file order.
        subset_seed: seed of the ``limit`` subset.

    Returns:
        An :class:`~explainreg.data.arrays.ArrayDataset` (``source`` names the files).

    Raises:
        UnknownNameError: an unknown name (a ``ValueError``; the message lists the registered ones).
        ValueError: a bad split or limit; ``normalize`` for a data set that comes in its own fixed scaling.
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
        >>> data = load_dataset("Fashion_MNIST", "train", tmp.name, download=False, limit=3)
        >>> data.name, data.x.shape, sorted(data.y.tolist())  # 3 of 4 rows, both labels kept
        ('fashion-mnist', torch.Size([3, 1, 28, 28]), [0, 0, 6])
        >>> load_dataset("sst-2", "test", tmp.name, normalize=True)
        Traceback (most recent call last):
        ...
        ValueError: normalize applies to mnist, fashion-mnist; sst-2 comes in its own fixed scaling
        >>> tmp.cleanup()
    """
    family, canonical = dataset_family(name)
    given = {"download": download, "allow_bundled": allow_bundled, "normalize": normalize}
    options = {k: v for k, v in given.items() if k in family.options}
    if normalize is not False and "normalize" not in family.options:
        takes = ", ".join(f.name for f in DATASETS.values() if "normalize" in f.options)
        raise ValueError(f"normalize applies to {takes}; {canonical} comes in its own fixed scaling")
    return family.load(canonical, split, root, limit=limit, subset_seed=subset_seed, **options)
