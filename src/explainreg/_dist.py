"""The few collectives explainreg needs across processes (torchrun / ``torch.distributed``), and the
shard of the global batch the current process is working on.

Everything here is a no-op in one process (``torch.distributed`` not initialised, or one rank), so
the layers below ``training`` (penalties, metrics) can call it unconditionally:

* :func:`active` / :func:`rank_world`: whether a process group of more than one rank is running.
* :func:`all_reduce_sum`: a float64 vector summed over the ranks (counts, sums of losses).
* :func:`gather_rows`: every rank's rows (N_r × ...) concatenated in rank order (any N_r, 0 included).
* :func:`current_shard` / :func:`shard_rand`: during a training step, the trainer records which rows
  ``[offset, offset + rows)`` of the global batch of ``total`` rows this process holds; a penalty that
  draws one random row per sample (SGT's U(min, max) fill) draws the **global** batch's numbers and
  keeps its own rows, so the generator advances as in one process and the draws are the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def active() -> bool:
    """True when ``torch.distributed`` is initialised with more than one rank."""
    return (torch.distributed.is_available() and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1)


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _comm_device() -> torch.device:
    """Where collectives' tensors live: the current CUDA device under NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values) -> list[float]:
    """``values`` (numbers) summed element-wise over the ranks, in float64; unchanged in one process."""
    values = [float(v) for v in values]
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """All ranks' ``rows`` (N_r × ..., same trailing shape and dtype on every rank) concatenated in rank
    order, on ``rows``' device; ``rows`` itself in one process. Ranks may hold different N_r (0 too):
    each is padded to the largest for the ``all_gather`` and trimmed after."""
    if not active():
        return rows
    device = _comm_device()
    counts = torch.tensor([rows.shape[0]], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(counts) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(sizes, counts)
    sizes_ = [int(s) for s in sizes]
    longest = max(sizes_)
    padded = torch.zeros((longest,) + tuple(rows.shape[1:]), dtype=rows.dtype, device=device)
    padded[:rows.shape[0]] = rows.detach().to(device)
    parts = [torch.empty_like(padded) for _ in sizes_]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes_)]).to(rows.device)


# ------------------------------------------------------------------------------ the shard of a step
@dataclass(frozen=True)
class Shard:
    """Rows ``[offset, offset + rows)`` of a global batch of ``total`` rows."""

    offset: int
    rows: int
    total: int


_SHARD: Shard | None = None


def set_shard(shard: Shard | None) -> None:
    """Record (or clear, with None) the shard of the global batch this process is working on."""
    global _SHARD
    _SHARD = shard


def current_shard() -> Shard | None:
    return _SHARD


def shard_rand(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    """``torch.rand(shape, generator=...)`` whose first dimension is one row per sample of the batch.

    During a sharded training step (:func:`current_shard` set and ``shape[0]`` equal to its ``rows``),
    the global batch's ``total × shape[1:]`` numbers are drawn and rows ``[offset, offset + rows)``
    kept: the same numbers, and the same generator state afterwards, as one process drawing for the
    whole batch. Otherwise a plain draw."""
    shard = _SHARD
    if shard is not None and shape and shape[0] == shard.rows and shard.total != shard.rows:
        full = torch.rand((shard.total,) + tuple(shape[1:]), generator=generator, device=device, dtype=dtype)
        return full[shard.offset:shard.offset + shard.rows]
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)
