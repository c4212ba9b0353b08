"""Metric state across processes: what ``Metric.compute`` reduces when ``torch.distributed`` runs.

A metric's state is its per-image rows (B-vectors or B×S curves) plus a count of degenerate maps;
the reduction (torchmetrics' ``dist_reduce_fx="cat"`` and ``"sum"``) is

    rows         = every rank's rows, concatenated, then put in data-set order by each row's index
    n_degenerate = Σ_ranks n_degenerate

so ``compute`` gives every rank the one-process result whatever share of the images each rank
updated with (random draws and tie-breaks are keyed by image index, ``metrics._core.Metric``).
In one process both are identities. Every rank must call ``compute`` (it is a collective), with
at least one ``update`` each and the same metric settings.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

import torch

from .. import _dist


_LOCAL: contextvars.ContextVar[bool] = contextvars.ContextVar("local_sync", default=False)


@contextmanager
def local_sync() -> Iterator[None]:
    """While the block runs, :func:`sync_rows` and :func:`sync_count` keep this process's state (a
    metric's per-batch result, as torchmetrics' ``forward`` without ``dist_sync_on_step``)."""
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


def _syncing() -> bool:
    return _dist.active() and not _LOCAL.get()


def sync_rows(rows: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """All ranks' ``rows`` (N_r × ...), in the order of their data-set ``index`` (N_r,) when given
    (rank order otherwise); ``rows`` itself in one process."""
    if not _syncing():
        return rows
    gathered = _dist.gather_rows(rows)
    if index is None:
        return gathered
    order = _dist.gather_rows(index.to(torch.long).cpu()).argsort(stable=True)
    return gathered[order.to(gathered.device)]


def sync_count(count: int) -> int:
    """``count`` summed over the ranks (``count`` itself in one process)."""
    if not _syncing():
        return count
    return int(round(_dist.all_reduce_sum([count])[0]))


def row_index(indices: list[torch.Tensor], n_rows: int) -> torch.Tensor | None:
    """The recorded image indices of ``n_rows`` rows, or None when they do not cover the rows one to
    one (a subclass that appends rows without ``_begin_update``): then rank order is kept."""
    if not indices:
        return None
    index = torch.cat(indices)
    return index if index.shape[0] == n_rows else None
