"""The training loop's parts: the :class:`Checkpoint` type (and the old dict files it reads), the
best-epoch :class:`Selection`, and :func:`evaluate` on a model without parameters (real MNIST)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explainreg as er
from explainreg import runs
from explainreg.training import Checkpoint, Selection, TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def small(mnist_train_small):
    return mnist_train_small.take(200)


@pytest.fixture(scope="module")
def test_small(mnist_test):
    return mnist_test.take(100)


def _run(data, test, run_dir, epochs, resume=False):
    torch.manual_seed(0)
    model = er.models.cnn3b()
    config = TrainConfig(epochs=epochs, batch_size=50, seed=0, progress=False, log_every=2)
    return model, train(model, er.Objective({"gradient_l1": 0.1}, seed=0), data, test, config=config,
                        run_dir=run_dir, resume=resume)


class NearestMean(nn.Module):
    """A fixed classifier without parameters or buffers: logits = −‖x − μ_c‖² (class means as a plain attribute)."""

    def __init__(self, means: torch.Tensor) -> None:
        super().__init__()
        self.means = means

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x, self.means).pow(2)


def test_evaluate_a_model_without_parameters(small, test_small):
    flat = small.x.flatten(1)
    means = torch.stack([flat[small.y == c].mean(0) for c in range(10)])
    model = nn.Sequential(nn.Flatten(), NearestMean(means))
    assert not list(model.parameters()) and not list(model.buffers())
    got = evaluate(model, test_small, batch_size=32)
    logits = -((test_small.x.flatten(1)[:, None] - means[None]) ** 2).sum(-1)  # independent of cdist
    assert got["accuracy"] == pytest.approx(float((logits.argmax(1) == test_small.y).float().mean()))
    assert got["accuracy"] > 0.5  # nearest class mean on MNIST: well above chance
    assert got["loss"] == pytest.approx(float(F.cross_entropy(logits, test_small.y)), rel=1e-4)


def test_checkpoint_round_trip_keeps_unknown_entries_and_the_dict_form(tmp_path):
    path = tmp_path / runs.CHECKPOINT
    state = Checkpoint(model={"w": torch.arange(3.0)}, epoch=2, step=7, history=[{"epoch": 3}],
                       extra={"note": "kept"})
    state.save(path)
    raw = torch.load(path, weights_only=False)
    assert isinstance(raw, dict) and raw["note"] == "kept" and "last_model" not in raw and raw["step"] == 7
    back = Checkpoint.load(path)
    assert back.extra == {"note": "kept"} and back.epochs_done == 3 and torch.equal(back.model["w"], torch.arange(3.0))
    assert back.best_score == -math.inf and back.stepper_state == {"optimizer": None, "scheduler": None, "scaler": None}
    torch.save({"weights": 1}, path)
    with pytest.raises(runs.DamagedRunError, match="no 'model' entry"):
        Checkpoint.load(path)


def test_finish_with_best():
    state = Checkpoint(model={"w": torch.ones(1)}, best_state={"w": torch.zeros(1)}, history=[{}, {}])
    assert not state.finish_with_best(3)  # fewer epochs than asked: left to resume
    assert state.finish_with_best(2) and state.finished and torch.equal(state.model["w"], torch.zeros(1))
    assert torch.equal(state.last_model["w"], torch.ones(1))  # a longer run goes on from the last epoch
    assert not state.finish_with_best(2)
    assert not Checkpoint(model={}, history=[{}]).finish_with_best(1)  # nothing selected


def test_an_old_dict_checkpoint_resumes_like_an_uninterrupted_run(small, test_small, tmp_path):
    """A checkpoint written as the dict literal of earlier versions (no step counter, no call counter)
    still resumes, and the extended run equals one trained in one go."""
    _run(small, test_small, tmp_path / "old", 1)
    path = tmp_path / "old" / runs.CHECKPOINT
    raw = torch.load(path, weights_only=False)
    old = {k: v for k, v in raw.items() if k not in ("step", "objective_calls", "scaler", "scheduler")}
    runs.atomic_save(old, path)
    model, resumed = _run(small, test_small, tmp_path / "old", 2, resume=True)
    reference_model, reference = _run(small, test_small, tmp_path / "ref", 2)
    for a, b in zip(reference_model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    assert resumed.steps == reference.steps
    assert Checkpoint.load(path).step == Checkpoint.load(tmp_path / "ref" / runs.CHECKPOINT).step == 8


def test_selection_keeps_the_first_best_and_stops_after_patience():
    net = nn.Linear(1, 1)
    rule = Selection("best_val_loss", patience=1)
    losses = [0.5, 0.4, 0.4, 0.6]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            net.weight.fill_(epoch)
        stops.append(rule.update({"epoch": epoch, "val_loss": loss}, net))
    assert stops == [False, False, False, True] and rule.best_epoch == 2 and rule.stale == 2
    last = rule.apply(net)
    assert float(net.weight.detach()) == 2.0 and float(last["weight"]) == 4.0
    plain = Selection("last")
    assert not plain.update({"epoch": 1}, net) and plain.apply(net) is None and plain.best_epoch is None
