"""Mini-batches from in-memory or generic data sets, shuffled reproducibly and sharded by rank.

Sharding (``rank``/``world_size``) is how distributed data-parallel training (torchrun) plugs in:
each process takes every ``world_size``-th index of the same seeded permutation.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import ArrayDataset

__all__ = ["Batch", "epoch_order", "iterate_batches", "num_batches", "world"]

Batch = tuple[torch.Tensor, torch.Tensor, dict[str, Any]]


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from torch.distributed when initialised, else the
    torchrun environment variables, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The permutation of epoch ``epoch``: a function of (seed, epoch) only, so resumed runs repeat."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def iterate_batches(dataset: Dataset, batch_size: int, *, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                    device: torch.device | str = "cpu", drop_single: bool = False) -> Iterator[Batch]:
    """Yield ``(x, y, extras)`` batches on ``device``; this process's shard of the epoch's order.
    ``drop_single``: leave out a last batch of one example (BatchNorm cannot train on it)."""
    rank, world_size = world()
    order = epoch_order(len(dataset), seed, epoch, shuffle)[rank::world_size]
    if drop_single and len(order) % batch_size == 1:
        order = order[:-1]
    if callable(getattr(dataset, "batch", None)):  # e.g. data.text.TextDataset: trims padding to the batch
        for start in range(0, len(order), batch_size):
            yield dataset.batch(order[start:start + batch_size], device)
        return
    if isinstance(dataset, ArrayDataset):
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            extras = {k: v[index].to(device) for k, v in dataset.extras.items()}
            yield dataset.x[index].to(device), dataset.y[index].to(device), extras
        return
    # a data set may ask for DataLoader settings (workers, pinned memory): e.g. data.ImageFolder.loader_options
    options = dict(getattr(dataset, "loader_options", None) or {})
    if options.get("pin_memory") and torch.device(device).type != "cuda":
        options["pin_memory"] = False  # pinning only helps host-to-GPU copies
    blocking = not options.get("pin_memory", False)
    loader = DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size, shuffle=False,
                        **options)
    for item in loader:
        x, y, *rest = item
        extras = rest[0] if rest and isinstance(rest[0], dict) else {}
        yield (x.to(device, non_blocking=not blocking), y.to(device, non_blocking=not blocking),
               {k: v.to(device, non_blocking=not blocking) for k, v in extras.items()})


def num_batches(dataset: Dataset, batch_size: int, drop_single: bool = False) -> int:
    """How many batches :func:`iterate_batches` yields for this process (the same ``drop_single``)."""
    _, world_size = world()
    shard = (len(dataset) + world_size - 1) // world_size
    if drop_single and shard % batch_size == 1:
        shard -= 1
    return (shard + batch_size - 1) // batch_size
