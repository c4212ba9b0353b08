"""The Ismail et al. 2020 benchmark generator: boxes, masks, the label's shift, processes, errors."""
from __future__ import annotations

import pytest
import torch

from explainreg.data import BOX_LAYOUTS, saliency_benchmark

FIXED = {"Middle": (30, 30, 10, 10), "SmallMiddle": (14, 14, 18, 18), "RareTime": (6, 40, 22, 5),
         "RareFeature": (40, 6, 5, 22)}


@pytest.mark.parametrize("layout", sorted(BOX_LAYOUTS))
def test_mask_is_the_box(layout):
    d = saliency_benchmark(layout, n=64, seed=3)
    box, gt = d.extras["box"], d.extras["ground_truth"]
    spec = BOX_LAYOUTS[layout]
    assert d.x.shape == gt.shape == (64, 50, 50) and d.layout == "BxCxT"
    assert (box[:, 1] - box[:, 0] == spec.time_steps).all() and (box[:, 3] - box[:, 2] == spec.features).all()
    for b in range(64):                             # plain per-sample rebuild of the mask (features × time)
        t0, t1, f0, f1 = box[b].tolist()
        want = torch.zeros(50, 50, dtype=torch.bool)
        want[f0:f1, t0:t1] = True
        assert torch.equal(gt[b], want)
    if layout in FIXED:
        assert (box == torch.tensor([FIXED[layout][2], FIXED[layout][2] + FIXED[layout][0],
                                     FIXED[layout][3], FIXED[layout][3] + FIXED[layout][1]])).all()
    elif spec.positional_axis is None:              # moving: starts drawn in {0, …, 50 − size − 1}
        assert box[:, 0].unique().numel() > 5 and int(box[:, 0].max()) <= 50 - spec.time_steps - 1
        assert box[:, 2].unique().numel() > 5 and int(box[:, 2].max()) <= 50 - spec.features - 1
    else:                                           # positional: the label sits in the frozen axis' start
        col = 2 if spec.positional_axis == "feature" else 0
        assert torch.equal(box[:, col], torch.where(d.y == 1, torch.tensor(1), torch.tensor(29)))


def test_shift_by_label_sign_inside_box_only():
    d = saliency_benchmark("Middle", "box", n=400, seed=0)
    gt, y = d.extras["ground_truth"], d.y
    sign = (2 * y - 1).float()[:, None, None]
    inside = (d.x * sign)[gt.expand_as(d.x)]        # shifted by +1 once the sign is undone
    outside = d.x[~gt]
    assert abs(float(inside.mean()) - 1.0) < 0.02 and abs(float(outside.mean())) < 0.02
    assert abs(float((d.x - sign * gt).std()) - 1.0) < 0.02
    assert 0.4 < float(y.float().mean()) < 0.6
    pos = saliency_benchmark("PostionalFeature", "box", n=400, seed=0)   # positional sets: +1 for both labels
    assert abs(float(pos.x[pos.extras["ground_truth"]].mean()) - 1.0) < 0.03


def test_deterministic_with_seed():
    a = saliency_benchmark("Moving_Middle", "autoregressive", n=20, seed=5)
    b = saliency_benchmark("Moving_Middle", "autoregressive", n=20, seed=5)
    c = saliency_benchmark("Moving_Middle", "autoregressive", n=20, seed=6)
    assert torch.equal(a.x, b.x) and torch.equal(a.extras["box"], b.extras["box"]) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def _lag1(x: torch.Tensor) -> float:
    """Mean lag-1 autocorrelation along time of B×C×T series."""
    x = x - x.mean(2, keepdim=True)
    return float(((x[..., 1:] * x[..., :-1]).sum(2) / (x * x).sum(2)).mean())


def test_processes():
    box = saliency_benchmark("SmallMiddle", "box", n=100, seed=1)
    ar = saliency_benchmark("SmallMiddle", "autoregressive", n=100, seed=1)
    harmonic = saliency_benchmark("SmallMiddle", "harmonic", n=100, seed=1)
    car = saliency_benchmark("SmallMiddle", "car", n=100, seed=1)
    assert abs(_lag1(box.x)) < 0.05                  # white noise
    assert _lag1(ar.x) > 0.6                         # AR(0.9) + N(0, 0.3²) noise
    # the harmonic signal is shared by all features of a sample: features differ by the noise only
    diff = harmonic.x[:, 0] - harmonic.x[:, 49]      # both outside the 14×14 box
    assert abs(float(diff.std()) - 0.3 * 2 ** 0.5) < 0.02
    outside = car.x[~car.extras["ground_truth"]]     # CAR with σ = 0.01: essentially the 0.3 noise
    assert abs(float(outside.std()) - 0.3) < 0.02


def test_bad_inputs():
    with pytest.raises(ValueError, match="layout 'Middle' needs time_steps ≥ 40"):
        saliency_benchmark("Middle", n=4, time_steps=30)
    with pytest.raises(ValueError, match="layout 'Moving_RareFeature' needs time_steps ≥ 41"):
        saliency_benchmark("Moving_RareFeature", n=4, time_steps=40)
    with pytest.raises(ValueError, match="unknown box layout 'Centre'; layouts: Middle, SmallMiddle"):
        saliency_benchmark("Centre")
    with pytest.raises(ValueError, match="process must be one of box, harmonic"):
        saliency_benchmark("Middle", "arma")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        saliency_benchmark("Middle", n=0)
    assert saliency_benchmark("positionaltime", n=2).name == "PostionalTime_box"
