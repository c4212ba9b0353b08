"""CDEP, RRR and Expected Gradients against plainly written per-sample computations, on real data."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.data import decoy_mnist
from explainreg.decomposition import decompose
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import CDEP, RRR, ExpectedGradients, build_penalty
from explainreg.penalties.annotation import draw_references
from explainreg.training import TrainConfig, train


@pytest.fixture(scope="module")
def batch(mnist_test):
    x = mnist_test.x[:12] * 2 - 1
    y = mnist_test.y[:12]
    mask = torch.zeros(12, 1, 28, 28)
    mask[:, :, :6, :6] = 1
    mask[::3, :, 20:, 10:20] = 1  # masks differ between images
    return x, y, mask


def grads(model: nn.Module, value: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(value, list(model.parameters()), allow_unused=False))


def loop_rrr(model, x, y, mask, target, channel_sum):
    total = 0
    for b in range(len(x)):
        xb = x[b:b + 1].clone().requires_grad_(True)
        log_p = F.log_softmax(model(xb), 1)[0]
        t = log_p.sum() if target == "sum_log_prob" else -log_p[y[b]]
        (g,) = torch.autograd.grad(t, xb, create_graph=True)
        if channel_sum:
            g = g.sum(1, keepdim=True)
        total = total + ((mask[b:b + 1] * g) ** 2).sum()
    return total / len(x)


@pytest.mark.parametrize("target,channel_sum", [("sum_log_prob", False), ("nll", True)])
def test_rrr_matches_per_sample_loop(batch, target, channel_sum):
    torch.manual_seed(0)
    model = cdep_colormnist_net()
    x3 = batch[0].repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.5, -0.3])[:, None, None]
    x, y, mask = x3, batch[1], batch[2]
    penalty = RRR(target)
    assert penalty.channel_sum == channel_sum
    value = penalty(model, x, y, mask=mask)
    expected = loop_rrr(model, x, y, mask, target, channel_sum)
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-10)
    for a, b in zip(grads(model, value), grads(model, expected)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-9)
    assert any(g.abs().sum() > 0 for g in grads(model, penalty(model, x, y, mask=mask)))


def test_expected_gradients_matches_per_sample_loop_with_same_draws(batch):
    torch.manual_seed(0)
    model = cdep_decoymnist_net()
    x, y, mask = batch
    penalty = ExpectedGradients(n_refs=3)
    value = penalty(model, x, y, mask=mask, generator=torch.Generator().manual_seed(5))
    index, alpha = draw_references(len(x), 3, torch.Generator().manual_seed(5))
    seed_form = ExpectedGradients(n_refs=3, convention="seed")(model, x, y, mask=mask, generator=torch.Generator().manual_seed(5))
    expected, expected_seed = 0, 0
    for b in range(len(x)):
        eg = torch.zeros_like(x[b])
        for r in range(3):
            ref = x[index[b, r]]
            x_tilde = (ref + alpha[b, r] * (x[b] - ref)).requires_grad_(True)
            p = F.softmax(model(x_tilde[None]), 1)[0, y[b]]
            (g,) = torch.autograd.grad(p, x_tilde, create_graph=True)
            eg = eg + (x[b] - ref) * g / 3
            expected_seed = expected_seed + (mask[b] * g.abs() * (x[b] - ref).abs()).sum()
        expected = expected + (mask[b] * eg.abs()).sum()
    expected = expected / len(x)
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(seed_form, expected_seed, rtol=1e-4, atol=1e-10)
    for a, b in zip(grads(model, value), grads(model, expected)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-9)
    assert any(g.abs().sum() > 0 for g in grads(model, seed_form))


def test_cdep_value_and_gradients(batch):
    torch.manual_seed(0)
    model = cdep_decoymnist_net()
    x, y, mask = batch
    value = CDEP()(model, x, y, mask=mask)
    rel, irrel = decompose(model, x, mask)
    expected = torch.stack([F.softmax(torch.stack([rel[b], irrel[b]]), 0)[0] for b in range(len(x))]).mean()
    torch.testing.assert_close(value, expected)
    g = grads(model, value)
    assert all(t.abs().sum() > 0 for t in g)
    assert CDEP.needs_input_grad is False


def test_cdep_blob_sampler_sums_over_blobs(batch):
    torch.manual_seed(0)
    model = cdep_colormnist_net()
    x, y = batch[0].repeat(1, 3, 1, 1), batch[1]
    blobs = torch.zeros(4, 28, 28)
    for n, (i, j) in enumerate([(3, 4), (14, 14), (20, 9), (14, 14)]):
        blobs[n, i, j] = 1
    sampler = lambda generator, x: blobs  # noqa: E731
    value = CDEP(blob_sampler=sampler)(model, x, y)
    expected = sum(CDEP()(model, x, y, mask=blobs[n]) for n in range(4))
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    rrr = RRR(blob_sampler=sampler)(model, x, y)
    torch.testing.assert_close(rrr, sum(RRR()(model, x, y, mask=blobs[n]) for n in range(4)), rtol=1e-5, atol=1e-12)


def test_cdep_leaves_out_images_without_annotation(batch):
    model = cdep_decoymnist_net()
    x, y, mask = batch
    mask = mask.clone()
    mask[4:] = 0
    value = CDEP()(model, x, y, mask=mask)
    torch.testing.assert_close(value, CDEP()(model, x[:4], y[:4], mask=mask[:4]))
    zero = CDEP()(model, x, y, mask=torch.zeros_like(mask))
    assert float(zero.detach()) == 0.0
    zero.backward()  # still connected to the parameters
    assert float(RRR()(model, x, y, mask=torch.zeros_like(mask))) == 0.0


def test_bad_inputs_raise_clear_errors(batch):
    model = cdep_decoymnist_net()
    x, y, mask = batch
    for penalty in (CDEP(), RRR(), ExpectedGradients(2)):
        with pytest.raises(ValueError, match="needs `mask`"):
            penalty(model, x, y)
        with pytest.raises(ValueError, match="does not match"):
            penalty(model, x, y, mask=torch.ones(12, 1, 27, 28))
    with pytest.raises(ValueError, match="n_refs"):
        ExpectedGradients(0)
    with pytest.raises(ValueError, match="score must be one of"):
        RRR("probability")
    assert isinstance(build_penalty("cdep"), CDEP) and isinstance(build_penalty("eg", n_refs=3), ExpectedGradients)


def test_objective_with_mask_extras(batch):
    x, y, mask = batch
    model = cdep_decoymnist_net()
    out = Objective({CDEP(): 10.0, RRR("nll"): 1.0}, seed=0)(model, x, y, mask=mask)
    assert set(out.terms) == {"ce", "cdep", "rrr", "loss"}
    out.loss.backward()
    assert model[0].weight.grad.abs().sum() > 0


def test_penalties_move_decoymnist_test_accuracy_the_right_way():
    """On 3,000 real DecoyMNIST images an MLP trained 5 epochs learns the decoy (test accuracy drops to
    ≈ 60 % while train accuracy rises); each penalty on the corner mask keeps the test accuracy higher."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLP steps: one thread is fastest, and fair on a shared CI machine
    try:
        accuracy = _train_decoy_mlps()
    finally:
        torch.set_num_threads(threads)
    assert accuracy["plain"] < 0.75, accuracy
    for name in ("rrr", "cdep", "eg"):
        assert accuracy[name] > accuracy["plain"] + 0.05, accuracy


def _train_decoy_mlps() -> dict[str, float]:
    torch.manual_seed(0)
    train_set = decoy_mnist("train", limit=3000)
    test_set = decoy_mnist("test", limit=1000)
    config = TrainConfig(epochs=5, batch_size=64, progress=False, seed=0)
    accuracy = {}
    for name, penalties in [("plain", {}), ("rrr", {RRR("nll"): 10.0}), ("cdep", {CDEP(): 100.0}),
                            ("eg", {ExpectedGradients(2): 10.0})]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
        result = train(model, Objective(penalties, seed=0), train_set, test_set, config=config)
        accuracy[name] = result.final["test_accuracy"]
    return accuracy


def test_feature_vector_inputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(5, 6), torch.randint(3, (5,))
    mask = torch.tensor([1.0, 1, 0, 0, 0, 0])
    for penalty in (CDEP(), RRR(), ExpectedGradients(3)):
        shared = penalty(net, x, y, mask=mask, generator=torch.Generator().manual_seed(0))
        per_sample = penalty(net, x, y, mask=mask.expand(5, 6), generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(shared, per_sample)
        with pytest.raises(ValueError, match="does not match"):
            penalty(net, x, y, mask=torch.ones(7))
