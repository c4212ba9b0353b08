"""The trainer on real MNIST: accuracy, exact repeatability, resume, run folders, errors."""
from __future__ import annotations

import json

import pytest
import torch

import explainreg as er
from explainreg.training import TrainConfig, evaluate_accuracy, train


def test_one_epoch_on_10k_real_images_is_accurate(mnist_train_small, mnist_test):
    torch.manual_seed(0)
    model = er.models.cnn3b()
    config = TrainConfig(epochs=1, batch_size=30, lr=3e-3, progress=False)
    result = train(model, er.Objective({"smoothness": 0.1}), mnist_train_small, mnist_test, config=config)
    record = result.history[0]
    assert record["test_accuracy"] >= 0.95
    assert record["test_accuracy"] == pytest.approx(evaluate_accuracy(model, mnist_test))
    assert {"train_ce", "train_smoothness", "train_loss"} <= set(record)


def _short_run(data, test, run_dir=None, epochs=2, resume=False, seed=3, on_epoch_end=None):
    torch.manual_seed(seed)
    model = er.models.cnn3b()
    config = TrainConfig(epochs=epochs, batch_size=50, seed=seed, progress=False, log_every=5)
    objective = er.Objective({"symmetry": 0.1}, seed=seed)  # random angles: the generator state must carry over
    return model, train(model, objective, data, test, config=config, run_dir=run_dir, resume=resume,
                        on_epoch_end=on_epoch_end, run_info={"dataset": "mnist", "model": "cnn3b"})


def test_runs_repeat_exactly_and_resume_matches_an_uninterrupted_run(mnist_train_small, mnist_test, tmp_path):
    data = mnist_train_small.take(600)
    full_model, full = _short_run(data, mnist_test, tmp_path / "full")
    again_model, _ = _short_run(data, mnist_test)
    for a, b in zip(full_model.parameters(), again_model.parameters()):
        assert torch.equal(a, b)
    # interrupted (Ctrl-C) after epoch 1 of 2, then resumed
    def interrupt(epoch, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _short_run(data, mnist_test, tmp_path / "cut", on_epoch_end=interrupt)
    config_path = tmp_path / "cut" / "config.json"
    resumed_model, resumed = _short_run(data, mnist_test, tmp_path / "cut", resume=True)
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)
    assert [r["test_accuracy"] for r in resumed.history] == [r["test_accuracy"] for r in full.history]
    run = tmp_path / "full"
    assert json.loads((run / "config.json").read_text())["objective"][0]["penalty"] == "symmetry"
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert [s["step"] for s in json.loads((run / "steps.json").read_text())][:2] == [1, 6]
    assert "epoch=2" in (run / "train.log").read_text()
    assert not list(run.glob("*.tmp")) and config_path.is_file()
    model, config = er.runs.load_run(run)
    assert evaluate_accuracy(model, mnist_test) == pytest.approx(full.history[-1]["test_accuracy"])
    with pytest.raises(FileExistsError, match="resume"):
        _short_run(data, mnist_test, run)


def test_best_on_validation_is_restored(mnist_train_small, mnist_test):
    train_set, val_set = mnist_train_small.take(1500).split(0.2)
    torch.manual_seed(0)
    model = er.models.cnn3b()
    config = TrainConfig(epochs=3, batch_size=50, progress=False, select="best_val_accuracy")
    result = train(model, None, train_set, mnist_test, config=config, val_set=val_set)
    best = max(result.history, key=lambda r: r["val_accuracy"])
    assert result.best_epoch == best["epoch"]
    assert evaluate_accuracy(model, val_set) == pytest.approx(best["val_accuracy"])
    with pytest.raises(ValueError, match="validation set"):
        train(model, None, train_set, config=TrainConfig(select="best_val_loss", progress=False))


def test_a_run_killed_after_the_epochs_it_is_resumed_with_returns_its_selected_weights(mnist_train_small, tmp_path):
    """Killed after epoch 2 of a 3-epoch run, then resumed with 2 epochs: the selected (best) epoch's
    weights, as an uninterrupted 2-epoch run ends; a later resume to 3 epochs goes on from the last
    epoch and equals an uninterrupted 3-epoch run. Validation labels are shifted by one class, so
    learning makes the validation loss worse and epoch 1 is the best (not the last)."""
    from explainreg.data.datasets import ArrayDataset
    from explainreg.training.checkpoint import Checkpoint

    data, val = mnist_train_small.take(600), mnist_train_small.take(torch.arange(600, 900))
    val = ArrayDataset(val.x, (val.y + 1) % 10, name="shifted")

    def run(epochs, run_dir, resume=False, on_epoch_end=None):
        torch.manual_seed(0)
        model = er.models.cnn3b()
        config = TrainConfig(epochs=epochs, batch_size=50, seed=0, progress=False, select="best_val_loss")
        return model, train(model, None, data, config=config, val_set=val, run_dir=run_dir, resume=resume,
                            on_epoch_end=on_epoch_end)

    def kill_after_epoch_2(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(3, tmp_path / "cut", on_epoch_end=kill_after_epoch_2)
    resumed_model, resumed = run(2, tmp_path / "cut", resume=True)
    two_model, two = run(2, tmp_path / "two")
    assert resumed.best_epoch == two.best_epoch == 1
    for a, b in zip(resumed_model.parameters(), two_model.parameters()):
        assert torch.equal(a, b)
    state = Checkpoint.load(tmp_path / "cut" / "checkpoint.pt")
    assert state.finished and all(torch.equal(v, state.model[k]) for k, v in two_model.state_dict().items())
    longer_model, _ = run(3, tmp_path / "cut", resume=True)
    three_model, _ = run(3, tmp_path / "three")
    for a, b in zip(longer_model.parameters(), three_model.parameters()):
        assert torch.equal(a, b)


def test_config_validation_names_the_parameter():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="CUDA is not available"):
        er.training.resolve_device("cuda") if not torch.cuda.is_available() else (_ for _ in ()).throw(
            ValueError("CUDA is not available (skipped: CUDA present)"))


def test_evaluate_works_for_a_model_without_parameters(mnist_test):
    """A parameter-free model (e.g. a fixed rule, or a wrapper whose weights live elsewhere) is evaluable."""
    from explainreg.training import evaluate

    class MeanRule(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.flatten(1).mean(1) * k for k in range(10)], 1)

    out = evaluate(MeanRule(), mnist_test.take(64))
    assert 0.0 <= out["accuracy"] <= 1.0
