"""Data-parallel training over processes (torchrun): one global batch, split across the ranks.

Launch any script that calls :func:`explainreg.training.train`, or the command line, with torchrun::

    torchrun --nproc_per_node 2 --no-python explainreg train --dataset mnist --penalty gradient_l1=0.1

:func:`train` sees the torchrun environment (``WORLD_SIZE`` > 1), initialises the process group
(gloo on CPU, NCCL on CUDA, each rank on ``cuda:LOCAL_RANK``) and trains with a :class:`DataParallel`:

* **The global batch.** Step s takes rows ``[s·G, (s+1)·G)`` of the epoch's seeded permutation,
  G = ``config.batch_size``, exactly as one process; rank r holds the r-th of W near-equal
  contiguous pieces (``torch.tensor_split``). A piece with no rows (a last batch of fewer than W
  rows) is padded with one repeated row that carries weight 0, so every rank runs every step:
  no rank waits forever in a collective, no rank runs out of batches first.
* **The loss is the mean over the global batch.** Rank r's objective gives L_r, the mean over its
  n_r rows; it back-propagates w_r·L_r with w_r = n_r·W / N (N = rows of the global batch), and the
  gradients are averaged over the ranks:  (1/W) Σ_r ∇(w_r L_r) = Σ_r (n_r/N) ∇L_r = ∇ (1/N) Σ_rows ℓ.
  This is exact for every term that is a mean over samples (cross-entropy, GradientL1, RRR, the
  SGT KL term, CDEP's per-blob means, Smoothness, Locality, Symmetry); terms that couple the
  samples of a batch (Consistency's pairs, Fidelity's hinge max(0, mean d − τ), expected
  gradients' references drawn from the batch) are computed on each rank's piece: they train, but
  do not equal one process. Random draws are made from each rank's copy of the objective's
  generator (same seed, same consumption); SGT's per-sample fill draws the global batch's numbers
  and keeps its rows (:func:`explainreg._dist.shard_rand`), so it does equal one process. Dropout
  masks and BatchNorm batch statistics are per rank (use ``nn.SyncBatchNorm`` for the latter).
* **Gradient synchronisation**, ``mode``:

  - ``"ddp"``: the model is wrapped in ``torch.nn.parallel.DistributedDataParallel`` and the
    objective calls the wrapper; DDP's bucketed all-reduce runs during ``loss.backward()``. Double
    backprop is fine under DDP here because the input gradients are taken with
    ``torch.autograd.grad(..., inputs=x)``, which does not fire DDP's parameter hooks; only the
    final ``backward`` does, once per parameter. Extra forwards (Fidelity, SGT's masked copy,
    Symmetry's rotated copy) go through the wrapper too.
  - ``"allreduce"``: the objective calls the plain model; after ``backward`` every gradient is
    summed over the ranks in one flat ``all_reduce`` and divided by W (the same average DDP
    computes), then clipping and the optimiser step run on identical gradients everywhere;
    floating buffers (BatchNorm running statistics) are broadcast from rank 0 after each step,
    as DDP does before each forward. Used for the penalties that need the model's own module tree:
    CDEP and the other contextual-decomposition penalties (the CD engine walks the layers; a DDP
    wrapper is not a layer it knows), Grad-CAM penalties on a named layer (RRR-GradCAM, HINT),
    RBR (third-order gradients through all parameters), and an ``explained_layer`` given by name.
  - ``"auto"`` (default; :data:`GRADIENT_SYNC` or ``$EXPLAINREG_GRADIENT_SYNC`` change it):
    ``"ddp"`` when every penalty of the objective is in :data:`DDP_PENALTIES` and no
    ``explained_layer`` is named, else ``"allreduce"``.

  Both give the one-process weights (to float round-off: the order of the sums differs).
* Per-step terms and train accuracy are reduced over the ranks (one small all-reduce per step),
  so ``history.json`` / ``steps.json`` hold the global batch's values; evaluation sums correct
  counts and losses over the ranks' shares (:func:`explainreg.training.evaluate`); rank 0 alone
  writes the run folder; checkpoints hold the unwrapped model's ``state_dict`` (no ``module.``
  prefix); every rank resumes from the same checkpoint.
"""
from __future__ import annotations

import atexit
import datetime
import os
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import _dist
from ..data import ArrayDataset
from .batches import Batch, epoch_order

__all__ = ["DDP_PENALTIES", "DataParallel", "GRADIENT_SYNC", "MODES", "global_batches", "init_from_env",
           "rank_world", "reduce_counts", "resolve_mode", "wanted"]

rank_world = _dist.rank_world

MODES = ("auto", "ddp", "allreduce")
#: default gradient synchronisation (see the module doc); ``$EXPLAINREG_GRADIENT_SYNC`` overrides it
GRADIENT_SYNC = "auto"
#: penalties whose every model call is ``model(inputs)``, so they run through a DDP wrapper as they are
DDP_PENALTIES = frozenset({"gradient_l1", "smoothness", "locality", "fidelity", "consistency", "symmetry",
                           "rrr", "expected_gradients", "saliency_guided"})


def wanted() -> bool:
    """Whether this process is one of several: ``torch.distributed`` initialised with more than one
    rank, or a torchrun environment (``WORLD_SIZE`` > 1) to initialise it from."""
    if _dist.active():
        return True
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes; launch with "
                         "torchrun --nproc_per_node N (it sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT)") from None


def init_from_env(device: torch.device) -> torch.device:
    """Initialise the default process group from the torchrun environment (once per process; kept for
    later calls and destroyed at exit) and return this rank's device: ``cuda:LOCAL_RANK`` when
    ``device`` is CUDA without an index, else ``device``. Backend: NCCL for CUDA, gloo otherwise."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(f"distributed training needs the torchrun environment; {', '.join(missing)} "
                               "not set. Launch with torchrun --nproc_per_node N, or call "
                               "torch.distributed.init_process_group yourself before train()")
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        atexit.register(_destroy)
    return device


def _destroy() -> None:
    # every rank reaches the barrier before any tears gloo down: a rank that closed its connections
    # while another still read from them aborted that one ("terminate called without an active exception")
    if torch.distributed.is_initialized():
        try:
            torch.distributed.barrier()
        finally:
            torch.distributed.destroy_process_group()


def resolve_mode(objective: Any, mode: str | None = None) -> str:
    """``"ddp"`` or ``"allreduce"`` for ``objective`` (see the module doc)."""
    mode = mode or os.environ.get("EXPLAINREG_GRADIENT_SYNC") or GRADIENT_SYNC
    if mode not in MODES:
        raise ValueError(f"gradient synchronisation {mode!r} is not one of {', '.join(MODES)} "
                         "(EXPLAINREG_GRADIENT_SYNC / explainreg.training.distributed.GRADIENT_SYNC)")
    if mode != "auto":
        return mode
    names = {p.name for p in getattr(objective, "penalties", [])}
    if names <= DDP_PENALTIES and getattr(objective, "explained_layer", None) is None:
        return "ddp"
    return "allreduce"


def global_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int
                   ) -> list[tuple[torch.Tensor, float, _dist.Shard]]:
    """This rank's piece of each global batch of an epoch: ``(indices, weight, shard)`` per step.

    ``weight`` = n_r·W / N (0 for a padded piece: one repeated row, so the rank still takes part)."""
    order = epoch_order(n, seed, epoch)
    out = []
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        pieces = torch.tensor_split(batch, world)
        offset = sum(len(p) for p in pieces[:rank])
        piece = pieces[rank]
        if len(piece) == 0:
            out.append((batch[:1], 0.0, _dist.Shard(0, 1, len(batch))))
        else:
            out.append((piece, len(piece) * world / len(batch), _dist.Shard(offset, len(piece), len(batch))))
    return out


class DataParallel:
    """The distributed side of one training run (see the module doc): the model the objective calls,
    this rank's pieces of the global batches, the loss weight, and the reductions.

    Args:
        model: the model being trained, on ``device``, its frozen parameters already marked
            (``requires_grad=False``).
        objective: the :class:`~explainreg.objective.Objective` (its penalties choose ``"auto"``).
        device: this rank's device.
        mode: ``"auto"``, ``"ddp"`` or ``"allreduce"``; None: :data:`GRADIENT_SYNC`.
    """

    def __init__(self, model: nn.Module, objective: Any, device: torch.device, mode: str | None = None) -> None:
        if not _dist.active():
            raise RuntimeError("DataParallel needs an initialised process group of more than one rank "
                               "(see init_from_env)")
        self.rank, self.world = _dist.rank_world()
        self.model = model
        self.mode = resolve_mode(objective, mode)
        self.weight = 1.0
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        if self.mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.forward_model: nn.Module = DistributedDataParallel(model, device_ids=ids)  # broadcasts rank 0's weights
        else:
            self.forward_model = model
            for t in list(model.parameters()) + list(model.buffers()):
                torch.distributed.broadcast(t.data, 0)  # start from rank 0's weights, as DDP does

    # ---------------------------------------------------------------------------------- batches
    def num_batches(self, dataset: Dataset, batch_size: int) -> int:
        return (len(dataset) + batch_size - 1) // batch_size

    def batches(self, dataset: Dataset, batch_size: int, *, seed: int = 0, epoch: int = 0,
                device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Yield this rank's piece ``(x, y, extras)`` of each global batch, setting :attr:`weight` and
        the current shard (:func:`explainreg._dist.current_shard`) for the step."""
        pieces = global_batches(len(dataset), batch_size, seed, epoch, self.rank, self.world)
        try:
            for (index, weight, shard), batch in zip(pieces, _fetch(dataset, [p[0] for p in pieces], device)):
                self.weight = weight
                _dist.set_shard(shard)
                yield batch
        finally:
            _dist.set_shard(None)
            self.weight = 1.0

    # ---------------------------------------------------------------------------------- the step
    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """w_r · L_r, the loss this rank back-propagates (see the module doc)."""
        return loss * self.weight

    def sync_gradients(self) -> None:
        """``"allreduce"`` mode: average the gradients over the ranks (one flat all-reduce); DDP: nothing."""
        if self.mode == "ddp":
            return
        params = [p for p in self.trainable if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        start = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[start:start + n].view_as(p.grad))
            start += n

    def reduce_step(self, terms: dict[str, float], rows: int, hits: int) -> tuple[dict[str, float], int, int]:
        """The global batch's term means, rows and correct predictions from every rank's piece.
        A padded piece counts 0 rows. In ``"allreduce"`` mode, rank 0's floating buffers are broadcast."""
        rows = rows if self.weight > 0 else 0
        hits = hits if self.weight > 0 else 0
        names = sorted(terms)
        summed = _dist.all_reduce_sum([terms[k] * rows for k in names] + [rows, hits])
        total = int(round(summed[-2]))
        reduced = {k: summed[i] / max(total, 1) for i, k in enumerate(names)}
        if self.mode == "allreduce":
            for b in self.model.buffers():
                if b.is_floating_point():
                    torch.distributed.broadcast(b.data, 0)
        return {k: reduced[k] for k in terms}, total, int(round(summed[-1]))


def _fetch(dataset: Dataset, indices: list[torch.Tensor], device) -> Iterator[Batch]:
    """The rows ``indices[s]`` of ``dataset`` for each step s, on ``device`` (as ``iterate_batches``)."""
    if callable(getattr(dataset, "batch", None)):
        for index in indices:
            yield dataset.batch(index, device)
        return
    if isinstance(dataset, ArrayDataset):
        for index in indices:
            extras = {k: v[index].to(device) for k, v in dataset.extras.items()}
            yield dataset.x[index].to(device), dataset.y[index].to(device), extras
        return
    options = dict(getattr(dataset, "loader_options", None) or {})
    if options.get("pin_memory") and torch.device(device).type != "cuda":
        options["pin_memory"] = False
    options.pop("batch_size", None)
    options.pop("shuffle", None)
    loader = DataLoader(dataset, batch_sampler=[i.tolist() for i in indices], **options)
    for item in loader:
        x, y, *rest = item
        extras = rest[0] if rest and isinstance(rest[0], dict) else {}
        yield x.to(device), y.to(device), {k: v.to(device) for k, v in extras.items()}


def reduce_counts(correct: int, loss: float, n: int) -> tuple[int, float, int]:
    """Evaluation's correct count, summed loss and image count summed over the ranks (each rank
    evaluated its own share); unchanged in one process."""
    if not _dist.active():
        return correct, loss, n
    c, l, m = _dist.all_reduce_sum([correct, loss, n])
    return int(round(c)), l, int(round(m))
