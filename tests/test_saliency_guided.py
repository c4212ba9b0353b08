"""Saliency Guided Training (documentation: methods/saliency-guided) against independent per-image loops, on real MNIST."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explainreg as er
from explainreg.penalties import SaliencyGuided, build_penalty, kl_divergence, saliency_guided_mask

import _reference as ref


@pytest.fixture(scope="module")
def batch(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    g = torch.tensor(ref.per_sample_gradients(trained_cnn3b, x, y, score="log_prob"), dtype=torch.float32)
    # give each image its own range, so that a batch-wide range would be caught
    scale = torch.linspace(0.5, 3.0, len(x)).view(-1, 1, 1, 1)
    shift = torch.linspace(-1.0, 1.0, len(x)).view(-1, 1, 1, 1)
    return x * scale + shift, y, g


def lowest_by_loop(g: np.ndarray, k: int, by: str) -> list[set[int]]:
    """Per image: indices of the k lowest scores by a stable sort (the reference ordering)."""
    out = []
    for row in g.reshape(len(g), -1):
        score = np.abs(row) if by == "abs" else row
        out.append(set(np.argsort(score, kind="stable")[:k].tolist()))
    return out


@pytest.mark.parametrize("by", ["abs", "signed"])
@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.93])
def test_mask_is_exactly_the_k_lowest_features(batch, by, fraction):
    x, _, g = batch
    k = int(np.floor(fraction * 784))
    xm, mask = saliency_guided_mask(x, g, fraction, by, "random", torch.Generator().manual_seed(0))
    assert mask.shape == x.shape and mask.dtype == torch.bool
    assert mask.flatten(1).sum(1).tolist() == [k] * len(x)
    expected = lowest_by_loop(g.double().numpy(), k, by)
    for b in range(len(x)):
        score = g[b].flatten().double().abs() if by == "abs" else g[b].flatten().double()
        chosen = set(torch.nonzero(mask[b].flatten()).flatten().tolist())
        kept = sorted(set(range(784)) - chosen)
        # tie-robust: every masked score ≤ every kept score; and the same set as the loop when no tie at the cut
        assert score[sorted(chosen)].max() <= score[kept].min()
        if score[sorted(chosen)].max() < score[kept].min():
            assert chosen == expected[b]
    assert torch.equal(xm[~mask], x[~mask])


def test_random_fill_stays_in_each_images_range(batch):
    x, _, g = batch
    xm, mask = saliency_guided_mask(x, g, 0.5, "abs", "random", torch.Generator().manual_seed(1))
    for b in range(len(x)):
        values = xm[b][mask[b]]
        low, high = float(x[b].min()), float(x[b].max())
        assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6
        assert values.std() > 0.1 * (high - low)  # a spread of draws, not one value
        assert float(values.mean()) == pytest.approx((low + high) / 2, abs=0.1 * (high - low))
    again, _ = saliency_guided_mask(x, g, 0.5, "abs", "random", torch.Generator().manual_seed(1))
    assert torch.equal(xm, again)  # the generator fixes the draws


def test_constant_fill(batch):
    x, _, g = batch
    xm, mask = saliency_guided_mask(x, g, 0.25, "signed", -0.4242)
    assert torch.all(xm[mask] == torch.tensor(-0.4242))
    assert torch.equal(xm[~mask], x[~mask])


def test_kl_matches_independent_formula(mnist_test, trained_cnn3b):
    x = mnist_test.x[:20]
    with torch.no_grad():
        z, zq = trained_cnn3b(x).double(), trained_cnn3b(x.flip(-1)).double()
    p, q = torch.softmax(z, 1).numpy(), torch.softmax(zq, 1).numpy()
    expected = np.mean([np.sum(p[b] * (np.log(p[b]) - np.log(q[b]))) for b in range(len(p))])
    assert float(kl_divergence(z, zq)) == pytest.approx(expected, rel=1e-6)
    seed_form = F.kl_div(F.log_softmax(zq, 1), F.log_softmax(z, 1), log_target=True, reduction="batchmean")
    assert float(kl_divergence(z, zq)) == pytest.approx(float(seed_form), rel=1e-6)


def test_nothing_masked_gives_zero(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    g = torch.randn_like(x)
    xm, mask = saliency_guided_mask(x, g, k=0)
    assert not mask.any() and torch.equal(xm, x)
    z = trained_cnn3b(x)
    assert float(kl_divergence(z, z)) == 0.0
    value = SaliencyGuided(fraction=1e-4)(trained_cnn3b, x, y)  # ⌊1e-4·784⌋ = 0 features
    assert abs(float(value)) < 1e-6


def test_penalty_equals_its_composition_with_per_image_saliency(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    g = torch.tensor(ref.per_sample_gradients(trained_cnn3b, x, y, score="log_prob"), dtype=torch.float32)
    for by in ("abs", "signed"):
        xm, _ = saliency_guided_mask(x, g, 0.5, by, "random", torch.Generator().manual_seed(7))
        with torch.no_grad():
            expected = float(kl_divergence(trained_cnn3b(x), trained_cnn3b(xm)))
        value = SaliencyGuided(0.5, by)(trained_cnn3b, x, y, generator=torch.Generator().manual_seed(7))
        assert float(value) == pytest.approx(expected, rel=1e-4, abs=1e-7)
        assert expected > 1e-4


def test_gradients_reach_the_weights_through_both_branches(mnist_test):
    torch.manual_seed(0)
    model = er.models.cnn3b()
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    g = er.input_gradient(model, x, y, score="log_prob", create_graph=False)
    xm, _ = saliency_guided_mask(x, g, 0.5, "abs", "random", torch.Generator().manual_seed(3))
    params = list(model.parameters())

    def grads(loss):
        return torch.autograd.grad(loss, params, allow_unused=True)

    z, zq = model(x), model(xm)
    through_p = grads(kl_divergence(z, zq.detach()))
    through_q = grads(kl_divergence(z.detach(), zq))
    for gp, gq in zip(through_p, through_q):
        assert gp is not None and gq is not None and gp.abs().sum() > 0 and gq.abs().sum() > 0
    value = SaliencyGuided(0.5, "abs")(model, x, y, generator=torch.Generator().manual_seed(3))
    for full, gp, gq in zip(grads(value), through_p, through_q):
        torch.testing.assert_close(full, gp + gq, rtol=1e-4, atol=1e-8)


def test_objective_adds_ce_and_kl_without_input_grad(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:32], mnist_test.y[:32]
    objective = er.Objective({build_penalty("sgt"): 1.0}, seed=0)
    assert not SaliencyGuided.needs_input_grad
    out = objective(trained_cnn3b, x, y)
    assert set(out.terms) == {"ce", "saliency_guided", "loss"}
    assert out.terms["loss"] == pytest.approx(out.terms["ce"] + out.terms["saliency_guided"], rel=1e-6)
    assert out.terms["saliency_guided"] > 0
    assert build_penalty("saliency-guided").settings()["fraction"] == 0.5


def test_saliency_in_eval_mode_and_training_mode_restored(mnist_test):
    torch.manual_seed(0)
    model = er.models.build_model("sgt_mnist_cnn").train()
    seen = []
    model[5].register_forward_hook(lambda m, i, o: seen.append(m.training))  # the first Dropout
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    out = er.Objective({SaliencyGuided(): 1.0})(model, x, y)
    out.loss.backward()
    assert seen == [True, False, True]  # shared forward, saliency (eval), masked forward (train)
    assert all(m.training for m in model.modules())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_sequence_batch(mnist_test):
    x, y = mnist_test.x[:12, 0], mnist_test.y[:12]  # rows of real digits as B×T×F sequences, T = F = 28
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(28, 16), nn.Tanh(), nn.Flatten(), nn.Linear(28 * 16, 10))
    g = er.input_gradient(model, x, y, score="log_prob", create_graph=False)
    xm, mask = saliency_guided_mask(x, g, 0.3, "abs", "random", torch.Generator().manual_seed(0))
    assert xm.shape == x.shape and mask.flatten(1).sum(1).tolist() == [int(0.3 * 784)] * 12
    expected = lowest_by_loop(g.double().numpy(), int(0.3 * 784), "abs")
    assert [set(torch.nonzero(m.flatten()).flatten().tolist()) for m in mask] == expected
    value = SaliencyGuided(0.3)(model, x, y)
    value.backward()
    assert torch.isfinite(value) and value > 0
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


def test_three_channel_batch(mnist_test):
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    rgb = torch.cat([x, 0.5 * x, x.flip(-1)], 1)
    torch.manual_seed(0)
    model = er.models.cnn3b(in_channels=3)
    g = torch.tensor(ref.per_sample_gradients(model, rgb, y, score="log_prob"), dtype=torch.float32)
    xm, mask = saliency_guided_mask(rgb, g, 0.5, "signed", 0.0)
    k = int(0.5 * 3 * 784)
    assert mask.flatten(1).sum(1).tolist() == [k] * 8
    for b in range(8):
        score = g[b].flatten()
        assert score[mask[b].flatten()].max() <= score[~mask[b].flatten()].min()
    value = SaliencyGuided(0.5, "signed", 0.0)(model, rgb, y)
    value.backward()
    assert value > 0 and all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("kwargs,word", [
    ({"fraction": 0.0}, "fraction"), ({"fraction": 1.0}, "fraction"), ({"fraction": -0.2}, "fraction"),
    ({"fraction": 1.5}, "fraction"), ({"fraction": "half"}, "fraction"),
    ({"fill": "zeros"}, "fill"), ({"fill": float("nan")}, "fill"), ({"fill": None}, "fill"),
    ({"by": "magnitude"}, "by"), ({"score": "prob"}, "score"),
])
def test_bad_settings_raise_clear_errors(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SaliencyGuided(**kwargs)
    with pytest.raises(ValueError, match=word):
        build_penalty("sgt", **kwargs)


def test_bad_mask_arguments(mnist_test):
    x = mnist_test.x[:4]
    with pytest.raises(ValueError, match="g must have the shape"):
        saliency_guided_mask(x, x[:, :, :10], 0.5)
    with pytest.raises(ValueError, match="k must be"):
        saliency_guided_mask(x, x, k=785)
    with pytest.raises(ValueError, match="by"):
        saliency_guided_mask(x, x, 0.5, by="largest")
    with pytest.raises(ValueError, match="fraction"):
        saliency_guided_mask(x, x, 1.0)
    with pytest.raises(ValueError, match="masked_logits"):
        kl_divergence(torch.zeros(4, 10), torch.zeros(4, 9))


def test_sgt_mnist_cnn_returns_logits(mnist_test):
    model = er.models.build_model("sgt_mnist_cnn").eval()
    z = model(mnist_test.x[:4])
    assert z.shape == (4, 10)
    assert not torch.allclose(z.exp().sum(1), torch.ones(4))  # logits, not log-probabilities
    assert er.models.count_parameters(model) == 1_199_882
