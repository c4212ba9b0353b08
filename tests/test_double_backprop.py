"""DoubleBackprop (a penalty added in one module, penalties/gradient.py, to show the registry's seam):
its value against a per-sample loop of input gradients of the cross-entropy on real MNIST images,
weight gradients, and the registry and objective finding it by name."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.models import build_model
from explainreg.objective import Objective
from explainreg.penalties import build_penalty


def test_double_backprop_against_a_per_sample_loop_with_weight_gradients(trained_cnn3b, mnist_test):
    model = trained_cnn3b
    x, y = mnist_test.x[:10], mnist_test.y[:10]
    penalty = build_penalty("double_backprop")
    value = penalty(model, x, y)
    norms = []
    for i in range(len(x)):  # one sample at a time: ‖∂(−log p_y)/∂x‖²
        xi = x[i:i + 1].clone().requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(xi), y[i:i + 1]), xi)
        norms.append(g.pow(2).sum())
    expected = torch.stack(norms).mean()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-10)
    assert value > 0
    grads = torch.autograd.grad(value, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_double_backprop_in_an_objective_by_its_alias(mnist_test):
    torch.manual_seed(0)
    model = build_model("cnn3b")
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    out = Objective({"gradient_norm": 0.5})(model, x, y)
    assert set(out.terms) == {"ce", "double_backprop", "loss"}
    assert float(out.loss) == pytest.approx(out.terms["ce"] + 0.5 * out.terms["double_backprop"], rel=1e-6)
    assert out.terms["double_backprop"] > 0
