"""scikit-learn's bundled tables as B×F feature data sets (methods A.16): ``breast-cancer`` (569 rows,
30 features, 2 classes) and ``wine`` (178 rows, 13 features, 3 classes); nothing is downloaded.

Rows are split once (stratified, keyed by ``split_seed``: 75 % train, 25 % test) and standardised
with the training split's mean and standard deviation, x' = (x − μ_train) / σ_train. With
``shortcut=True`` a planted feature is appended: column F holds the label's code,
s_b = 2·y_b/(K − 1) − 1 ∈ [−1, 1] (plus N(0, ``shortcut_noise``²) noise, keyed by row), in every
split; the ``mask`` extra (B×(F+1), 1 at that column) marks it as what the model must not use. So a
model can reach full accuracy from the shortcut alone, and penalties with feature masks (RRR, CDEP,
…) and the behavioural metrics (FlipRate, ShortcutReliance) read the mask as they do on images.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from .._random import keyed_draw
from .._validation import check_choice
from ..inputs import MUST_NOT_USE
from .arrays import ArrayDataset, stratified_subset, subset_note
from .catalog import DATASETS, CarriedMask, DataSetFamily

#: the bundled tables by data-set name: (scikit-learn loader name, one line about it)
TABLES = {"breast-cancer": ("load_breast_cancer", "Wisconsin breast cancer (569 × 30 features, 2 classes)"),
          "wine": ("load_wine", "wine cultivars (178 × 13 features, 3 classes)")}
SPLITS = ("train", "test")


def load_tabular(name: str, split: str = "train", *, shortcut: bool = False, shortcut_noise: float = 0.0,
                 split_seed: int = 0, limit: int | None = None, subset_seed: int = 0) -> ArrayDataset:
    """One split of a bundled table, standardised on the training split.

    Args:
        name: ``"breast-cancer"`` or ``"wine"`` (:data:`TABLES`).
        split: ``"train"`` (75 %) or ``"test"`` (25 %), stratified by class.
        shortcut: append the planted label feature (module docstring) and its ``mask``.
        shortcut_noise: the standard deviation of the noise on the planted feature.
        split_seed: keys the train/test split.
        limit, subset_seed: a stratified subset of ``limit`` rows (:func:`stratified_subset`).

    Shape:
        x N×F float32 (F + 1 with the shortcut), y N int64; extras ``mask`` N×(F + 1) with the shortcut.

    Returns:
        An :class:`ArrayDataset`; its ``feature_names`` attribute names the columns.

    Example::

        >>> train = load_tabular("wine", "train", shortcut=True)
        >>> train.x.shape, train.extras["mask"][0, -1].item(), train.mask_meanings
        (torch.Size([133, 14]), 1.0, {'mask': 'must_not_use'})
        >>> abs(float(train.x[:, :-1].mean())) < 1e-6                       # standardised on this split
        True
    """
    check_choice("name", name, tuple(TABLES))
    check_choice("split", split, SPLITS)
    if shortcut_noise < 0:
        raise ValueError(f"shortcut_noise must be a non-negative standard deviation, got {shortcut_noise}")
    import sklearn.datasets

    table = getattr(sklearn.datasets, TABLES[name][0])()
    x = torch.tensor(table.data, dtype=torch.float64)
    y = torch.tensor(table.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(split_seed)))
    is_train = torch.zeros(len(y), dtype=torch.bool)
    for c in y.unique():                                  # stratified: the first 75 % of each class's shuffled rows
        rows = order[y[order] == c]
        is_train[rows[:int(round(0.75 * len(rows)))]] = True
    mean, std = x[is_train].mean(0), x[is_train].std(0)
    rows = is_train.nonzero().flatten() if split == "train" else (~is_train).nonzero().flatten()
    x = ((x[rows] - mean) / std).float()
    y = y[rows]
    names = [str(n) for n in table.feature_names]
    extras: dict[str, Any] = {}
    meanings: dict[str, str] = {}
    if shortcut:
        k = int(table.target.max()) + 1
        code = (2 * y.float() / (k - 1) - 1)[:, None]
        if shortcut_noise:
            code = code + shortcut_noise * keyed_draw("normal", 0, rows, (1,), f"tabular_shortcut_{split}")
        x = torch.cat([x, code], 1)
        mask = torch.zeros_like(x)
        mask[:, -1] = 1
        extras, meanings, names = {"mask": mask}, {"mask": MUST_NOT_USE}, names + ["shortcut"]
    source = f"sklearn.datasets.{TABLES[name][0]} ({split}, split seed {split_seed})"
    data = ArrayDataset(x, y, extras, name=name + ("-shortcut" if shortcut else ""), source=source,
                        mask_meanings=meanings)
    if limit is not None:
        data = data.take(stratified_subset(data.y, limit, subset_seed))
        data.source = source + subset_note(limit, subset_seed)
    data.feature_names = names
    return data


def _load(name: str, split: str, root: str | os.PathLike | None = None, *, limit: int | None = None,
          subset_seed: int = 0, **options: Any) -> ArrayDataset:
    return load_tabular(name, split, limit=limit, subset_seed=subset_seed, **options)


for _name, (_loader, _help) in TABLES.items():
    DATASETS.register(_name, DataSetFamily(
        _name, _load, f"scikit-learn's {_help}, standardised; shortcut=True plants the label as a masked feature.",
        SPLITS, lambda name, root, _l=_loader: [(name, "/".join(SPLITS), f"bundled with scikit-learn ({_l})")],
        model="mlp",
        options=("shortcut", "shortcut_noise", "split_seed"),
        masks=(CarriedMask("mask", MUST_NOT_USE, option="shortcut", help="the planted label feature"),)))

__all__ = ["SPLITS", "TABLES", "load_tabular"]
