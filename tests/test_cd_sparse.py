"""The receptive-field sparse CD pass equals the dense engine (values and weight gradients, float32
and float64) on the CDEP nets with real ColorMNIST blobs and DecoyMNIST corners, and on a
ResNet-shaped net; where a unit sees no input at all it hands over to the dense rules."""
from __future__ import annotations

import pytest
import torch

from explainreg.data import color_mnist, color_mnist_blob_sampler, decoy_mnist, load_dataset
from explainreg.decomposition import decompose, sparse
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net

from _deep_nets import ResNet18Shaped, normalised_images, randomise_batchnorm

TOL = {torch.float32: dict(rtol=1e-4, atol=2e-6), torch.float64: dict(rtol=1e-9, atol=1e-12)}
#: weight gradients, relative to their largest entry: float32 rounding passes through the bias
#: split's 1 / (|r| + |s|), which the two passes sum in different orders
GRAD_TOL = {torch.float32: 1e-4, torch.float64: 1e-9}


def _both(model, x, mask, blobs):
    """(values, weight gradients) of a CDEP-like loss on the sparse and on the dense pass."""
    out = []
    params = [p for p in model.parameters() if p.requires_grad]
    for use in (True, False):
        rel, irrel = decompose(model, x, mask, blobs=blobs, sparse=use)
        loss = torch.sigmoid(rel - irrel).sum() + (rel * irrel).sum()
        out.append((rel.detach(), irrel.detach(), torch.autograd.grad(loss, params)))
    return out


def _assert_equal(model, x, mask, blobs, dtype):
    """float64: sparse = dense to 1e-9. float32: the sparse pass is as close to the float64 result
    as the dense float32 pass is (within 2× its error, or the float32 tolerance): on deep nets the
    float32 rounding that the bias splits amplify exceeds any fixed tolerance."""
    model, x = model.to(dtype), x.to(dtype)
    (rs, is_, gs), (rd, id_, gd) = _both(model, x, mask, blobs)
    if dtype == torch.float32:
        ref = [t.float() for t in _flat(_both(model.double(), x.double(), mask, blobs)[1])]
        model.float()
        for got, dense, exact in zip(_flat((rs, is_, gs)), _flat((rd, id_, gd)), ref):
            scale = max(1.0, float(exact.abs().max()))
            limit = max(2 * float((dense - exact).abs().max()), GRAD_TOL[dtype] * scale)
            assert float((got - exact).abs().max()) <= limit
        return
    scale = dict(TOL[dtype], atol=TOL[dtype]["atol"] * max(1.0, float(rd.abs().max())))
    torch.testing.assert_close(rs, rd, **scale)
    torch.testing.assert_close(is_, id_, **scale)
    for a, b in zip(gs, gd):
        torch.testing.assert_close(a, b, rtol=GRAD_TOL[dtype], atol=GRAD_TOL[dtype] * max(1.0, float(b.abs().max())))


def _flat(result) -> list[torch.Tensor]:
    rel, irrel, grads = result
    return [rel, irrel, *grads]


@pytest.fixture
def spy(monkeypatch):
    """Counts the convolutions and residual sums the sparse rules computed on boxes (so a test knows
    the sparse pass did the work, rather than handing everything to the dense rules)."""
    calls = {"conv": 0, "residual": 0}
    conv = sparse.SparsePass._conv
    residual = sparse._residual_sum

    def counted_conv(self, *args):
        out = conv(self, *args)
        calls["conv"] += out is not None
        return out

    def counted_residual(*args):
        out = residual(*args)
        calls["residual"] += out is not None
        return out

    monkeypatch.setattr(sparse.SparsePass, "_conv", counted_conv)
    monkeypatch.setattr(sparse, "_residual_sum", counted_residual)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_pass_equals_dense_on_colormnist_single_pixel_blobs(dtype, spy):
    torch.manual_seed(0)
    data = color_mnist("train", limit=12)
    blobs = color_mnist_blob_sampler(n_blobs=8)(torch.Generator().manual_seed(3), data.x)
    _assert_equal(cdep_colormnist_net(), data.x, blobs, True, dtype)
    assert spy["conv"] >= 2  # both convolutions ran on the blobs' boxes only


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_pass_equals_dense_on_decoymnist_corners(dtype, spy):
    torch.manual_seed(0)
    data = decoy_mnist("train", limit=12)
    corners = data.extras["mask"]
    left = corners.clone()
    left[..., 14:] = False  # a second blob: the two left corners
    _assert_equal(cdep_decoymnist_net(), data.x, [corners, left], False, dtype)
    assert spy["conv"] >= 1  # the first convolution on the corners' boxes (the second reads the whole map)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_pass_equals_dense_on_a_resnet_shaped_net(dtype, spy):
    torch.manual_seed(0)
    model = randomise_batchnorm(ResNet18Shaped(3, width=8), torch.Generator().manual_seed(0)).eval()
    x = normalised_images(load_dataset("mnist", "test", limit=8), 3, 64, 4)
    blobs = torch.zeros(3, 64, 64)
    blobs[0, 4, 7] = blobs[1, 30, 33] = blobs[2, 63, 0] = 1
    blobs[2, :3, -3:] = 0.5  # a blob of two parts
    _assert_equal(model, x, blobs, True, dtype)
    assert spy["residual"] >= 1 and spy["conv"] >= 3


def test_units_that_see_no_input_hand_over_to_the_dense_rules():
    """Unnormalised MNIST has a zero background: first-layer units whose window is all 0 split their
    bias by the relevant share ρ, so rel ≠ 0 outside the blob's reach; the result is still the dense one."""
    torch.manual_seed(0)
    x = load_dataset("mnist", "test", limit=6).x
    blobs = torch.zeros(4, 28, 28)
    blobs[0, 14, 14] = blobs[1, 10, 12] = blobs[2, 0, 0] = blobs[3, 20, 9] = 1
    _assert_equal(cdep_decoymnist_net(), x, blobs, True, torch.float64)


def test_input_boxes_follow_the_parts_of_each_blob():
    m = torch.zeros(2, 1, 1, 28, 28)
    m[0, 0, 0, :5, :5] = m[0, 0, 0, -5:, -5:] = 1
    m[1, 0, 0, 10, 11] = 1
    starts, size = sparse.input_boxes(m, (28, 28))
    assert size == (5, 5) and starts.shape == (2, 2, 2)
    assert sorted(map(tuple, starts[0].tolist())) == [(0, 0), (23, 23)]
    half = torch.zeros(1, 1, 1, 28, 28)
    half[..., :14] = 1
    assert sparse.input_boxes(half, (28, 28)) is None  # most of the map: the dense pass runs


def test_cdep_penalty_runs_the_sparse_pass_and_matches_the_dense_share(spy):
    from explainreg.penalties.annotation import cdep, cdep_share

    torch.manual_seed(0)
    data = color_mnist("train", limit=8)
    blobs = color_mnist_blob_sampler(n_blobs=4)(torch.Generator().manual_seed(1), data.x)
    model = cdep_colormnist_net().double()
    x = data.x.double()
    value = cdep(model, x, blobs, blobs=True)
    assert spy["conv"] >= 2
    rel, irrel = decompose(model, x, blobs, blobs=True, sparse=False)
    torch.testing.assert_close(value, cdep_share(rel, irrel), rtol=1e-10, atol=1e-12)
