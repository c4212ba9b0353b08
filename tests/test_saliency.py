"""Saliency targets, normalisation and the differentiable rotation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import explainreg as er
from explainreg.transforms import rotate

import _reference as ref


@pytest.mark.parametrize("score", ["logit", "log_prob", "nll", "sum_log_prob"])
def test_one_pass_saliency_equals_per_sample_gradients(mnist_test, score):
    torch.manual_seed(0)
    model = er.models.cnn3b()
    x, y = mnist_test.x[:10], mnist_test.y[:10]
    g = er.input_gradient(model, x, y, score=score, create_graph=False)
    assert g.shape == x.shape
    np.testing.assert_allclose(g.numpy(), ref.per_sample_gradients(model, x, y, score), rtol=1e-4, atol=1e-7)


def test_nll_is_minus_log_prob_and_signed(mnist_test):
    model = er.models.cnn3b()
    x, y = mnist_test.x[:5], mnist_test.y[:5]
    a = er.input_gradient(model, x, y, "log_prob")
    assert torch.allclose(er.input_gradient(model, x, y, "nll"), -a)
    assert (a < 0).any() and (a > 0).any()


def test_saliency_is_differentiable_wrt_weights(mnist_test):
    model = er.models.cnn3b()
    er.input_gradient(model, mnist_test.x[:4], mnist_test.y[:4]).abs().sum().backward()
    assert model[0].weight.grad.abs().sum() > 0


def test_minmax_normalize_per_sample(mnist_test):
    g = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    g_hat = er.minmax_normalize(g)
    for b in range(3):
        np.testing.assert_allclose(g_hat[b].numpy(), ref.minmax(g[b].numpy()), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(er.minmax_normalize(torch.zeros(2, 1, 4, 4))).all()  # constant maps do not divide by 0


def test_unknown_score(mnist_test):
    with pytest.raises(ValueError, match="score must be one of"):
        er.input_gradient(er.models.cnn3b(), mnist_test.x[:2], mnist_test.y[:2], score="prob")


def test_rotate_matches_rot90_and_identity(mnist_test):
    x = mnist_test.x[:4]
    assert torch.equal(rotate(x, 90), torch.rot90(x, 1, (-2, -1)))
    assert torch.equal(rotate(x, -90), torch.rot90(x, -1, (-2, -1)))
    assert torch.equal(rotate(x, 180), torch.rot90(x, 2, (-2, -1)))
    assert torch.allclose(rotate(x, 0.0, "bilinear"), x, atol=1e-5)   # float32 resampling: up to 3.4e-6 on MNIST test
    per_image = rotate(x, torch.tensor([0.0, 90.0, 180.0, 270.0]))
    assert torch.equal(per_image[1], torch.rot90(x[1], 1, (-2, -1)))
    assert torch.equal(per_image[3], torch.rot90(x[3], 3, (-2, -1)))


def test_rotate_is_differentiable_and_keeps_ink(mnist_test):
    x = mnist_test.x[:2].clone().requires_grad_(True)
    out = rotate(x, 15.0, "bilinear")
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    # a small rotation of a centred digit keeps almost all of its ink inside the frame
    assert float(out.sum()) == pytest.approx(float(x.sum()), rel=0.05)
    filled = rotate(mnist_test.x[:1], 45.0, fill=0.5)
    assert float(filled[0, 0, 0, 0]) == pytest.approx(0.5)  # corners come from outside: filled
    with pytest.raises(ValueError, match="B×C×H×W"):
        rotate(x[0], 10.0)
