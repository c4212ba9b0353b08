"""Value tests for the metrics and attributions against independent, plainly written computations
(per-image loops, hand-written stencils, dense solves), and the invariants that must hold: no value
depends on how the images are batched, ties are broken by a seeded random order per image, bad
options raise, degenerate maps are counted. Real MNIST test images; CNN3b trained briefly or with
random weights."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg import metrics as M
from explainreg.metrics._core import above_percentile_masks, activation_bytes, rows_per_forward
from explainreg.metrics.functional.imputation import solve_imputation
from explainreg.metrics.functional.retraining import remove_top
from explainreg.metrics.functional.robustness import gaussian_noise_rows, square_block_images, square_block_rows
from explainreg._random import descending_ranks, image_generator
from explainreg.attribution import attribute
from explainreg.models import cnn3b, cnn4b

N = 64


@pytest.fixture(scope="module")
def data(mnist_test, trained_cnn3b):
    x, y = mnist_test.x[:N], mnist_test.y[:N]
    ig = attribute(trained_cnn3b, x, y, "ig", n_steps=8)  # exactly 0 wherever x = 0: many ties
    return trained_cnn3b, x, y, ig


def _grad(model, x, t):
    x = x.clone().requires_grad_(True)
    model(x)[0, t].backward()
    return x.grad


def _batched(metric, model, x, y, a, size):
    metric.reset()
    for s in range(0, len(x), size):
        metric.update(model, x[s:s + size], y[s:s + size], None if a is None else a[s:s + size])
    return metric.compute()


# ------------------------------------------------------------------------- batching does not matter
STOCHASTIC = [
    ("faithfulness_correlation", lambda: M.FaithfulnessCorrelation(nr_runs=20, seed=3), True),
    ("max_sensitivity", lambda: M.MaxSensitivity(nr_samples=4, seed=3), True),
    ("road", lambda: M.ROAD(seed=3), True),
    ("road_lerf", lambda: M.ROAD(order="lerf", seed=3), True),
    ("blocks", lambda: M.SquareBlocks(seed=3), False),
    ("gaussian", lambda: M.GaussianNoise(seed=3), False),
    ("region_random", lambda: M.RegionPerturbation(order="random", regions_evaluation=8, seed=3), True),
    ("region_morf", lambda: M.RegionPerturbation(regions_evaluation=8, seed=3), True),
    ("pixel_flipping", lambda: M.PixelFlipping(features_in_step=56, seed=3), True),
    ("masked_accuracy", lambda: M.MaskedAccuracy(seed=3), True),
]


@pytest.mark.parametrize("name,build,needs_a", STOCHASTIC, ids=[s[0] for s in STOCHASTIC])
def test_stochastic_metric_independent_of_batching(data, name, build, needs_a):
    model, x, y, ig = data
    a = ig if needs_a else None
    one = build()
    one.max_batch = 100_000  # one forward for everything the budget allows
    whole = _batched(one, model, x, y, a, N)
    small = build()
    small.max_batch = 37  # odd chunks that split an image's copies across forwards
    in_16 = _batched(small, model, x, y, a, 16)
    assert in_16.value == pytest.approx(whole.value, rel=1e-6, abs=1e-9), name
    torch.testing.assert_close(in_16.per_image if in_16.per_image is not None else in_16.curve,
                               whole.per_image if whole.per_image is not None else whole.curve,
                               atol=1e-5, rtol=1e-5, equal_nan=True)
    # explicit positions: the same batches in reverse order, each with its index, give the same rows
    rev = build()
    for s in reversed(range(0, N, 16)):
        rev.update(model, x[s:s + 16], y[s:s + 16], None if a is None else a[s:s + 16], index=torch.arange(s, s + 16))
    rows = torch.cat(list(reversed(rev._rows)))
    torch.testing.assert_close(rows, whole.per_image.to(rows.dtype), atol=1e-5, rtol=1e-5, equal_nan=True)
    # and a different seed draws differently (the seed is used)
    other = build()
    other.seed = 4
    if name not in ("region_morf", "pixel_flipping", "masked_accuracy", "road", "road_lerf"):
        assert not torch.equal(_batched(other, model, x, y, a, N).per_image, whole.per_image)


@pytest.mark.parametrize("method", ["smoothgrad", "gradient_shap", "random"])
def test_stochastic_attributions_independent_of_chunking(data, method):
    model, x, y, _ = data
    x, y = x[:12], y[:12]
    whole = attribute(model, x, y, method, max_batch=256, seed=5)
    torch.testing.assert_close(attribute(model, x, y, method, max_batch=3, seed=5), whole, atol=1e-6, rtol=1e-5)
    second = attribute(model, x[6:], y[6:], method, seed=5, index=torch.arange(6, 12))
    torch.testing.assert_close(second, whole[6:], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(attribute(model, x, y, method, seed=6), whole)


# ------------------------------------------------------------------------------------- tie-breaks
def test_ties_broken_by_seeded_random_order_not_raster(data):
    _, x, _, ig = data
    score = ig.sum(1).flatten(1).double()
    ranks = descending_ranks(score, seed=0)
    for b in range(4):
        s, r = score[b], ranks[b]
        assert sorted(r.tolist()) == list(range(784))
        # untied order exact: a higher score always ranks first
        hi, lo = torch.meshgrid(torch.arange(784), torch.arange(784), indexing="ij")
        better = s[hi] > s[lo]
        assert (r[hi][better] < r[lo][better]).all()
        # the zero (tied) pixels are not taken in raster order
        zero = (s == 0).nonzero().flatten()
        assert len(zero) > 300
        tied_order = zero[r[zero].argsort()]
        assert not torch.equal(tied_order, zero.sort().values)
        first_half_rows = tied_order[: len(zero) // 2] // 28
        assert abs(first_half_rows.double().mean() - (zero // 28).double().mean()) < 3  # spread over rows
    # keyed by (seed, index): reproducible, and different images / seeds shuffle differently
    torch.testing.assert_close(descending_ranks(score[2:4], seed=0, index=[2, 3]), ranks[2:4])
    assert not torch.equal(descending_ranks(score, seed=1), ranks)


def test_percentile_rules_remove_tied_entries_together(data):
    _, x, _, ig = data
    masks = above_percentile_masks(ig, M.SEED_PERCENTILES)
    for b in range(4):
        values = ig[b].flatten()
        for s in range(len(M.SEED_PERCENTILES)):
            m = masks[b, s].flatten()
            for v in values[m].unique()[:5]:
                assert m[values == v].all()  # every entry tied with a removed one is removed


# -------------------------------------------------------------------------------- options / checks
def test_attribution_options_checked_per_method(data):
    model, x, y, _ = data
    with pytest.raises(ValueError, match=r"'convention' not accepted by method 'saliency'; it accepts no options"):
        attribute(model, x[:2], y[:2], "saliency", convention="quantus")
    with pytest.raises(ValueError, match=r"'n_steps' not accepted by method 'smoothgrad'.*stdevs, nt_samples"):
        attribute(model, x[:2], y[:2], "smoothgrad", n_steps=4)
    with pytest.raises(ValueError, match="convention must be one of"):
        M.MaxSensitivity(convention="nonsense")
    with pytest.raises(ValueError, match="'window' not accepted by method 'saliency'"):
        M.MaxSensitivity(window=3)
    with pytest.raises(ValueError, match="'stride' not accepted by method 'integrated_gradients'"):
        M.ROAR(None, method="ig", stride=2)
    assert M.MaxSensitivity(convention="quantus").settings()["convention"] == "quantus"
    with pytest.raises(ValueError, match="'abs' not accepted by method 'saliency'"):
        M.MaxSensitivity(abs=False)  # |gradient| by definition; the signed map is the method "gradient"
    with pytest.raises(ValueError, match="index must be a 1-D integer tensor"):
        M.GaussianNoise().update(model, x[:4], y[:4], index=torch.arange(3))


def test_degenerate_maps_counted_and_warned(data):
    model, x, y, ig = data
    a = ig[:8].clone()
    a[[1, 5]] = 0.0
    a[6] = 0.25  # constant, not zero
    for metric, n_deg, n_nan in ((M.MoRF(), 3, 0), (M.Faithfulness(), 3, 3), (M.ROAD(), 3, 0),
                                 (M.Complexity(), 2, 2), (M.Sparseness(), 2, 2)):
        with pytest.warns(M.DegenerateAttributionWarning, match=rf"{n_deg} of 8 attribution maps"):
            r = metric(model, x[:8], y[:8], a)
        assert r.n_degenerate == n_deg and r.n_nan == n_nan, metric.name
        assert r.to_dict()["n_degenerate"] == n_deg and (r.to_frame()["n_degenerate"] == n_deg).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.DegenerateAttributionWarning)
        assert M.MoRF()(model, x[:8], y[:8], ig[:8]).n_degenerate == 0


# ---------------------------------------------------------------------------------- chunk sizing
def test_chunks_sized_by_activation_memory(mnist_test):
    x = mnist_test.x[:1]
    small, big = cnn3b().eval(), cnn4b().eval()
    # hand count of CNN3b's activations per row (float32): input, conv/relu 8×28², pool 8×14², conv/relu
    # 16×14², pool 16×7², flatten 784, logits 10
    expected = 4 * (784 + 2 * 8 * 784 + 8 * 196 + 2 * 16 * 196 + 16 * 49 + 784 + 10)
    assert activation_bytes(small, x) == expected
    rows_small, rows_big = rows_per_forward(small, x), rows_per_forward(big, x)
    assert rows_small == M.ACTIVATION_BUDGET["cpu"] // expected and rows_big < rows_small / 10
    assert rows_per_forward(small, x, max_batch=7) == 7


# ------------------------------------------------------------------------------ attribution values
def test_input_x_gradient_matches_loop(data):
    model, x, y, _ = data
    a = attribute(model, x[:5], y[:5], "input_x_gradient")
    for i in range(5):
        torch.testing.assert_close(a[i], (x[i:i + 1] * _grad(model, x[i:i + 1], y[i]))[0])


def test_deeplift_on_linear_net_is_input_minus_baseline_times_weight(mnist_test):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    x, y = mnist_test.x[:6], mnist_test.y[:6]
    w = net[1].weight.detach()
    torch.testing.assert_close(attribute(net, x, y, "deeplift"), x * w[y].view(6, 1, 28, 28))
    base = mnist_test.x[100:101]
    torch.testing.assert_close(attribute(net, x, y, "deeplift", baselines=base),
                               (x - base) * w[y].view(6, 1, 28, 28), atol=1e-6, rtol=1e-5)


def test_occlusion_of_one_window(data):
    model, x, y, _ = data
    a = attribute(model, x[:3], y[:3], "occlusion", window=4, stride=4)
    with torch.no_grad():
        for i in range(3):
            z0 = model(x[i:i + 1])[0, y[i]]
            for r, c in ((0, 0), (12, 8), (24, 24)):
                occluded = x[i:i + 1].clone()
                occluded[..., r:r + 4, c:c + 4] = 0
                drop = z0 - model(occluded)[0, y[i]]
                torch.testing.assert_close(a[i, 0, r:r + 4, c:c + 4], drop.expand(4, 4), atol=1e-5, rtol=1e-5)


def test_gradcam_hand_computed(data):
    model, x, y, _ = data
    a = attribute(model, x[:4], y[:4], "gradcam")  # default layer: the last Conv2d (model[3])
    store = {}
    handle = model[3].register_forward_hook(lambda m, i, o: store.update(act=o))
    try:
        for i in range(4):
            out = model(x[i:i + 1])
            act = store["act"]
            (g,) = torch.autograd.grad(out[0, y[i]], act)
            weights = g.mean((2, 3), keepdim=True)                       # α_k
            cam = (weights * act).sum(1, keepdim=True)                   # Σ_k α_k A_k (no ReLU)
            up = F.interpolate(cam, size=(28, 28), mode="bilinear", align_corners=False)
            torch.testing.assert_close(a[i], up[0].detach(), atol=1e-5, rtol=1e-4)
    finally:
        handle.remove()


def test_smoothgrad_matches_seeded_loop(data):
    model, x, y, _ = data
    n, sd = 6, 0.2
    a = attribute(model, x[:4], y[:4], "smoothgrad", nt_samples=n, stdevs=sd, seed=2)
    for i in range(4):
        noise = torch.randn((n, 1, 28, 28), generator=image_generator(2, i, "smoothgrad")) * sd
        ref = torch.stack([_grad(model, x[i:i + 1] + noise[r:r + 1], y[i])[0].abs() for r in range(n)]).mean(0)
        torch.testing.assert_close(a[i], ref, atol=1e-6, rtol=1e-5)
    assert (a - attribute(model, x[:4], y[:4])).abs().max() > 0.05 * a.abs().max()  # the noise matters


def test_gradient_shap_matches_seeded_loop(data, mnist_test):
    model, x, y, _ = data
    n, sd = 5, 0.1
    bases = mnist_test.x[200:203]
    a = attribute(model, x[:3], y[:3], "gradient_shap", n_samples=n, stdevs=sd, baselines=bases, seed=1)
    for i in range(3):
        eps = torch.randn((n, 1, 28, 28), generator=image_generator(1, i, "gradient_shap_noise"))
        u = torch.rand((n, 2), generator=image_generator(1, i, "gradient_shap"))
        total = torch.zeros(1, 28, 28)
        for r in range(n):
            b = bases[min(int(u[r, 1] * 3), 2)]
            noisy = x[i] + sd * eps[r]
            point = b + u[r, 0] * (noisy - b)
            total += (noisy - b) * _grad(model, point[None], y[i])[0]
        torch.testing.assert_close(a[i], total / n, atol=1e-6, rtol=1e-5)


def test_gradient_shap_completeness_in_expectation(data):
    """E[Σ attributions] = z(x) − z(baseline) (α uniform, no noise): the IG identity, within MC error."""
    model, x, y, _ = data
    a = attribute(model, x[:4], y[:4], "gradient_shap", n_samples=400, stdevs=0.0)
    with torch.no_grad():
        gap = model(x[:4]).gather(1, y[:4, None]).squeeze(1) - model(torch.zeros_like(x[:4]))[0, y[:4]]
    torch.testing.assert_close(a.flatten(1).sum(1), gap, atol=0.1 * float(gap.abs().max()), rtol=0.1)


# ----------------------------------------------------------------------------------- metric values
@pytest.mark.parametrize("fraction", [0.2, 0.9])
def test_roar_removes_the_top_fraction(data, fraction):
    model, x, y, _ = data
    a = attribute(model, x[:6], y[:6])                  # saliency: no ties among the non-zero entries
    masked = remove_top(x[:6], a, fraction)
    for i in range(6):
        ai, xi = a[i].numpy(), x[i].numpy()
        nz = ai[ai != 0]
        remove = ai > np.percentile(nz, 100 * (1 - fraction))
        assert abs(remove.sum() - fraction * len(nz)) <= 1          # the top 100·f %, not 100·(1 − f) %
        np.testing.assert_array_equal(masked[i].numpy(), np.where(remove, 0.0, xi))  # others kept


def test_gaussian_noise_matches_seeded_loop(data):
    model, x, y, _ = data
    sig = (0.3, 0.8)
    rows = gaussian_noise_rows(model, x[:16], y[:16], sigmas=sig, seed=9)
    with torch.no_grad():
        for i in range(16):
            eps = torch.randn((3, 1, 28, 28), generator=image_generator(9, i, "gaussian"))
            for s, sd in enumerate((0.0,) + sig):
                pred = int(model(x[i:i + 1] + sd * eps[s:s + 1]).argmax())
                assert rows[i, s].item() == float(pred == int(y[i])), (i, s)
    r = M.GaussianNoise(sigmas=(0.5, 1.5))(model, x, y)
    assert r.curve[2] < r.curve[1] < r.curve[0]                   # σ matters


def test_square_blocks_match_seeded_loop(data):
    model, x, y, _ = data
    sizes = (6, 12)
    imgs = square_block_images(x[:8], sizes, uniforms=torch.stack(
        [torch.rand((3, 4), generator=image_generator(5, i, "blocks")) for i in range(8)]))
    rows = square_block_rows(model, x[:8], y[:8], sizes=sizes, seed=5)
    for i in range(8):
        u = torch.rand((3, 4), generator=image_generator(5, i, "blocks"))
        for s, smax in enumerate((0,) + sizes):
            ref = x[i].clone()
            if smax:
                r = 2 + min(int(u[s, 0] * (smax - 1)), smax - 2)       # U{2..smax}
                ci = r + int(u[s, 1] * (28 - 2 * r + 1))
                cj = r + int(u[s, 2] * (28 - 2 * r + 1))
                ref[:, ci - r:ci + r, cj - r:cj + r] = 0.5 + 0.5 * u[s, 3]
            torch.testing.assert_close(imgs[i, s], ref)
            with torch.no_grad():
                assert rows[i, s].item() == float(int(model(ref[None]).argmax()) == int(y[i]))


def test_road_stencil_matches_hand_written(mnist_test):
    from explainreg.metrics.functional.imputation import neighbour_sum

    u = mnist_test.x[:2, 0].double()
    got = neighbour_sum(u)
    ref = torch.zeros_like(u)
    for i in range(28):
        for j in range(28):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if (di or dj) and 0 <= i + di < 28 and 0 <= j + dj < 28:
                        w = 1 / 6 if abs(di) + abs(dj) == 1 else 1 / 12
                        ref[:, i, j] += w * u[:, i + di, j + dj]
    torch.testing.assert_close(got, ref)


def test_road_imputation_matches_dense_solve(mnist_test):
    x = mnist_test.x[3, 0].double()
    removed = torch.rand(28, 28, generator=torch.Generator().manual_seed(0)) < 0.3
    removed[8:20, 8:20] = True  # a big hole: removed pixels coupled to removed neighbours
    out = solve_imputation(x[None], removed[None], tol=1e-10)[0]
    unknown = removed.nonzero().tolist()
    pos = {tuple(p): k for k, p in enumerate(unknown)}
    A, b = np.zeros((len(unknown), len(unknown))), np.zeros(len(unknown))
    for k, (i, j) in enumerate(unknown):
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if (di or dj) and 0 <= i + di < 28 and 0 <= j + dj < 28:
                    w = 1 / 6 if abs(di) + abs(dj) == 1 else 1 / 12
                    A[k, k] += w
                    if (i + di, j + dj) in pos:
                        A[k, pos[(i + di, j + dj)]] -= w
                    else:
                        b[k] += w * float(x[i + di, j + dj])
    sol = np.linalg.solve(A, b)
    np.testing.assert_allclose(out[removed].numpy(), sol, atol=1e-6)
    assert torch.equal(out[~removed], x[~removed])


def test_split_disjoint_and_covering(mnist_test):
    ds = mnist_test.take(torch.arange(200))
    keys = {bytes(row.numpy().tobytes()): k for k, row in enumerate(ds.x)}
    assert len(keys) == 200  # rows identify the images
    for fraction, seed in ((0.2, 0), (0.5, 3)):
        train, val = ds.split(fraction, seed=seed)
        t = [keys[bytes(r.numpy().tobytes())] for r in train.x]
        v = [keys[bytes(r.numpy().tobytes())] for r in val.x]
        assert len(v) == round(200 * fraction) and len(t) + len(v) == 200
        assert not set(t) & set(v) and set(t) | set(v) == set(range(200))
        assert torch.equal(train.y, ds.y[t]) and torch.equal(val.y, ds.y[v])
