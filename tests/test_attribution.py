"""explainreg.attribution: Captum attributions, batched, with clear errors."""
from __future__ import annotations

import pytest
import torch

import explainreg as er
from explainreg.attribution import METHODS, attribute, explainer, resolve_method


@pytest.fixture(scope="module")
def batch(mnist_test):
    return mnist_test.x[:12], mnist_test.y[:12]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_shape_finite_and_chunked(trained_cnn3b, batch, method):
    x, y = batch
    opts = {"n_steps": 8} if method == "integrated_gradients" else {}
    small, large = (40, 400) if method in ("occlusion", "integrated_gradients") else (5, 64)
    a = attribute(trained_cnn3b, x, y, method, max_batch=small, **opts)
    assert a.shape == x.shape and torch.isfinite(a).all() and not a.requires_grad
    if method not in ("random", "smoothgrad", "gradient_shap"):  # noise draws depend on the chunking
        b = attribute(trained_cnn3b, x, y, method, max_batch=large, **opts)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)  # chunking does not change the result


def test_saliency_is_abs_gradient_of_true_logit_per_image(trained_cnn3b, batch):
    x, y = batch
    a = attribute(trained_cnn3b, x, y)
    for i in range(3):  # independent per-image computation
        xi = x[i:i + 1].clone().requires_grad_(True)
        trained_cnn3b(xi)[0, y[i]].backward()
        torch.testing.assert_close(a[i], xi.grad[0].abs())
    signed = attribute(trained_cnn3b, x, y, "gradient")
    torch.testing.assert_close(signed.abs(), a)
    assert (signed < 0).any() and (signed > 0).any()
    torch.testing.assert_close(signed, er.input_gradient(trained_cnn3b, x, y, create_graph=False))
    assert attribute(trained_cnn3b, x, y, "grad").equal(signed)
    with pytest.raises(ValueError, match=r"'abs' not accepted by method 'saliency'.*method 'gradient' the signed"):
        attribute(trained_cnn3b, x, y, "saliency", abs=False)


def test_target_none_explains_prediction_and_mode_restored(trained_cnn3b, batch):
    x, _ = batch
    trained_cnn3b.train()
    try:
        pred = trained_cnn3b.eval()(x).argmax(1)
        trained_cnn3b.train()
        torch.testing.assert_close(attribute(trained_cnn3b, x), attribute(trained_cnn3b, x, pred))
        assert trained_cnn3b.training
    finally:
        trained_cnn3b.eval()


def test_integrated_gradients_completeness(trained_cnn3b, batch):
    x, y = batch
    a = attribute(trained_cnn3b, x, y, "ig", n_steps=64)
    with torch.no_grad():
        gap = trained_cnn3b(x).gather(1, y[:, None]).squeeze(1) - trained_cnn3b(torch.zeros_like(x))[:, y].diagonal()
    torch.testing.assert_close(a.flatten(1).sum(1), gap, atol=0.05 * float(gap.abs().max()), rtol=0.05)


def test_seeded_methods_reproducible_and_gradcam_layer(trained_cnn3b, batch):
    x, y = batch
    for method in ("random", "smoothgrad", "gradient_shap"):
        torch.testing.assert_close(attribute(trained_cnn3b, x, y, method, seed=3),
                                   attribute(trained_cnn3b, x, y, method, seed=3))
    first = attribute(trained_cnn3b, x, y, "gradcam", layer="0")
    last = attribute(trained_cnn3b, x, y, "gradcam")
    assert not torch.allclose(first, last)


def test_bad_inputs(trained_cnn3b, batch):
    x, y = batch
    with pytest.raises(ValueError, match="method must be one of .*saliency.*integrated_gradients"):
        attribute(trained_cnn3b, x, y, "lrp-magic")
    with pytest.raises(ValueError, match="layer must name a module"):
        attribute(trained_cnn3b, x, y, "gradcam", layer="nope")
    with pytest.raises(ValueError, match="labels y must lie"):
        attribute(trained_cnn3b, x, y + 20)
    with pytest.raises(ValueError, match="non-finite"):
        attribute(trained_cnn3b, x.clone().fill_(float("nan")), y)
    with pytest.raises(ValueError, match="max_batch"):
        attribute(trained_cnn3b, x, y, max_batch=0)
    assert resolve_method("IG") == "integrated_gradients"
    assert explainer("grad")(trained_cnn3b, x, y).shape == x.shape


def test_deeplift_shap_is_mean_over_baselines_on_a_linear_net(mnist_test):
    """Captum's DeepLiftShap on a linear net: a_m = (x − b_m) ⊙ w_t exactly, averaged over the baselines."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).double().eval()
    x, y = mnist_test.x[:6].double(), mnist_test.y[:6]
    baselines = mnist_test.x[100:104].double()                        # four real images as the distribution
    a = attribute(net, x, y, "deeplift_shap", baselines=baselines, max_batch=8)
    w = net[1].weight.detach()[y].view(x.shape)                       # w_t per sample, B×1×28×28
    expected = torch.stack([(x - b) * w for b in baselines]).mean(0)
    torch.testing.assert_close(a, expected)
    # one baseline (or the default zero image): plain DeepLift's (x − b) ⊙ w_t
    torch.testing.assert_close(attribute(net, x, y, "dlshap"), x * w)
    with pytest.raises(ValueError, match="'n_steps' not accepted by method 'deeplift_shap'"):
        attribute(net, x, y, "deeplift_shap", n_steps=10)
