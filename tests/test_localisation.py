"""Localisation metrics against Quantus 0.6 on real DecoyMNIST images and masks; XIL's WR against an
independent computation on fixed maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explainreg.attribution import attribute
from explainreg.data import decoy_mnist
from explainreg.metrics import localisation as L
from explainreg.metrics.functional import localisation as LF

N = 32


@pytest.fixture(scope="module")
def data(trained_cnn3b):
    ds = decoy_mnist("train", limit=N)
    x, y = ds.x, ds.y
    corners = ds.extras["mask"]
    patch = corners & (x > -1)  # the one corner that holds the decoy patch (train greys are ≥ 30)
    masks = {"patch": patch, "object": x > 0}
    a = attribute(trained_cnn3b, (x + 1) / 2, y, "gradient")
    a = a + 1e-6 * float(a.abs().max()) * torch.rand(a.shape, generator=torch.Generator().manual_seed(0))
    return x, y, a, masks


def quantus_scores(metric, x, y, a, s):
    return np.asarray(metric(model=None, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy().copy(),
                             s_batch=s.numpy().astype(float), channel_first=True), dtype=float)


CASES = [
    ("PointingGame", LF.pointing_game, {}, {}),
    ("AttributionLocalisation", LF.attribution_localisation, {}, {}),
    ("AttributionLocalisation", LF.attribution_localisation, {"abs": False, "positive_attributions": True},
     {"abs": False, "positive_only": True}),
    ("TopKIntersection", LF.top_k_intersection, {"k": 40}, {"k": 40}),
    ("TopKIntersection", LF.top_k_intersection, {"k": 40, "concept_influence": True},
     {"k": 40, "concept_influence": True}),
    ("RelevanceRankAccuracy", LF.relevance_rank_accuracy, {}, {}),
    ("RelevanceMassAccuracy", LF.relevance_mass_accuracy, {}, {}),
    ("RelevanceMassAccuracy", LF.relevance_mass_accuracy, {"abs": True}, {"abs": True}),
    ("AUC", LF.localisation_auc, {}, {}),
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
    assert np.isfinite(got).all()
    if (quantus_name, mask_name) == ("PointingGame", "patch"):  # a plain-MNIST model's maxima miss the decoy
        assert not got.any()
    else:
        assert len(set(np.round(got, 6))) > 1  # real variation


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
        LF.pointing_game(a, s[:, :, :10])
    with pytest.raises(ValueError, match="ground-truth mask"):
        L.PointingGame().update(None, x, y, a)


def test_auc_counts_ties_half():
    a = torch.tensor([[[[0.0, 1.0, 1.0, 2.0]]]])
    s = torch.tensor([[[[False, True, False, True]]]])
    # positives {1, 2}, negatives {0, 1}: pairs (1>0) 1, (1=1) ½, (2>0) 1, (2>1) 1 → 3.5 / 4
    assert float(LF.localisation_auc(a, s)) == pytest.approx(0.875)


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
    value = float(LF.wrong_reason(torch.tensor(fixed), torch.tensor(mask)))
    assert value == pytest.approx(independent_wr(fixed, mask), rel=1e-9)
    # accumulated over batches = one pass over the whole set (the threshold is global)
    metric = L.WrongReason()
    for part in (slice(0, 5), slice(5, 12)):
        metric.update(None, None, None, torch.tensor(fixed[part]), torch.tensor(mask[part]))
    result = metric.compute()
    assert result.value == pytest.approx(value, rel=1e-9) and result.n_nan == 1 and not result.higher_is_better
    assert result.extra["all_zero_maps"] == 1
    # real maps on real masks
    real = float(LF.wrong_reason(a, masks["patch"]))
    assert real == pytest.approx(independent_wr(a.numpy(), masks["patch"].numpy()), rel=1e-9)


def test_wrong_reason_maps_shapes_and_gradcam_positive(trained_cnn3b, data):
    x = (data[0][:6] + 1) / 2
    cam = LF.wrong_reason_maps(trained_cnn3b, x, "gradcam")
    grad = LF.wrong_reason_maps(trained_cnn3b, x, "input_gradient")
    assert cam.shape == grad.shape == (6, 1, 28, 28) and float(cam.min()) >= 0 and not cam.requires_grad
    with pytest.raises(ValueError, match="input_gradient"):
        LF.wrong_reason_maps(trained_cnn3b, x, "ig")


def test_top_k_beyond_the_map_is_refused_and_the_default_k_is_two_percent_of_it(trained_cnn3b, data):
    """On 28×28 maps k = 1000 would score every map by the mask's share alone (Quantus refuses it)."""
    x, y, _, masks = data
    s = masks["object"]
    maps = {m: attribute(trained_cnn3b, (x + 1) / 2, y, m) for m in ("integrated_gradients", "gradient_shap")}
    a = maps["integrated_gradients"]
    with pytest.raises(ValueError, match=r"k = 1000 is more than the 784 entries of each attribution map.*"
                                         r"pass k <= 784"):
        LF.top_k_intersection(a, s, k=1000)
    with pytest.raises(ValueError, match="k = 785 is more than the 784 entries"):
        L.TopKIntersection(k=785)(None, x, y, a, s)
    with pytest.raises(ValueError, match=r"k must be a positive whole number .* got 2.5"):
        L.TopKIntersection(k=2.5)
    assert LF.top_k_size(None, 784) == 16
    default = {m: L.TopKIntersection()(None, x, y, a_m, s) for m, a_m in maps.items()}
    for m, a_m in maps.items():
        assert torch.equal(default[m].per_image, LF.top_k_intersection(a_m, s, k=16))
    share = (s.flatten(1).sum(1) / 784).double()  # what k = D scores, whatever the map
    assert torch.allclose(LF.top_k_intersection(a, s, k=784), share)
    for result in default.values():  # the digit's pixels hold nearly all of the top 2 %
        assert result.value > 0.9 > float(share.mean()) + 0.5


def test_ranking_metrics_break_ties_in_the_removal_metrics_seeded_order(trained_cnn3b, data):
    """Top-k intersection and relevance rank accuracy rank tied entries in the seeded per-image order of
    the removal metrics (``descending_ranks``, keyed by seed and data-set index), not in raster order:
    on all-tied maps the top k are a random k (mean share ≈ |s|/D, where raster order takes the top
    rows: far less here), and a batch split with ``index`` gives each image the score it has in one batch."""
    from explainreg._random import descending_ranks

    x, y, _, masks = data
    s = masks["object"]
    ig = attribute(trained_cnn3b, (x + 1) / 2, y, "integrated_gradients")  # exactly 0 on the background
    flat, inside = ig.flatten(1).double(), s.flatten(1)
    assert int((flat == 0).sum(1).min()) > 400  # a tied map
    for seed in (0, 3):
        ranks = descending_ranks(flat, seed, torch.arange(N))
        expected = ((ranks < 100) & inside).sum(1).double() / 100
        assert torch.equal(LF.top_k_intersection(ig, s, k=100, seed=seed), expected)
        size = inside.sum(1, keepdim=True)
        expected_rank = ((ranks < size) & inside).sum(1).double() / size[:, 0]
        assert torch.equal(LF.relevance_rank_accuracy(ig, s, seed=seed), expected_rank)
    share = (inside.sum(1) / inside.shape[1]).double()
    tied = torch.zeros_like(ig)
    assert float(LF.top_k_intersection(tied, s, k=100).mean()) == pytest.approx(float(share.mean()), abs=0.03)
    assert float(LF.relevance_rank_accuracy(tied, s).mean()) == pytest.approx(float(share.mean()), abs=0.03)
    for cls, kwargs in ((L.TopKIntersection, {"k": 100}), (L.RelevanceRankAccuracy, {})):
        whole = cls(**kwargs)(None, x, y, ig, s).per_image
        metric = cls(**kwargs)
        for part in (torch.arange(10, N), torch.arange(0, 10)):  # out of order, with their positions
            metric.update(None, x[part], y[part], ig[part], s[part], index=part)
        split = metric.compute().per_image
        assert torch.equal(split, torch.cat([whole[10:], whole[:10]]))
        alone = cls(**kwargs)(None, x[7:8], y[7:8], ig[7:8], s[7:8], index=torch.tensor([7])).per_image
        assert torch.equal(alone, whole[7:8])
