"""Localisation metrics against Quantus 0.6 on real DecoyMNIST images and masks; XIL's WR against an
independent computation on fixed maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainreg.attribution import attribute
from explainreg.data import decoy_mnist
from explainreg.metrics import localisation as L

N = 32


@pytest.fixture(scope="module")
def data(trained_cnn3b):
    ds = decoy_mnist("train", limit=N)
    x, y = ds.x, ds.y
    corners = ds.extras["mask"]
    patch = corners & (x > -1)  # the one corner that holds the decoy patch (train greys are ≥ 30)
    masks = {"patch": patch, "object": x > 0}
    a = attribute(trained_cnn3b, (x + 1) / 2, y, "saliency", abs=False)
    a = a + 1e-6 * float(a.abs().max()) * torch.rand(a.shape, generator=torch.Generator().manual_seed(0))
    return x, y, a, masks


def quantus_scores(metric, x, y, a, s):
    return np.asarray(metric(model=None, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy().copy(),
                             s_batch=s.numpy().astype(float), channel_first=True), dtype=float)


CASES = [
    ("PointingGame", L.pointing_game, {}, {}),
    ("AttributionLocalisation", L.attribution_localisation, {}, {}),
    ("AttributionLocalisation", L.attribution_localisation, {"abs": False, "positive_attributions": True},
     {"abs": False, "positive_only": True}),
    ("TopKIntersection", L.top_k_intersection, {"k": 40}, {"k": 40}),
    ("TopKIntersection", L.top_k_intersection, {"k": 40, "concept_influence": True},
     {"k": 40, "concept_influence": True}),
    ("RelevanceRankAccuracy", L.relevance_rank_accuracy, {}, {}),
    ("RelevanceMassAccuracy", L.relevance_mass_accuracy, {}, {}),
    ("RelevanceMassAccuracy", L.relevance_mass_accuracy, {"abs": True}, {"abs": True}),
    ("AUC", L.localisation_auc, {}, {}),
]


@pytest.mark.parametrize("mask_name", ["patch", "object"])
@pytest.mark.parametrize("quantus_name,ours,q_kwargs,kwargs", CASES)
def test_matches_quantus(data, mask_name, quantus_name, ours, q_kwargs, kwargs):
    quantus = pytest.importorskip("quantus")
    x, y, a, masks = data
    s = masks[mask_name]
    metric = getattr(quantus, quantus_name)(disable_warnings=True, **q_kwargs)
    expected = quantus_scores(metric, x, y, a, s)
    got = ours(a, s, **kwargs).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # Quantus sums in float32
    assert np.isfinite(got).all() and len(set(np.round(got, 6))) > 1  # real variation, no NaNs


def test_classes_accumulate_and_empty_masks(data):
    x, y, a, masks = data
    s = masks["object"].clone()
    s[0] = False  # an empty mask: NaN, skipped and counted
    for cls in (L.PointingGame, L.AttributionLocalisation, L.RelevanceRankAccuracy, L.LocalisationAUC):
        metric = cls()
        metric.update(None, x[:10], y[:10], a[:10], s[:10]).update(None, x[10:], y[10:], a[10:], s[10:])
        result = metric.compute()
        per = cls.function(a, s, **metric.options)
        assert torch.isnan(per[0]) and result.n_nan == 1 and result.higher_is_better
        assert result.value == pytest.approx(float(per[1:].mean()))
    with pytest.raises(ValueError, match="does not match"):
        L.pointing_game(a, s[:, :, :10])
    with pytest.raises(ValueError, match="ground-truth mask"):
        L.PointingGame().update(None, x, y, a)


def test_auc_counts_ties_half():
    a = torch.tensor([[[[0.0, 1.0, 1.0, 2.0]]]])
    s = torch.tensor([[[[False, True, False, True]]]])
    # positives {1, 2}, negatives {0, 1}: pairs (1>0) 1, (1=1) ½, (2>0) 1, (2>1) 1 → 3.5 / 4
    assert float(L.localisation_auc(a, s)) == pytest.approx(0.875)


def independent_wr(maps: np.ndarray, masks: np.ndarray) -> float:
    """WR written out as XIL's loop: per image normalise, skip all-zero, threshold, binarise, score."""
    normed, kept = [], []
    for m, s in zip(maps, masks):
        v = np.clip(m.astype(np.float64), 0, None)
        v = v - v.min()
        v = v / (v.max() + 1e-6)
        if v.sum() == 0:
            continue
        normed.append(v)
        kept.append(s.astype(np.float64))
    threshold = np.mean([v.sum() / v.size for v in normed])
    scores = []
    for v, s in zip(normed, kept):
        b = v.copy()
        b[v > threshold] = 1.0
        b[v < threshold] = 0.0
        scores.append((s * b).sum() / s.sum())
    return 100 * float(np.mean(scores))


def test_wrong_reason_against_independent_computation(data):
    x, _, a, masks = data
    rng = np.random.default_rng(3)
    fixed = rng.normal(size=(12, 1, 8, 8))
    fixed[2] = -1.0  # all negative → all zero after the positive part: left out
    fixed[5, 0, :2, :2] += 4.0  # strong in the mask's corner
    mask = np.zeros((12, 1, 8, 8), dtype=bool)
    mask[:, :, :3, :3] = True
    mask[::2, :, 5:, 5:] = True
    value = float(L.wrong_reason(torch.tensor(fixed), torch.tensor(mask)))
    assert value == pytest.approx(independent_wr(fixed, mask), rel=1e-9)
    # accumulated over batches = one pass over the whole set (the threshold is global)
    metric = L.WrongReason()
    for part in (slice(0, 5), slice(5, 12)):
        metric.update(None, None, None, torch.tensor(fixed[part]), torch.tensor(mask[part]))
    result = metric.compute()
    assert result.value == pytest.approx(value, rel=1e-9) and result.n_nan == 1 and not result.higher_is_better
    assert result.extra["all_zero_maps"] == 1
    # real maps on real masks
    real = float(L.wrong_reason(a, masks["patch"]))
    assert real == pytest.approx(independent_wr(a.numpy(), masks["patch"].numpy()), rel=1e-9)


def test_wrong_reason_maps_shapes_and_gradcam_positive(trained_cnn3b, data):
    x = (data[0][:6] + 1) / 2
    cam = L.wrong_reason_maps(trained_cnn3b, x, "gradcam")
    grad = L.wrong_reason_maps(trained_cnn3b, x, "input_gradient")
    assert cam.shape == grad.shape == (6, 1, 28, 28) and float(cam.min()) >= 0 and not cam.requires_grad
    with pytest.raises(ValueError, match="input_gradient"):
        L.wrong_reason_maps(trained_cnn3b, x, "ig")
