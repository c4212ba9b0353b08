"""explainreg.metrics against plain per-image computations (the seed's loops), sanity checks that
cannot pass by accident, and bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explainreg import metrics as M
from explainreg.metrics._core import nonzero_percentile
from explainreg.metrics.functional.complexities import complexity_scores
from explainreg.metrics.functional.perturbation import faithfulness_scores, masked_accuracy_rows, morf_rows
from explainreg.metrics.functional.imputation import road_rows, solve_imputation
from explainreg.metrics.functional.retraining import remove_top
from explainreg.metrics.roar import roar_curve
from explainreg.metrics.functional.robustness import gaussian_noise_rows, max_sensitivity_scores, square_block_images
from explainreg.attribution import attribute

N = 48


@pytest.fixture(scope="module")
def data(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:N], mnist_test.y[:N]
    return trained_cnn3b, x, y, attribute(trained_cnn3b, x, y)


def _probs(model, x):
    with torch.no_grad():
        return model(x).softmax(1)


# ------------------------------------------------------------------------------- per-image references
def test_nonzero_percentile_matches_numpy():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(6, 50, generator=g) * (torch.rand(6, 50, generator=g) > 0.3)
    v[5] = 0.0
    q = nonzero_percentile(v, M.SEED_PERCENTILES)
    for b in range(5):
        nz = v[b][v[b] != 0].double().numpy()
        np.testing.assert_allclose(q[b].numpy(), np.percentile(nz, M.SEED_PERCENTILES), rtol=1e-12, atol=1e-12)
    assert torch.isnan(q[5]).all()


def test_morf_matches_seed_loop(data):
    model, x, y, a = data
    d = morf_rows(model, x, y, a)
    for i in range(4):  # the seed's procedure, one image at a time
        xi, ai = x[i:i + 1], a[i:i + 1].numpy()
        p0 = _probs(model, xi)[0]
        c = int(p0.argmax())
        for s, p in enumerate(M.SEED_PERCENTILES):
            q = np.percentile(ai[ai != 0], p)
            xm = xi.clone()
            xm[torch.from_numpy(ai > q)] = 0.0
            ref = float(_probs(model, xm)[0, c] / p0.max())
            assert d[i, s].item() == pytest.approx(ref, rel=1e-5, abs=1e-6)
    result = M.MoRF()(model, x, y, a)
    curve = 1 - d.double().mean(0)  # percentiles descend, so the fraction removed ascends
    ref_auc = np.trapezoid(curve.numpy(), 1 - np.array(M.SEED_PERCENTILES) / 100)
    assert result.value == pytest.approx(ref_auc, rel=1e-9)
    assert result.higher_is_better and result.curve.shape == (20,)


def test_faithfulness_matches_seed_loop(data):
    model, x, y, a = data
    scores = faithfulness_scores(model, x, y, a)
    for i in range(4):
        xi, ai = x[i:i + 1], a[i:i + 1].numpy()
        p0 = float(_probs(model, xi)[0, y[i]])
        s_list, d_list = [], []
        for p in M.SEED_PERCENTILES:
            keep = ai > np.percentile(ai[ai != 0], p)
            xm = xi.clone()
            xm[torch.from_numpy(keep)] = 0
            s_list.append(ai[keep].sum())
            d_list.append(p0 - float(_probs(model, xm)[0, y[i]]))
        assert scores[i].item() == pytest.approx(np.corrcoef(s_list, d_list)[0, 1], abs=1e-5)
    r = M.Faithfulness()(model, x, y, a)
    assert r.value == pytest.approx(float(np.nanmean(scores.numpy())))


def test_masked_accuracy_matches_sgt_loop(data):
    model, x, y, a = data
    rows = masked_accuracy_rows(model, x, y, a, convention="seed")
    for i in range(3):
        for s, d in enumerate(M.functional.perturbation.SGT_DROPS):
            k = max(1, int(784 * d / 100))
            idx = a[i].abs().mean(0).flatten().topk(k).indices
            xm = x[i].clone().flatten()
            xm[idx] = x[i, 0, 0, 0]
            pred = int(model(xm.view(1, 1, 28, 28)).argmax())
            assert rows[i, s].item() == float(pred == int(y[i]))
    r = M.MaskedAccuracy()(model, x, y, a)
    assert r.curve[0] == pytest.approx(float((model(x).argmax(1) == y).double().mean()))
    assert not r.higher_is_better


def test_road_matches_per_image_quantus_imputation(data):
    from quantus.functions.perturb_func import noisy_linear_imputation as q_nli

    model, x, y, a = data
    a = a + 1e-7 * torch.rand(a.shape, generator=torch.Generator().manual_seed(1))  # no ties
    rows = road_rows(model, x[:6], y[:6], a[:6], percentages=(10, 50, 90), noise=0.0)
    for i in range(6):
        order = np.argsort(-a[i].numpy().ravel(), kind="stable")
        for s, p in enumerate((10, 50, 90)):
            xi = q_nli(x[i].numpy().astype(np.float64), order[: int(784 * p / 100)], noise=0.0)
            pred = int(model(torch.from_numpy(xi).float()[None]).argmax())
            assert rows[i, s].item() == float(pred == int(y[i]))


def test_imputation_is_neighbour_mean_and_keeps_known_pixels(mnist_test):
    x = mnist_test.x[:8, 0]
    removed = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.4
    out = solve_imputation(x, removed, tol=1e-7)
    assert torch.equal(out[~removed], x[~removed])
    from explainreg.metrics.functional.imputation import neighbour_sum

    weight = neighbour_sum(torch.ones_like(out))
    mean = neighbour_sum(out) / weight
    torch.testing.assert_close(out[removed], mean[removed], atol=1e-4, rtol=0)


def test_gaussian_noise_and_blocks(data):
    model, x, y, _ = data
    clean = float((model(x).argmax(1) == y).double().mean())
    g = M.GaussianNoise()(model, x, y)
    assert g.curve[0] == pytest.approx(clean) and g.steps.tolist() == [0, 0.1, 0.5, 1.0, 1.5]
    assert g.curve[-1] < g.curve[0] and 0 <= g.value <= 1.5
    shifted = M.GaussianNoise(convention="seed")(model, x, y)
    assert shifted.curve[0] == pytest.approx(clean) and shifted.value < g.value  # the seed's +1 hurts
    imgs = square_block_images(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(imgs[:, 0], x)
    for s, smax in enumerate((6, 8, 10, 12), start=1):
        changed = imgs[:, s] != x
        for i in range(N):
            rr, cc = changed[i, 0].nonzero(as_tuple=True)
            if len(rr):
                assert rr.max() - rr.min() < 2 * smax and cc.max() - cc.min() < 2 * smax
        vals = imgs[:, s][changed]
        assert ((vals >= 0.5) & (vals <= 1.0)).all()
    b = M.SquareBlocks()(model, x, y)
    assert b.curve[0] == pytest.approx(clean) and 0 <= b.value <= 12


def test_max_sensitivity_matches_loop(data):
    model, x, y, a = data
    noise = (torch.rand((5,) + tuple(x[:4].shape), generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.2
    got = max_sensitivity_scores(model, x[:4], y[:4], a[:4], noise=noise)
    for i in range(4):
        ref = max(float((a[i] - attribute(model, x[i:i + 1] + noise[r, i:i + 1], y[i:i + 1])[0]).norm() / a[i].norm())
                  for r in range(5))
        assert got[i].item() == pytest.approx(ref, rel=1e-4)


# ------------------------------------------------------------------------------------------ sanity
def test_morf_saliency_beats_random(data):
    model, x, y, a = data
    rand = attribute(model, x, y, "random", seed=0)
    assert M.MoRF()(model, x, y, a).value > M.MoRF()(model, x, y, rand).value + 0.05
    assert M.LeRF()(model, x, y, a).value < M.LeRF()(model, x, y, rand).value


def test_complexity_and_sparseness_extremes():
    one_hot = torch.zeros(3, 1, 28, 28)
    one_hot[:, 0, 5, 7] = 2.0
    uniform = torch.full((3, 1, 28, 28), 0.3)
    assert M.Complexity()(None, None, None, one_hot).value == pytest.approx(0.0, abs=1e-12)
    assert M.Complexity()(None, None, None, uniform).value == pytest.approx(math.log(784))
    assert M.Complexity(convention="seed")(None, None, None, uniform).value == pytest.approx(-math.log(1 / 784 + 0.01))
    assert M.Sparseness()(None, None, None, one_hot).value == pytest.approx(783 / 784)
    assert M.Sparseness()(None, None, None, uniform).value == pytest.approx(0.0, abs=1e-12)
    # averaged over ALL images, NaN-safe for an all-zero map
    mixed = torch.cat([one_hot[:1], uniform[:1], torch.zeros(1, 1, 28, 28)])
    r = M.Complexity()(None, None, None, mixed)
    assert r.value == pytest.approx(math.log(784) / 2) and r.n_nan == 1 and r.n_images == 3


def test_calling_accumulates_and_returns_the_batch_value(data):
    """torchmetrics' contract: each call adds its batch and returns that batch's value; two calls then
    ``compute()`` equal one ``update`` over both batches, and both equal the functional form."""
    from explainreg.metrics import functional as MF

    model, x, y, a = data
    cut = 20
    cases = [(M.MoRF(), lambda xs, ys, as_, ix: MF.morf(model, xs, ys, as_)),
             (M.Faithfulness(), lambda xs, ys, as_, ix: MF.faithfulness(model, xs, ys, as_)),
             (M.Complexity(), lambda xs, ys, as_, ix: MF.complexity(as_)),
             (M.MaskedAccuracy(), lambda xs, ys, as_, ix: MF.masked_accuracy(model, xs, ys, as_)),
             (M.GaussianNoise(seed=3), lambda xs, ys, as_, ix: MF.gaussian_noise(model, xs, ys, seed=3, index=ix))]
    for metric, functional in cases:
        first = metric(model, x[:cut], y[:cut], a[:cut])
        second = metric(model, x[cut:], y[cut:], a[cut:])
        # float32 model outputs: batches of different sizes may take different oneDNN kernels (2e-9 relative)
        assert first.value == pytest.approx(float(functional(x[:cut], y[:cut], a[:cut], None)), rel=1e-6, abs=1e-12)
        assert second.value == pytest.approx(float(functional(x[cut:], y[cut:], a[cut:], torch.arange(cut, N))),
                                             rel=1e-6, abs=1e-12)
        assert first.n_images == cut and second.n_images == N - cut
        both = metric.compute()
        once = type(metric)(**metric.settings()).update(model, x, y, a).compute()
        assert both.n_images == N and both.value == pytest.approx(once.value, rel=1e-6, abs=1e-12)
        assert both.value == pytest.approx(float(functional(x, y, a, None)), rel=1e-6, abs=1e-12)
        metric.reset()
        assert metric(model, x[cut:], y[cut:], a[cut:]).value == pytest.approx(
            float(functional(x[cut:], y[cut:], a[cut:], None)), rel=1e-6, abs=1e-12)   # after reset: index from 0
    gauss = M.GaussianNoise(seed=3)
    with pytest.raises(ValueError):
        gauss(model, x[:cut], y[:3])                       # a failed call leaves the state as it was
    assert gauss._rows == [] and gauss._offset == 0
    assert type(M.MoRF) is type and M.build_metric("road", order="lerf").order == "lerf"   # no metaclass


def test_results_frame(data):
    model, x, y, a = data
    table = M.results_frame({"morf": M.MoRF()(model, x, y, a), "complexity": M.Complexity()(None, None, None, a)}, method="saliency")
    assert {"metric", "kind", "step", "value", "method", "higher_is_better"} <= set(table.columns)
    assert (table.query("kind == 'summary'").shape[0]) == 2


def test_roar_tiny(data, mnist_train_small):
    model, x, y, _ = data
    train = mnist_train_small.take(600)
    r = roar_curve(model, train, _ds(x, y), fractions=(0.5, 0.9), epochs=1, batch_size=50)
    assert r.curve.shape == (3,) and r.steps.tolist() == [0.0, 0.5, 0.9] and not r.higher_is_better
    assert r.curve[0] == pytest.approx(float((model(x).argmax(1) == y).double().mean()))
    assert 0 <= r.value <= 0.9
    masked = remove_top(x, attribute(model, x, y), 0.5)
    assert ((masked == 0) | (masked == x)).all() and (masked != x).any()


def _ds(x, y):
    from explainreg.data import ArrayDataset

    return ArrayDataset(x, y)


# -------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs(data):
    model, x, y, a = data
    with pytest.raises(ValueError, match="attributions must have the shape of x"):
        M.MoRF()(model, x, y, a[:, :, :10])
    nan = a.clone()
    nan[2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite .* images \[2\]"):
        M.Faithfulness()(model, x, y, nan)
    with pytest.raises(ValueError, match="unknown metric 'morff'.*morf"):
        M.build_metric("morff")
    with pytest.raises(ValueError, match="percentiles must lie in"):
        M.MoRF(percentiles=(120,))
    with pytest.raises(ValueError, match="convention must be one of"):
        M.Sparseness(convention="seed")  # Complexity has a "seed" convention now (the old compat=True)
    with pytest.raises(RuntimeError, match="before compute"):
        M.MoRF().compute()
    with pytest.raises(ValueError, match="needs attributions"):
        M.MoRF().update(model, x, y)
    # all-zero attributions: nothing is removed (documented), curves stay at 1, correlations NaN-counted
    zero = torch.zeros_like(a)
    assert M.MoRF()(model, x, y, zero).value == pytest.approx(0.0, abs=1e-6)
    f = M.Faithfulness()(model, x, y, zero)
    assert math.isnan(f.value) and f.n_nan == N


# ----------------------------------------------------------------------- the one convention switch
@pytest.mark.parametrize("cls", [M.Complexity, M.GaussianNoise, M.MaskedAccuracy])
def test_convention_seed_is_one_setting(data, cls):
    """``convention="seed"`` is the one spelling of the seed's form: recorded in the settings, another
    computation than the default on real MNIST images, and no other keyword selects it."""
    model, x, y, a = data
    new = cls(convention="seed")
    assert new.settings()["convention"] == "seed" and "compat" not in new.settings()
    r_new = new(model, x, y, a)
    plain = cls()(model, x, y, a)
    if cls is not M.MaskedAccuracy:  # masked accuracy's k ≥ 1 only shows at d = 0 (checked in its own test)
        assert plain.value != r_new.value  # the seed's convention is another computation
    with pytest.raises(TypeError, match=r"unexpected setting\(s\) 'compat'"):
        cls(compat=True)


def test_seed_convention_of_the_functions(data):
    model, x, y, a = data
    seeded = masked_accuracy_rows(model, x, y, a, convention="seed")
    assert (seeded[:, 0] <= masked_accuracy_rows(model, x, y, a)[:, 0]).all()  # one pixel masked at d = 0
    assert not torch.equal(gaussian_noise_rows(model, x, y, convention="seed"), gaussian_noise_rows(model, x, y))
    old = complexity_scores(a, convention="seed")
    p = a.flatten(1).abs().double() / a.flatten(1).abs().double().sum(1, keepdim=True)
    torch.testing.assert_close(old, -(p * torch.log(p + 0.01)).sum(1))   # the seed's formula
    from explainreg.metrics import functional as MF
    assert MF.complexity(a, convention="seed").item() == M.Complexity(convention="seed")(None, x, y, a).value


def test_convention_checked_against_what_the_metric_supports():
    from explainreg._validation import InvalidParameterError

    for cls, supported in ((M.Complexity, "'explainreg', 'seed', 'quantus'"), (M.GaussianNoise, "'explainreg', 'seed'"),
                           (M.ROAD, "'explainreg', 'quantus'"), (M.MaxSensitivity, "'explainreg', 'quantus'"),
                           (M.EffectiveComplexity, "'explainreg', 'quantus'")):
        with pytest.raises(InvalidParameterError, match=f"convention must be one of {supported} for {cls.__name__}; "
                                                        "got 'nonsense'"):
            cls(convention="nonsense")
        assert cls.conventions == tuple(s.strip("'") for s in supported.split(", "))
    with pytest.raises(ValueError, match="GaussianNoise has no 'quantus' convention"):
        M.GaussianNoise(convention="quantus")
    with pytest.raises(ValueError, match="PixelFlipping has no 'seed' convention"):
        M.PixelFlipping(convention="seed")
    # the command line's --convention seed offers convention="seed": only the metrics with that convention take it
    offered = {"seed": 1, "convention": "seed"}
    assert M.accepted_settings("complexity", offered) == {"convention": "seed"}
    assert M.accepted_settings("masked_accuracy", offered) == offered
    assert M.accepted_settings("road", offered) == {"seed": 1}
