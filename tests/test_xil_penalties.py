"""RRR-GradCAM, HINT and RBR against plain per-sample computations of their formulas on real DecoyMNIST
images, with non-zero weight gradients; Captum's LayerGradCam gives none through its maps."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from explainreg.data import decoy_mnist
from explainreg.models import cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import HINT, RBR, RRRGradCAM, build_penalty

B = 8


@pytest.fixture(scope="module")
def batch():
    data = decoy_mnist("train", limit=B)
    x, y = data.x, data.y
    mask = data.extras["mask"].float()
    reward = (x > -0.99).float()  # the object (XIL's reward mask: original pixel > 1/255)
    return x, y, mask, reward


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return cdep_decoymnist_net()


def weight_grads(model, value):
    return torch.autograd.grad(value, list(model.parameters()), allow_unused=True, retain_graph=True)


def assert_grads_close(model, value, expected):
    """Weight gradients equal up to float32 noise (atol relative to the largest gradient entry)."""
    ours, theirs = weight_grads(model, value), weight_grads(model, expected)
    scale = max(float(e.abs().max()) for e in theirs if e is not None)
    for a, e in zip(ours, theirs):
        assert (a is None) == (e is None)
        if e is not None:
            torch.testing.assert_close(a, e, rtol=1e-3, atol=1e-5 * scale)


def interp_matrix(n_in: int, n_out: int, mode: str) -> torch.Tensor:
    """n_out×n_in 1-D interpolation weights, written out: bilinear (half-pixel centres) or nearest."""
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = n_in / n_out
    for o in range(n_out):
        if mode == "nearest":
            w[o, min(int(math.floor(o * scale)), n_in - 1)] = 1
            continue
        src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        w[o, i0] += 1 - lam
        w[o, i1] += lam
    return w


def resize2d(m: torch.Tensor, size, mode: str) -> torch.Tensor:
    rows = interp_matrix(m.shape[0], size[0], mode).to(m.dtype)
    cols = interp_matrix(m.shape[1], size[1], mode).to(m.dtype)
    return rows @ m @ cols.T


def loop_cam(model, xb, target):
    """Grad-CAM of one image by splitting the Sequential at its last conv (index 3)."""
    a = model[:4](xb)
    z = model[4:](a)[0, target]
    (g,) = torch.autograd.grad(z, a, create_graph=True)
    cam = sum(g[0, k].mean() * a[0, k] for k in range(a.shape[1]))
    return cam


def loop_norm(cam, positive=False):
    if positive:
        cam = torch.where(cam > 0, cam, torch.zeros_like(cam))
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-6)


def test_rrr_gradcam_matches_per_sample_loop(batch, model):
    x, y, mask, _ = batch
    for reduction in ("sum", "mean"):
        value = RRRGradCAM(reduction=reduction)(model, x, y, mask=mask)
        total = 0
        for b in range(B):
            xb = x[b:b + 1]
            pred = int(model(xb).argmax())
            cam = loop_norm(loop_cam(model, xb, pred))
            m = resize2d(mask[b, 0], cam.shape, "bilinear")
            total = total + ((m * cam) ** 2).sum()
        expected = total if reduction == "sum" else total / B
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-8)
    assert_grads_close(model, value, expected)
    assert float(value) > 0


def test_hint_matches_per_sample_loop(batch, model):
    x, y, _, reward = batch
    for positive in (False, True):
        value = HINT(positive_only=positive)(model, x, y, reward_mask=reward)
        total = 0
        for b in range(B):
            cam = loop_norm(loop_cam(model, x[b:b + 1], int(y[b])), positive)
            up = resize2d(cam, (28, 28), "nearest")
            total = total + ((up - reward[b, 0]) ** 2).sum()
        expected = total / (B * 28 * 28)
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-8)
    sum_value = HINT(reduction="sum")(model, x, y, reward_mask=reward)
    torch.testing.assert_close(sum_value, HINT()(model, x, y, reward_mask=reward) * B * 784, rtol=1e-5, atol=1e-6)
    assert any(g is not None and g.abs().sum() > 0 for g in weight_grads(model, value))


def test_rbr_matches_per_sample_loop(batch, model):
    x, y, mask, _ = batch
    value = RBR()(model, x, y, mask=mask)
    # IF of the batch-mean CE: ∂/∂x_b of Σ_θ ∂CE/∂θ, CE = (1/B) Σ_b ce_b, so per sample it is (1/B) ∂/∂x_b Σ_θ ∂ce_b/∂θ
    total = 0
    params = list(model.parameters())
    for b in range(B):
        xb = x[b:b + 1].clone().requires_grad_(True)
        z = model(xb)
        ce_b = F.cross_entropy(z, y[b:b + 1]) / B
        q = sum(g.sum() for g in torch.autograd.grad(ce_b, params, create_graph=True))
        (infl,) = torch.autograd.grad(q, xb, create_graph=True)
        (g,) = torch.autograd.grad(F.log_softmax(z, 1).sum(), xb, create_graph=True)
        total = total + ((mask[b:b + 1] * infl * g) ** 2).sum()
    torch.testing.assert_close(value, total, rtol=1e-4, atol=1e-12)
    grads = weight_grads(model, value)
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert_grads_close(model, value, total)


def test_captum_gradcam_detaches_alpha_so_the_head_gets_no_gradient(batch, model):
    """A loss on Captum's LayerGradCam (as in the XIL code) has α detached: it equals our map with
    create_graph=False, and no gradient reaches the layers after the Grad-CAM layer (the classifier
    head); our differentiable map gives them one."""
    from captum.attr import LayerGradCam

    from explainreg.gradcam import forward_with_activation, grad_cam

    x, y, mask, _ = batch
    m = F.interpolate(mask, size=(8, 8))
    head = [p for name, p in model.named_parameters() if name.startswith(("7.", "9."))]
    cam = LayerGradCam(model, model[3]).attribute(x.clone().requires_grad_(True), target=y, relu_attributions=False)
    captum_loss = ((m * cam) ** 2).sum()
    assert all(g is None for g in torch.autograd.grad(captum_loss, head, allow_unused=True, retain_graph=True))
    logits, a = forward_with_activation(model, x, model[3])
    detached = grad_cam(logits, a, y, create_graph=False)
    torch.testing.assert_close(detached, cam, rtol=1e-5, atol=1e-7)
    assert_grads_close(model, ((m * detached) ** 2).sum(), captum_loss)
    logits, a = forward_with_activation(model, x, model[3])
    ours = ((m * grad_cam(logits, a, y)) ** 2).sum()
    assert all(float(g.abs().sum()) > 0 for g in torch.autograd.grad(ours, head[::2]))  # head weights


def test_objective_trains_with_the_new_penalties(batch, model):
    x, y, mask, reward = batch
    objective = Objective({RRRGradCAM(): 1.0, HINT(): 1.0, RBR(): 1.0})
    out = objective(model, x, y, mask=mask, reward_mask=reward)
    out.loss.backward()
    assert {"rrr_gradcam", "hint", "rbr"} <= set(out.terms)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_registry_layer_and_errors(batch, model):
    x, y, mask, reward = batch
    assert isinstance(build_penalty("rrr-g"), RRRGradCAM)
    assert isinstance(build_penalty("hint"), HINT) and isinstance(build_penalty("rbr"), RBR)
    first = RRRGradCAM(layer="0")(model, x, y, mask=mask)  # the first conv, 24×24 maps
    assert float(first.detach()) != float(RRRGradCAM()(model, x, y, mask=mask).detach())
    with pytest.raises(ValueError, match="reward_mask"):
        HINT()(model, x, y, mask=mask)
    with pytest.raises(ValueError, match="layer must name a module"):
        RRRGradCAM(layer="nope")(model, x, y, mask=mask)
    with pytest.raises(ValueError, match="reduction must be one of"):
        RBR(reduction="max")
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        RRRGradCAM()(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), x, y, mask=mask)


def captum_style_cam(model, x, target):
    """A plain re-implementation of Captum's LayerGradCam map as XIL's losses use it: split the
    Sequential at its last conv (index 3), α = spatial mean of ∂z_t/∂A computed *without*
    create_graph and detached, map = Σ_k α_k A_k (relu_attributions=False), A keeping its graph."""
    a = model[:4](x)
    z = model[4:](a)
    (g,) = torch.autograd.grad(z.gather(1, target[:, None]).sum(), a, retain_graph=True)
    alpha = g.mean((2, 3)).detach()
    return (alpha[:, :, None, None] * a).sum(1, keepdim=True)


def test_detached_weights_match_captum_style_map_and_leave_the_head_alone(batch, model):
    """detach_weights=True (XIL's Captum Grad-CAM): the head (layers after the Grad-CAM layer) gets
    no gradient, the conv layers get exactly the gradients of a loss on the Captum-style map;
    the default (differentiable α) gives the head non-zero gradients."""
    x, y, mask, reward = batch
    head = [p for name, p in model.named_parameters() if name.startswith(("7.", "9."))]
    conv = [p for name, p in model.named_parameters() if name.startswith(("0.", "3."))]
    pred = model(x).argmax(1)
    cam = captum_style_cam(model, x, pred)
    expected_rrrg = sum(((resize2d(mask[b, 0], (8, 8), "bilinear") * loop_norm(cam[b, 0])) ** 2).sum()
                        for b in range(B))
    cam = captum_style_cam(model, x, y)
    expected_hint = {pos: sum(((resize2d(loop_norm(cam[b, 0], pos), (28, 28), "nearest") - reward[b, 0]) ** 2).sum()
                              for b in range(B)) for pos in (False, True)}
    cases = [(RRRGradCAM(detach_weights=True), {"mask": mask}, expected_rrrg),
             (HINT(reduction="sum", detach_weights=True), {"reward_mask": reward}, expected_hint[False]),
             (HINT(reduction="sum", positive_only=True, detach_weights=True), {"reward_mask": reward},
              expected_hint[True])]
    for penalty, extras, expected in cases:
        value = penalty(model, x, y, **extras)
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-6)
        assert all(g is None or float(g.abs().max()) == 0
                   for g in torch.autograd.grad(value, head, allow_unused=True, retain_graph=True))
        ours = torch.autograd.grad(value, conv, retain_graph=True)
        theirs = torch.autograd.grad(expected, conv, retain_graph=True)
        scale = max(float(t.abs().max()) for t in theirs)
        assert scale > 0
        for a, e in zip(ours, theirs):
            torch.testing.assert_close(a, e, rtol=1e-3, atol=1e-5 * scale)
        assert penalty.settings()["detach_weights"] is True
    for penalty, extras in ((RRRGradCAM(), {"mask": mask}), (HINT(reduction="sum"), {"reward_mask": reward})):
        value = penalty(model, x, y, **extras)
        assert all(float(g.abs().sum()) > 0 for g in torch.autograd.grad(value, head[::2]))  # head weights
        assert penalty.settings()["detach_weights"] is False
