"""Rows in memory: :class:`ArrayDataset` (features, labels, per-row extras) and the ``limit`` subset every
loader takes (:func:`stratified_subset`, :func:`subset_note`). Every data-set family builds on these."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch.utils.data import Dataset

from ..inputs import check_mask_meaning


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
    class balance as the whole split. Every ``limit`` of every loader (:func:`~explainreg.data.load_dataset`, the text
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
        >>> from explainreg.data.arrays import stratified_subset
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


__all__ = ["ArrayDataset", "stratified_subset", "subset_note"]
