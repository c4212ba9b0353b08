"""The README's Lightning example on real MNIST: explainreg's objective in a LightningModule (CPU, 1 epoch)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

pl = pytest.importorskip("pytorch_lightning")

from explainreg.attribution import attribute  # noqa: E402
from explainreg.data import load_dataset  # noqa: E402
from explainreg.lightning import ExplainregModule  # noqa: E402
from explainreg.metrics import build_metric  # noqa: E402
from explainreg.models import cnn3b  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import GradientL1  # noqa: E402
from explainreg.training import evaluate  # noqa: E402


def test_lightning_example_trains_on_mnist_and_logs_a_penalty_term_and_a_metric():
    torch.manual_seed(0)
    train = load_dataset("mnist", "train", limit=300)
    val = load_dataset("mnist", "test", limit=100)
    model = cnn3b()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    module = ExplainregModule(model, Objective({GradientL1(): 1.0}), lr=1e-3,
                              metrics={"morf": build_metric("morf"), "complexity": build_metric("complexity")})
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(train, batch_size=30, shuffle=True, generator=torch.Generator().manual_seed(0)),
                DataLoader(val, batch_size=50))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert logged["train/gradient_l1_epoch"] > 0 and math.isfinite(logged["train/gradient_l1_epoch"])
    assert logged["train/loss_epoch"] == pytest.approx(logged["train/ce_epoch"] + logged["train/gradient_l1_epoch"],
                                                      rel=1e-5)
    assert any(float((model.state_dict()[k] - start[k]).abs().max()) > 0 for k in start)  # it trained
    # the logged validation numbers equal an independent computation on the trained model
    model.eval()
    assert logged["val/accuracy"] == pytest.approx(evaluate(model, val)["accuracy"], abs=1e-6)
    a = attribute(model, val.x, val.y, "saliency")
    for name in ("morf", "complexity"):
        expected = build_metric(name)(model, val.x, val.y, a).value
        assert logged[f"val/{name}"] == pytest.approx(expected, rel=1e-5), name


def test_lightning_module_refuses_bad_settings_and_batches():
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd', got 'lbfgs'"):
        ExplainregModule(cnn3b(), optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr must be a positive number"):
        ExplainregModule(cnn3b(), lr=0)
    with pytest.raises(ValueError, match=r"batches must be \(x, y\) or \(x, y, extras\)"):
        ExplainregModule(cnn3b()).training_step(torch.zeros(2, 1, 28, 28), 0)
