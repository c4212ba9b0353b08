"""AUP / AUR against ground-truth masks vs a plain per-sample loop; masked accuracy on series."""
from __future__ import annotations

import math

import pytest
import torch

from explainreg.data import saliency_benchmark
from explainreg.metrics import AUP, AUR, MaskedAccuracy, aup_aur, ground_truth_curves, ranking_precision_recall
from explainreg.metrics.functional.ground_truth import FRACTIONS
from explainreg.models import build_model
from explainreg.gradients import input_gradient


@pytest.fixture(scope="module")
def batch():
    d = saliency_benchmark("SmallMiddle", n=12, seed=2)
    torch.manual_seed(0)
    model = build_model("tcn", in_channels=50, num_classes=2).eval()
    a = input_gradient(model, d.x, d.y, create_graph=False).detach()
    return model, d.x, d.y, a, d.extras["ground_truth"]


def _loop_curves(a, gt, fractions, convention):
    """Plain per-sample computation of the precision and recall curves."""
    precision, recall = [], []
    for b in range(a.shape[0]):
        s = a[b].abs().flatten().double().tolist()
        m = gt[b].flatten().tolist()
        d = len(s)
        order = sorted(range(d), key=lambda i: (-s[i], i))
        if convention == "benchmark":
            lo, hi = min(s), max(s)
            w = [(v - lo) / (hi - lo) for v in s]
        else:
            w = [1.0] * d
        total = sum(w)
        rows_p, rows_r = [], []
        for f in fractions:
            if convention == "benchmark":
                k, mass = 0, 0.0
                while mass < f * total - 1e-12:
                    mass += w[order[k]]
                    k += 1
                k = max(k, 1)
            else:
                k = max(1, math.floor(f * d + 1e-9))
            top = order[:k]
            hit = sum(w[i] for i in top if m[i])
            rows_p.append(hit / sum(w[i] for i in top))
            rows_r.append(hit / sum(w[i] for i in range(d) if m[i]))
        precision.append(rows_p)
        recall.append(rows_r)
    return torch.tensor(precision, dtype=torch.float64), torch.tensor(recall, dtype=torch.float64)


@pytest.mark.parametrize("convention", ["explainreg", "benchmark"])
def test_curves_and_areas_match_a_plain_loop(batch, convention):
    _, _, _, a, gt = batch
    p, r = ground_truth_curves(a, gt, FRACTIONS, convention=convention)
    lp, lr = _loop_curves(a, gt, FRACTIONS, convention)
    assert torch.allclose(p, lp, atol=1e-9) and torch.allclose(r, lr, atol=1e-9)
    scores = aup_aur(a, gt, convention=convention)
    x = torch.tensor(FRACTIONS, dtype=torch.float64)
    assert scores["aup"] == pytest.approx(float(torch.trapezoid(lp.mean(0), x)), abs=1e-9)
    assert scores["aur"] == pytest.approx(float(torch.trapezoid(lr.mean(0), x)), abs=1e-9)
    assert scores["diff_aup"] == pytest.approx(scores["aup"] - scores["aup_random"])


def test_perfect_and_random_rankings(batch):
    _, _, _, a, gt = batch
    perfect = gt.double() + 1e-3 * a.abs() / a.abs().max()          # the box first, then anything
    p, r = ground_truth_curves(perfect, gt, (0.05, 0.5))
    assert torch.allclose(p[:, 0], torch.ones(12, dtype=torch.float64))   # 125 of the 196 box entries
    assert torch.allclose(r[:, 1], torch.ones(12, dtype=torch.float64))   # 1250 top entries hold the box
    scores = aup_aur(a, gt, generator=torch.Generator().manual_seed(1))
    expected = 14 * 14 / 2500                                        # a random ranking's precision
    assert scores["aup_random"] / 0.8 == pytest.approx(expected, abs=0.01)


def test_classes_accumulate_and_match_functional(batch):
    _, _, _, a, gt = batch
    metric = AUP()
    metric.update(None, None, None, a[:5], ground_truth=gt[:5]).update(None, None, None, a[5:], ground_truth=gt[5:])
    result = metric.compute()
    assert result.value == pytest.approx(aup_aur(a, gt)["aup"], abs=1e-12)
    assert result.extra["difference"] == pytest.approx(result.value - result.extra["random"])
    recall = AUR(convention="benchmark")(None, None, None, a, ground_truth=gt)
    assert recall.value == pytest.approx(aup_aur(a, gt, convention="benchmark")["aur"], abs=1e-12)
    with pytest.raises(ValueError, match="aup needs attributions and ground_truth"):
        AUP().update(None, None, None, a)


def test_padding_is_never_counted(batch):
    _, _, _, a, gt = batch
    pad = torch.ones(12, 50, dtype=torch.bool)
    pad[:, 40:] = False
    boosted = a.clone()
    boosted[..., 40:] = 1e3                                           # huge saliency at padding
    p, _ = ground_truth_curves(boosted, gt, (0.1,), padding_mask=pad)
    p_cut, _ = ground_truth_curves(a[..., :40], gt[..., :40], (0.1,))
    assert torch.allclose(p, p_cut)


def test_ranking_precision_recall_shared_function():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.5]])
    mask = torch.tensor([[True, False, False, True]])
    p, r = ranking_precision_recall(scores, mask, torch.tensor([1, 2, 3]))
    assert p.tolist() == [[1.0, 0.5, 2 / 3]] and r.tolist() == [[0.5, 0.5, 1.0]]   # tie 2 before 3
    with pytest.raises(ValueError, match=r"ks must be S or B×S sizes in \[0, 4\]"):
        ranking_precision_recall(scores, mask, torch.tensor([5]))


def test_mixing_layouts_is_refused():
    d = saliency_benchmark("RareTime", n=4, time_steps=50, features=45)
    a = torch.rand(d.x.shape)
    with pytest.raises(ValueError, match=r"must have the shape of the attributions .* mask.transpose\(1, 2\)"):
        aup_aur(a, d.extras["ground_truth"].transpose(1, 2))


def test_masked_accuracy_on_series_matches_a_loop(batch):
    model, x, y, a, _ = batch
    drops = (0, 20, 50, 80)
    result = MaskedAccuracy(drops=drops, background=0.0)(model, x, y, a)
    want = []
    with torch.no_grad():
        for b in range(x.shape[0]):
            order = sorted(range(2500), key=lambda i: (-float(a[b].abs().flatten()[i]), i))
            row = []
            for d in drops:
                flat = x[b].flatten().clone()
                flat[order[: int(2500 * d / 100)]] = 0.0
                row.append(float(model(flat.view(1, 50, 50)).argmax(1) == y[b]))
            want.append(row)
    assert torch.allclose(result.curve, torch.tensor(want, dtype=torch.float64).mean(0))
