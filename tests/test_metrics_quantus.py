"""``convention="quantus"`` reproduces Quantus 0.6 on the same model, inputs and attributions (Quantus is
a test-only dependency). Random draws are shared with Quantus by feeding it our subsets / noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainreg import metrics as M
from explainreg.metrics import functional as MF
from explainreg._random import descending_ranks
from explainreg.metrics.functional.complexities import complexity_scores, sparseness_scores
from explainreg.metrics.functional.perturbation import (faithfulness_correlation_scores, pixel_flipping_curve,
                                                      region_perturbation_curve)
from explainreg.metrics.functional.robustness import max_sensitivity_scores
from explainreg.attribution import attribute

quantus = pytest.importorskip("quantus")
N = 24


@pytest.fixture(scope="module")
def data(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:N], mnist_test.y[:N]
    a = attribute(trained_cnn3b, x, y)
    a = a + 1e-6 * float(a.max()) * torch.rand(a.shape, generator=torch.Generator().manual_seed(0))  # no ties
    return trained_cnn3b, x, y, a


def _np(*tensors):
    return [t.numpy() for t in tensors]


def test_complexity_and_sparseness(data):
    _, x, _, a = data
    xn, an = _np(x, a)
    q_c = quantus.Complexity(disable_warnings=True)(None, xn, None, an.copy())
    q_s = quantus.Sparseness(disable_warnings=True)(None, xn, None, an.copy())
    np.testing.assert_allclose(complexity_scores(a, convention="quantus").numpy(), q_c, rtol=1e-5)
    np.testing.assert_allclose(sparseness_scores(a, convention="quantus").numpy(), q_s, rtol=1e-5)
    # the explainreg default differs only by Quantus's epsilons
    np.testing.assert_allclose(complexity_scores(a).numpy(), q_c, rtol=1e-4)
    np.testing.assert_allclose(sparseness_scores(a).numpy(), q_s, atol=1e-4)


def test_faithfulness_correlation_same_subsets(data, monkeypatch):
    model, x, y, a = data
    runs, k = 20, 224
    subsets = MF.perturbation.random_subsets(N, 784, runs, k, torch.Generator().manual_seed(0))
    calls = iter(subsets.permute(1, 0, 2).reshape(-1, k).numpy())  # Quantus: run-major, then image
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(calls))
    q = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=k, disable_warnings=True, return_aggregate=False)(
        model, *_np(x, y, a), device="cpu", batch_size=N)
    ours = faithfulness_correlation_scores(model, x, y, a, subsets=subsets, convention="quantus")
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), atol=1e-4)


def test_pixel_flipping_and_region_perturbation(data):
    model, x, y, a = data
    xn, yn, an = _np(x, y, a)
    q = quantus.PixelFlipping(features_in_step=28, disable_warnings=True)(model, xn, yn, an.copy(), device="cpu")
    ours = pixel_flipping_curve(model, x, y, a, features_in_step=28, convention="quantus")
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), atol=2e-4, rtol=1e-4)
    metric = quantus.RegionPerturbation(patch_size=8, regions_evaluation=10, disable_warnings=True)
    q = metric(model, xn, yn, an.copy(), device="cpu")
    ours = region_perturbation_curve(model, x, y, a, patch_size=8, regions_evaluation=10, convention="quantus")
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), atol=2e-4, rtol=1e-4)
    # Quantus's get_auc_score (mean per-image np.trapz, dx = 1) fails on NumPy 2 (np.trapz is gone): recompute it
    auc = np.mean([np.trapezoid(np.asarray(curve)) for curve in metric.evaluation_scores])
    value = M.RegionPerturbation(patch_size=8, regions_evaluation=10, convention="quantus")(model, x, y, a).value
    assert value == pytest.approx(auc, rel=1e-4)


def test_max_sensitivity_same_noise(data):
    model, x, y, _ = data
    a = attribute(model, x, y)
    r = 4
    noise = (torch.rand((r,) + tuple(x.shape), generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.2
    draws = iter(noise.flatten(2).numpy())

    def perturb(arr, indices, **kwargs):
        return arr + next(draws)

    def explain(model, inputs, targets, **kwargs):
        return attribute(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    q = quantus.MaxSensitivity(nr_samples=r, perturb_func=perturb, disable_warnings=True)(
        model, *_np(x, y, a), explain_func=explain, device="cpu", batch_size=N)
    ours = max_sensitivity_scores(model, x, y, a, noise=noise)
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), rtol=1e-4)


def test_road_without_noise(data):
    model, x, y, a = data
    pcts = [10, 40, 70, 95]
    q = quantus.ROAD(percentages=pcts, noise=0.0, disable_warnings=True)(model, *_np(x, y, a), device="cpu",
                                                                          batch_size=N)
    ours = M.ROAD(percentages=pcts, noise=0.0, convention="quantus")(model, x, y, a)
    np.testing.assert_allclose(ours.curve.numpy(), np.array([q[p] for p in pcts]), atol=1e-9)


# ------------------------------------------------------------------- tied maps (no noise added)
@pytest.fixture(scope="module")
def tied(data):
    """Integrated gradients with a zero baseline: exactly 0 wherever the MNIST image is 0 (ties)."""
    model, x, y, _ = data
    a = attribute(model, x, y, "ig", n_steps=8)
    assert ((a == 0).flatten(1).sum(1) > 300).all()
    return model, x, y, a


def _as_order(ranks, shape):
    """A tie-free map whose descending order is ``ranks`` (B×N): what Quantus's argsort then follows."""
    return (ranks.shape[1] - ranks).float().view(shape)


def test_tied_maps_road_same_tie_order(tied):
    """explainreg breaks ties by its seeded random order; fed a map with that order, Quantus agrees exactly."""
    model, x, y, a = tied
    pcts = [10, 40, 70, 95]
    ranks = descending_ranks(a.sum(1).flatten(1).double(), seed=0)
    a_q = _as_order(ranks, a.shape).numpy()
    q = quantus.ROAD(percentages=pcts, noise=0.0, disable_warnings=True)(model, *_np(x, y), a_q, device="cpu",
                                                                          batch_size=N)
    ours = M.ROAD(percentages=pcts, noise=0.0, convention="quantus")(model, x, y, a)
    np.testing.assert_allclose(ours.curve.numpy(), np.array([q[p] for p in pcts]), atol=1e-9)
    # on the raw tied map Quantus's (arbitrary) tie order differs; the curves stay within 0.25 per point
    q_raw = quantus.ROAD(percentages=pcts, noise=0.0, disable_warnings=True)(model, *_np(x, y, a), device="cpu",
                                                                              batch_size=N)
    assert np.abs(ours.curve.numpy() - np.array([q_raw[p] for p in pcts])).max() <= 0.25


def test_tied_maps_pixel_flipping_same_tie_order(tied):
    model, x, y, a = tied
    ranks = descending_ranks(a.flatten(1).double(), seed=0)
    q = quantus.PixelFlipping(features_in_step=28, disable_warnings=True)(
        model, *_np(x, y), _as_order(ranks, a.shape).numpy(), device="cpu")
    ours = pixel_flipping_curve(model, x, y, a, features_in_step=28, convention="quantus")
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), atol=2e-4, rtol=1e-4)


def test_tied_maps_region_perturbation_same_tie_order(tied):
    model, x, y, a = tied
    # patch sums of the padded map (28 → 32: 2 rows/cols of zeros each side), 16 patches of 8×8
    sums = torch.nn.functional.pad(a, (2, 2, 2, 2)).reshape(N, 1, 4, 8, 4, 8).sum((1, 3, 5)).flatten(1)
    assert (sums == 0).any()  # tied (empty) patches exist
    ranks = descending_ranks(sums.double(), seed=0)                       # B×16
    real = torch.nn.functional.pad(torch.ones(1, 1, 28, 28), (2, 2, 2, 2)).reshape(4, 8, 4, 8).sum((1, 3))
    pid = ((torch.arange(28) + 2) // 8)[:, None] * 4 + ((torch.arange(28) + 2) // 8)[None, :]
    a_q = ((16 - ranks).double() / real.flatten()[None])[:, pid.flatten()].float().view(N, 1, 28, 28)
    q = quantus.RegionPerturbation(patch_size=8, regions_evaluation=10, disable_warnings=True)(
        model, *_np(x, y, a_q), device="cpu")
    ours = region_perturbation_curve(model, x, y, a, patch_size=8, regions_evaluation=10, convention="quantus")
    np.testing.assert_allclose(ours.numpy(), np.asarray(q), atol=2e-4, rtol=1e-4)


def test_effective_complexity(data):
    """EffectiveComplexity = |{k : |a_k| > eps}| per image; convention="quantus" normalises by the batch's
    max |a| first (Quantus 0.6's default normalise=True), the default counts the raw |a|."""
    _, x, _, a = data
    xn, an = _np(x, a)
    for eps in (1e-5, 0.05):
        q = quantus.EffectiveComplexity(eps=eps, disable_warnings=True)(None, xn, None, an.copy())
        ours = M.EffectiveComplexity(eps=eps, convention="quantus")(None, x, None, a)
        np.testing.assert_array_equal(ours.per_image.numpy(), np.asarray(q, dtype=np.float64))
        q_raw = quantus.EffectiveComplexity(eps=eps, normalise=False, disable_warnings=True)(None, xn, None, an.copy())
        np.testing.assert_array_equal(M.functional.effective_complexity(a, eps=eps, reduction="none").numpy(),
                                      np.asarray(q_raw, dtype=np.float64))
    assert 0 < ours.value < a[0].numel() and not ours.higher_is_better  # not trivially all or nothing
