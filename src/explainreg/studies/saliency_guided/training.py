"""Training the study's two models: MNIST with a validation split, the regular and the SGT objective
(a run stopped after its last epoch is repaired by :func:`explainreg.training.train` itself)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from ...data import load_dataset
from ...models import build_model
from ...objective import Objective
from ...penalties.saliency_guided import SaliencyGuided
from ...training import TrainConfig
from ..skeleton import train_or_resume
from .settings import MODEL, SGTSettings

__all__ = ["SGT_KEYS", "TRAIN_KEYS", "load_data", "objective_for", "train_model"]

#: the settings a model's run folder must have been trained with (recorded in its config's "study")
TRAIN_KEYS = ("limit_train", "seed", "batch_size", "lr", "val_fraction")
SGT_KEYS = ("fraction", "by", "fill", "weight")


def load_data(s: SGTSettings):
    """(train, validation, test) MNIST, normalised with 0.1307 / 0.3081; the validation split is
    a seeded ``s.val_fraction`` of the (first ``s.limit_train``) training images."""
    load = dict(root=s.data_root, download=s.download, allow_bundled=s.data_root is None, normalize=True)
    full = load_dataset("mnist", "train", limit=s.limit_train, **load)
    test = load_dataset("mnist", "test", limit=s.limit_test, **load)
    train_set, val_set = full.split(s.val_fraction, seed=s.seed)
    return train_set, val_set, test


def objective_for(kind: str, s: SGTSettings) -> Objective:
    """Cross-entropy for ``"regular"``; plus λ · KL(p(x) ‖ p(x̃)) of SGT for ``"guided"``."""
    if kind == "regular":
        return Objective(seed=s.seed)
    return Objective({SaliencyGuided(s.fraction, s.by, s.fill): s.weight}, seed=s.seed)


def train_model(kind: str, run_dir: Path, data, s: SGTSettings) -> dict[str, Any]:
    """Train (or resume, or reuse) one model in ``run_dir``; returns its selected epoch's record with
    ``train_seconds_this_call`` and ``epochs_run``. A folder trained with other settings is refused."""
    train_set, val_set, test_set = data
    study = s.subset(TRAIN_KEYS + (SGT_KEYS if kind == "guided" else ()))
    config = TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, optimizer="adadelta",
                         seed=s.seed, device=s.device, select="best_val_accuracy", patience=s.patience,
                         eval_batch_size=1000, progress=s.progress)
    torch.manual_seed(s.seed)
    model = build_model(MODEL)
    info = {"dataset": "mnist", "model": MODEL, "model_kwargs": {}, "normalize": True, "study": study,
            "kind": kind, "train_source": train_set.source, "n_train": len(train_set), "n_val": len(val_set),
            "command": "explainreg " + " ".join(sys.argv[1:])}
    started = time.perf_counter()
    result = train_or_resume(run_dir, model, objective_for(kind, s), train_set, test_set, config=config,
                             identity=study, val_set=val_set, run_info=info,
                             on_epoch_end=lambda e, r: print(f"  {kind} epoch {e}: val_acc={100 * r['val_accuracy']:.2f}% "
                                                             f"test_acc={100 * r['test_accuracy']:.2f}% "
                                                             f"({r['seconds']:.0f}s)", flush=True))
    record = dict(result.final)
    record["train_seconds_this_call"] = time.perf_counter() - started
    record["epochs_run"] = len(result.history)
    return record
