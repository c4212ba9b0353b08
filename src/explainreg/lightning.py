"""explainreg's objective and metrics inside PyTorch Lightning (optional: ``pip install "explainreg[lightning]"``).

:class:`ExplainregModule` is a ``LightningModule`` around any classifier:

* ``training_step``: ``loss = CE + Σ λ_i R_i`` from an :class:`~explainreg.objective.Objective`
  (one shared forward and saliency per batch); every term is logged as ``train/<term>``
  (``train/ce``, ``train/gradient_l1``, ..., ``train/loss``), per step and as an epoch mean.
* ``validation_step``: ``val/accuracy``, ``val/loss`` and, for each explainreg metric given, an
  ``update`` with the attributions of ``attribution`` (the batch's positions in the validation
  set key the metric's random draws); ``on_validation_epoch_end`` logs ``val/<metric>`` =
  ``metric.compute().value`` (synced over the processes in ``compute``, so every rank logs the
  one-process number) and resets the metric.

Example (README)::

    import pytorch_lightning as pl
    from torch.utils.data import DataLoader
    from explainreg.data import load_dataset
    from explainreg.lightning import ExplainregModule
    from explainreg.metrics import build_metric
    from explainreg.models import cnn3b
    from explainreg.objective import Objective
    from explainreg.penalties import GradientL1

    train = load_dataset("mnist", "train", limit=300)
    val = load_dataset("mnist", "test", limit=100)
    module = ExplainregModule(cnn3b(), Objective({GradientL1(): 1.0}), lr=1e-3,
                              metrics={"morf": build_metric("morf")})
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.fit(module, DataLoader(train, batch_size=30, shuffle=True), DataLoader(val, batch_size=50))
    trainer.callback_metrics["train/gradient_l1"], trainer.callback_metrics["val/morf"]

**Lightning's DDP strategy and double backprop.** ``strategy="ddp"`` wraps the LightningModule in
``DistributedDataParallel`` and runs ``training_step`` through the wrapper's forward, so every
parameter the step uses, through the objective's input gradients (``create_graph=True``), extra
forwards (Fidelity, SGT) or contextual decomposition (CDEP walks ``self.model`` directly), has
DDP's gradient hooks, and the final ``backward`` all-reduces them once. What it needs:

* ``find_unused_parameters=False`` (the default) is right when every trainable parameter reaches
  the loss; a frozen or unused submodule needs ``DDPStrategy(find_unused_parameters=True)``.
* no ``static_graph=True`` when some penalties are only monitored (weight 0, computed every
  ``monitor_every`` steps): the graph changes between steps.
* ``precision="32-true"`` for the double-backprop penalties (GradientL1, Smoothness, RRR, ...):
  input gradients of fp16 logits underflow and their second derivatives lose most digits; SGT,
  CDEP and plain CE tolerate ``"16-mixed"`` / ``"bf16-mixed"`` on GPUs.
* no ``gradient_clip_algorithm`` other than ``"norm"``/``"value"`` on the summed gradients (the
  defaults work: clipping runs after the all-reduce).
* Lightning's ``DistributedSampler`` pads an uneven split by repeating samples (they count twice in
  that step's mean), and each rank's loss is the mean over its own shard, so the result equals
  one process only when the shards are full; ``explainreg.training.train`` under torchrun splits
  each global batch exactly instead (``explainreg.training.distributed``).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

try:
    import pytorch_lightning as pl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("explainreg.lightning needs PyTorch Lightning: pip install 'explainreg[lightning]' "
                      "(or pytorch-lightning==2.6.* with your pinned torch)") from exc

from .attribution import attribute
from .objective import Objective


class ExplainregModule(pl.LightningModule):
    """A LightningModule training ``model`` on ``objective`` and validating explainreg metrics.

    Args:
        model: any classifier ``x -> logits`` (B×K).
        objective: the :class:`~explainreg.objective.Objective` (None: plain cross-entropy).
        lr: learning rate of the optimiser.
        optimizer: ``"adam"`` (default, the seed's) or ``"sgd"`` (momentum 0.9).
        metrics: name -> explainreg metric object (e.g. ``build_metric("morf")``), updated on every
            validation batch and logged as ``val/<name>`` at the end of the validation epoch.
        attribution: the attribution method the metrics evaluate (``"saliency"`` by default).
        seed: seeds the attributions of random methods (keyed by each image's position).

    Batches are ``(x, y)`` or ``(x, y, extras)`` as explainreg's data sets yield them (the extras,
    e.g. annotation masks, go to the objective).

    Shape:
        x: (B, ...) as the model takes it; y: (B,) class indices; logits (B, K).

    Raises:
        ValueError: an unknown optimizer, a learning rate ≤ 0; (in a step) a batch that is not
            ``(x, y)`` or ``(x, y, extras)``.

    Example::

        >>> import pytorch_lightning as pl, torch
        >>> from torch import nn
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from explainreg.lightning import ExplainregModule
        >>> from explainreg.metrics import build_metric
        >>> from explainreg.objective import Objective
        >>> from explainreg.penalties import GradientL1
        >>> g = torch.Generator().manual_seed(0)
        >>> data = TensorDataset(torch.randn(12, 1, 4, 4, generator=g), torch.randint(0, 3, (12,), generator=g))
        >>> module = ExplainregModule(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), Objective({GradientL1(): 0.1}),
        ...                           lr=1e-2, metrics={"morf": build_metric("morf")})
        >>> trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(module, DataLoader(data, batch_size=6), DataLoader(data, batch_size=6))
        >>> logged = trainer.callback_metrics
        >>> sorted(k for k in logged if not k.endswith(("_step", "_epoch")))
        ['train/ce', 'train/gradient_l1', 'train/loss', 'val/accuracy', 'val/loss', 'val/morf']
        >>> bool(torch.isclose(logged["train/loss"], logged["train/ce"] + 0.1 * logged["train/gradient_l1"]))
        True
        >>> ExplainregModule(nn.Linear(2, 2), optimizer="lbfgs")
        Traceback (most recent call last):
        ...
        ValueError: optimizer must be 'adam' or 'sgd', got 'lbfgs'
    """

    def __init__(self, model: nn.Module, objective: Objective | None = None, *, lr: float = 1e-3,
                 optimizer: str = "adam", metrics: Mapping[str, Any] | None = None, attribution: str = "saliency",
                 seed: int = 0) -> None:
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.model = model
        self.objective = objective if objective is not None else Objective()
        self.lr, self.optimizer_name, self.attribution, self.seed = float(lr), optimizer, attribution, int(seed)
        self.explain_metrics = dict(metrics or {})
        self._val_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @staticmethod
    def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError("batches must be (x, y) or (x, y, extras); got "
                             f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
        x, y, *rest = batch
        return x, y.long(), dict(rest[0]) if rest else {}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, extras = self._unpack(batch)
        out = self.objective(self.model, x, y, **extras)
        for name, value in out.terms.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=len(y), sync_dist=True)
        return out.loss

    def on_validation_epoch_start(self) -> None:
        self._val_seen = 0
        for metric in self.explain_metrics.values():
            metric.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, _ = self._unpack(batch)
        with torch.no_grad():
            logits = self.model(x)
        self.log("val/accuracy", (logits.argmax(1) == y).float().mean(), batch_size=len(y), sync_dist=True)
        self.log("val/loss", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)
        if not self.explain_metrics:
            return
        rank, world = self.global_rank, self.trainer.world_size if self.trainer is not None else 1
        # positions in the validation set (a non-shuffled loader; under DDP the sampler deals rows round-robin)
        index = torch.arange(len(y)) + self._val_seen if world == 1 else \
            (torch.arange(len(y)) + self._val_seen) * world + rank
        self._val_seen += len(y)
        with torch.enable_grad():
            a = attribute(self.model, x, y, self.attribution, seed=self.seed, index=index)
        for metric in self.explain_metrics.values():
            metric.update(self.model, x, y, a, index=index)

    def on_validation_epoch_end(self) -> None:
        for name, metric in self.explain_metrics.items():
            if metric._rows:
                self.log(f"val/{name}", float(metric.compute().value))  # compute syncs the ranks

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9)
        return torch.optim.Adam(params, lr=self.lr)


__all__ = ["ExplainregModule"]
