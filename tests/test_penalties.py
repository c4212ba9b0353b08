"""Each penalty against an independent per-sample computation, on real MNIST images and several models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import explainreg as er
from explainreg.penalties import (Consistency, Fidelity, GradientL1, Locality, Smoothness, Symmetry,
                                  build_penalty)

import _reference as ref


def small_models(channels: int):
    torch.manual_seed(1)
    return {
        "cnn3b": er.models.cnn3b(in_channels=channels),
        "mlp_tanh": nn.Sequential(nn.Flatten(), nn.Linear(channels * 784, 32), nn.Tanh(), nn.Linear(32, 10)),
        "conv_softplus": nn.Sequential(nn.Conv2d(channels, 4, 3), nn.Softplus(), nn.AvgPool2d(2), nn.Flatten(),
                                       nn.Linear(4 * 13 * 13, 10)),
    }


def batches(mnist_test):
    x, y = mnist_test.x[:12], mnist_test.y[:12]
    rgb = torch.cat([x, 0.5 * x, x.flip(-1)], 1)  # a real 3-channel input: channels differ
    return {"grey": (x, y), "rgb": (rgb, y), "single": (x[3:4], y[3:4])}


CASES = [(m, b) for b in ("grey", "rgb", "single") for m in ("cnn3b", "mlp_tanh", "conv_softplus")]


@pytest.mark.parametrize("model_name,batch_name", CASES)
def test_saliency_penalties_match_per_sample_reference(mnist_test, model_name, batch_name):
    x, y = batches(mnist_test)[batch_name]
    model = small_models(x.shape[1])[model_name]
    g = ref.per_sample_gradients(model, x, y)
    np.testing.assert_allclose(er.input_gradient(model, x, y).detach().numpy(), g, rtol=1e-4, atol=1e-6)
    scale = np.abs(g).mean()
    checks = {
        GradientL1(): np.abs(g).mean(),
        Smoothness(): ref.smoothness(g),
        Smoothness(offset=2): ref.smoothness(g, offset=2),
        Smoothness(convention="seed"): ref.smoothness(g, seed_convention=True),
        Locality(): ref.locality(g, x.numpy().astype(np.float64)),
        Fidelity(threshold=0.05): ref.fidelity(model, x, g, threshold=0.05),
    }
    for penalty, expected in checks.items():
        value = float(penalty(model, x, y))
        tol = 1e-4 * scale if penalty.name in ("gradient_l1", "smoothness") else 1e-4
        assert value == pytest.approx(expected, rel=1e-3, abs=tol), penalty


def test_consistency_matches_pairwise_loop(mnist_test):
    x, y = mnist_test.x[:40], mnist_test.y[:40]
    for model in small_models(1).values():
        g = ref.per_sample_gradients(model, x, y)
        predicted = model(x).argmax(1).numpy()
        assert len(set(predicted)) < len(predicted), "needs at least one same-class pair"
        expected = ref.consistency(g, x, predicted)
        assert float(Consistency()(model, x, y)) == pytest.approx(expected, rel=1e-3)


def test_symmetry_with_quarter_turn_matches_rot90(mnist_test):
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    model = small_models(1)["conv_softplus"]
    g = torch.tensor(ref.per_sample_gradients(model, x, y))
    xr = torch.rot90(x, 1, (-2, -1))
    gr = torch.tensor(ref.per_sample_gradients(model, xr, y))
    g_rot = torch.rot90(g, 1, (-2, -1))
    expected = np.mean([1 - abs(ref.cosine(gr[b].numpy(), g_rot[b].numpy())) for b in range(len(x))])
    assert float(Symmetry(angles=(90,))(model, x, y)) == pytest.approx(expected, rel=1e-4)


def test_symmetry_draws_angles_from_the_generator(mnist_test):
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    model = small_models(1)["cnn3b"]
    values = {float(Symmetry()(model, x, y, generator=torch.Generator().manual_seed(s))) for s in range(12)}
    assert len(values) > 1  # several of the four angles were drawn
    a = Symmetry()(model, x, y, generator=torch.Generator().manual_seed(3))
    b = Symmetry()(model, x, y, generator=torch.Generator().manual_seed(3))
    assert float(a) == float(b)


def test_locality_uses_annotation_mask(mnist_test):
    x, y = mnist_test.x[:6], mnist_test.y[:6]
    model = small_models(1)["mlp_tanh"]
    g = ref.per_sample_gradients(model, x, y)
    mask = torch.zeros(6, 1, 28, 28)
    mask[:, :, 8:20, 8:20] = 1
    expected = ref.locality(g, None, mask=mask.numpy())
    assert float(Locality()(model, x, y, mask=mask)) == pytest.approx(expected, rel=1e-4)
    assert float(Locality()(model, x, y, mask=mask[0, 0])) == pytest.approx(expected, rel=1e-4)  # one H×W mask
    assert float(Locality(use_mask=False)(model, x, y, mask=mask)) == pytest.approx(float(Locality()(model, x, y)))
    with pytest.raises(ValueError, match="mask of shape"):
        Locality()(model, x, y, mask=torch.ones(6, 1, 14, 14))


@pytest.mark.parametrize("name", ["gradient_l1", "smoothness", "locality", "fidelity", "consistency", "symmetry"])
def test_every_penalty_sends_gradient_to_the_weights(mnist_test, name):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    model = er.models.cnn3b()
    build_penalty(name)(model, x, y).backward()
    for param_name, param in model.named_parameters():
        if param_name.endswith("weight"):
            assert param.grad is not None and param.grad.abs().sum() > 0, (name, param_name)


def test_objective_terms_add_up_and_share_one_forward(mnist_test):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    model = er.models.cnn3b()
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    weights = {"gradient_l1": 0.5, "smoothness": 0.1, "locality": 0.01, "consistency": 0.2}
    out = er.Objective(weights)(model, x, y)
    assert len(calls) == 1  # one forward pass shared by CE and the four penalties
    expected = out.terms["ce"] + sum(w * out.terms[n] for n, w in weights.items())
    assert out.terms["loss"] == pytest.approx(expected, rel=1e-5)
    assert float(out.loss) == pytest.approx(expected, rel=1e-5)
    assert out.terms["ce"] == pytest.approx(float(nn.functional.cross_entropy(model(x), y)), rel=1e-5)
    for name in weights:  # each shared-context value equals the penalty called on its own
        assert out.terms[name] == pytest.approx(float(build_penalty(name)(model, x, y)), rel=1e-4)


def test_zero_weight_penalty_is_logged_but_not_trained(mnist_test):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    model = er.models.cnn3b()
    out = er.Objective({"smoothness": 0.0})(model, x, y)
    assert out.terms["smoothness"] > 0
    assert out.terms["loss"] == pytest.approx(out.terms["ce"])


def test_bad_input_raises_clear_errors(mnist_test):
    x, y = mnist_test.x[:4], mnist_test.y[:4]
    model = er.models.cnn3b()
    with pytest.raises(ValueError, match="unknown penalty 'smoothnes'"):
        build_penalty("smoothnes")
    with pytest.raises(ValueError, match="unknown penalty"):
        er.Objective({"nope": 1.0})
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 9\]"):
        GradientL1()(model, x, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match=r"y must have shape \(B,\)"):
        GradientL1()(model, x, y[:3])
    with pytest.raises(ValueError, match="non-finite"):
        GradientL1()(model, x.clone().index_fill_(0, torch.tensor([1]), float("nan")), y)
    with pytest.raises(ValueError, match="batched"):
        GradientL1()(model, x[0, 0, 0], y)
    with pytest.raises(TypeError, match="floating-point"):
        GradientL1()(model, (x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="weight of smoothness"):
        er.Objective({"smoothness": -1.0})
    with pytest.raises(ValueError, match="threshold"):
        Fidelity(threshold=2.0)
    with pytest.raises(ValueError, match="offset"):
        Smoothness(offset=0)


def test_monitored_penalties_are_computed_every_n_batches(mnist_test):
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    model = er.models.cnn3b()
    objective = er.Objective({"smoothness": 0.0, "gradient_l1": 0.1}, monitor_every=3)
    seen = [set(objective(model, x, y).terms) for _ in range(4)]
    assert ["smoothness" in s for s in seen] == [True, False, False, True]
    assert all("gradient_l1" in s for s in seen)
    with pytest.raises(ValueError, match="monitor_every"):
        er.Objective({"smoothness": 0.0}, monitor_every=0)
