"""train() with an optimiser object or factory, a scheduler, parameter groups, frozen modules,
gradient clipping and mixed precision (checked against hand-made steps on real MNIST)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.data import load_dataset
from explainreg.models import cnn3b, cnn4b
from explainreg.training import TrainConfig, train


@pytest.fixture(scope="module")
def batch():
    return load_dataset("mnist", "train", limit=64)


def config(**kw):
    return TrainConfig(**{"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False, "seed": 0, **kw})


def fresh(builder=cnn3b):
    torch.manual_seed(0)
    return builder()


def manual_grads(model, data):
    model.zero_grad()
    model.train()
    F.cross_entropy(model(data.x), data.y).backward()
    return [p.grad.clone() for p in model.parameters()]


def test_optimizer_object_is_used(batch):
    model, reference = fresh(), fresh()
    sgd = torch.optim.SGD(model.parameters(), lr=0.5)
    train(model, None, batch, config=config(optimizer="adam", lr=1e-3), optimizer=sgd)
    grads = manual_grads(reference, batch)  # one full batch: the epoch's order does not change the mean loss
    for p, q, g in zip(model.parameters(), reference.parameters(), grads):
        assert torch.allclose(p, q - 0.5 * g, atol=1e-6)


def test_factory_with_parameter_groups(batch):
    model, reference = fresh(), fresh()
    made = []

    def factory(groups):
        made.append(torch.optim.SGD(groups, lr=0.1))
        return made[-1]

    train(model, None, batch, config=config(), optimizer=factory, param_groups=[{"params": "3", "lr": 0.0}])
    assert [g["lr"] for g in made[0].param_groups] == [0.0, 0.1]
    grads = manual_grads(reference, batch)
    for (name, p), q, g in zip(model.named_parameters(), reference.parameters(), grads):
        expected = q if name.startswith("3.") else q - 0.1 * g
        assert torch.allclose(p, expected, atol=1e-6), name


def test_frozen_modules_unchanged_and_batchnorm_statistics_kept(batch):
    model = fresh(cnn4b)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, None, batch, config=config(freeze=("0", "1")))
    after = model.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["3.weight"], after["3.weight"])
    assert not torch.equal(before["4.running_mean"], after["4.running_mean"])  # unfrozen BN still learns
    with pytest.raises(ValueError, match="freeze: 'conv9' is not a submodule"):
        train(fresh(), None, batch, config=config(freeze=("conv9",)))


def test_gradient_clipping(batch):
    model, reference = fresh(), fresh()
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    train(model, None, batch, config=config(grad_clip=0.01), optimizer=sgd)
    grads = manual_grads(reference, batch)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    assert norm > 0.01  # clipping acts
    for p, q, g in zip(model.parameters(), reference.parameters(), grads):
        assert torch.allclose(p, q - g * (0.01 / norm), atol=1e-6)
    with pytest.raises(ValueError, match="grad_clip must be in"):
        TrainConfig(grad_clip=0)


def test_scheduler_steps_per_epoch_and_per_step(batch):
    model = fresh()
    seen = []
    train(model, None, batch, config=config(epochs=3, lr=0.1, optimizer="sgd"),
          scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
          on_epoch_end=lambda e, r: seen.append(e))
    sgd = torch.optim.SGD(fresh().parameters(), lr=0.1)
    per_step = torch.optim.lr_scheduler.LambdaLR(sgd, lambda k: 1.0 / (1 + k))
    train(fresh(), None, batch.take(40), config=config(epochs=2, batch_size=10, scheduler_interval="step"),
          optimizer=sgd, scheduler=per_step)
    assert per_step.last_epoch == 8 and sgd.param_groups[0]["lr"] == pytest.approx(0.1 / 9)
    with pytest.raises(TypeError, match="scheduler must have .step"):
        train(fresh(), None, batch, config=config(), scheduler=lambda opt: 3)


def test_scheduler_state_resumed(batch, tmp_path):
    data = batch.take(40)
    make = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa: E731
    whole = fresh()
    train(whole, None, data, config=config(epochs=3, batch_size=10, optimizer="sgd", lr=0.1), scheduler=make)
    part = fresh()
    train(part, None, data, config=config(epochs=1, batch_size=10, optimizer="sgd", lr=0.1), scheduler=make,
          run_dir=tmp_path / "run")
    resumed = fresh()
    sched = []
    train(resumed, None, data, config=config(epochs=3, batch_size=10, optimizer="sgd", lr=0.1),
          scheduler=lambda opt: sched.append(make(opt)) or sched[-1], run_dir=tmp_path / "run", resume=True)
    assert sched[0].last_epoch == 3 and sched[0].get_last_lr()[0] == pytest.approx(0.1 / 8)
    for p, q in zip(whole.parameters(), resumed.parameters()):
        assert torch.allclose(p, q, atol=1e-7)


def test_amp_needs_cuda(batch):
    if torch.cuda.is_available():
        model = fresh()
        result = train(model, None, batch, config=config(amp=True, device="cuda", epochs=2))
        assert result.history[-1]["train_loss" if "train_loss" in result.history[-1] else "train_ce"] < 2.5
    else:
        with pytest.raises(ValueError, match="amp=True .*needs a CUDA device"):
            train(fresh(), None, batch, config=config(amp=True))
