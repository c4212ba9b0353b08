"""``order="seed"`` against CDEP's ``cd()`` rules written out as its code computes them, on real
DecoyMNIST / ColorMNIST batches whose first pooling layer holds exact ties."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.data import PixelBlobSampler, color_mnist, decoy_mnist, pixel_nonzero_frequency
from explainreg.data.shortcuts import decoy_corner_mask
from explainreg.decomposition import decompose
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net
from explainreg.penalties import CDEP
from explainreg.penalties.annotation import cdep

STABILIZING_CONSTANT = 10e-20  # the seed's ε


# ---------------------------------------------------------------------------------------------
# the seed's rules (its cd.py), operation for operation, in plain torch


def seed_conv_linear(rel, irrel, module):
    bias = module(torch.zeros(irrel.size()))
    r, s = module(rel) - bias, module(irrel) - bias
    prop_r, prop_s = torch.abs(r), torch.abs(s)
    prop_sum = prop_r + prop_s + STABILIZING_CONSTANT
    return r + torch.mul(torch.div(prop_r, prop_sum), bias), s + torch.mul(torch.div(prop_s, prop_sum), bias)


def seed_pooling(rel, irrel):
    """propagate_pooling: the indices of the 2×2 max-pool of rel + irrel; an unpooled 0/1 mask picks
    the entry in each window, an average pool × 4 reads it."""
    both, both_ind = F.max_pool2d(rel + irrel, 2, return_indices=True)
    mask_both = F.max_unpool2d(torch.ones_like(both), both_ind, 2, 2, output_size=rel.size())
    return F.avg_pool2d(mask_both * rel, 2) * 4, F.avg_pool2d(mask_both * irrel, 2) * 4


def seed_relu(rel, irrel):
    return F.relu(rel), F.relu(rel + irrel) - F.relu(rel)


def seed_cd(blob, x, net):
    """cd(blob, im, model, model_type="mnist"): conv → pool → ReLU twice, view(-1, 800), fc → ReLU → fc."""
    rel, irrel = blob * x, (1 - blob) * x
    rel, irrel = seed_relu(*seed_pooling(*seed_conv_linear(rel, irrel, net[0])))
    rel, irrel = seed_relu(*seed_pooling(*seed_conv_linear(rel, irrel, net[3])))
    rel, irrel = rel.view(-1, 800), irrel.view(-1, 800)
    rel, irrel = seed_relu(*seed_conv_linear(rel, irrel, net[7]))
    return seed_conv_linear(rel, irrel, net[9])


def seed_cdep(net, x, blob):
    """score_funcs.cdep: softmax over (rel, irrel) of every logit, the relevant share's mean."""
    rel, irrel = seed_cd(blob, x, net)
    return F.softmax(torch.stack((rel.view(-1), irrel.view(-1)), dim=1), dim=1)[:, 0].mean()


# ---------------------------------------------------------------------------------------------


def _trained(net, x, y, steps=30):
    """A few Adam steps on real images, so that logits reach the scale of a trained net."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for i in range(steps):
        rows = slice((i * 64) % (len(x) - 64), (i * 64) % (len(x) - 64) + 64)
        loss = F.cross_entropy(net(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def _first_pool_ties(net, x):
    """Share of the first pool's windows whose pre-ReLU entries tie exactly (the seed pools before ReLU)."""
    with torch.no_grad():
        out = net[0](x)
    windows = F.unfold(out.reshape(-1, 1, *out.shape[-2:]), 2, stride=2)
    return float(((windows == windows.amax(1, keepdim=True)).sum(1) > 1).float().mean())


def _gradients(net, value):
    return torch.autograd.grad(value, [p for p in net.parameters()])


def _assert_gradients_close(net, ours, seed, rtol=2e-5):
    for p, g, g_ref in zip(net.parameters(), _gradients(net, ours), _gradients(net, seed)):
        scale = float(g_ref.abs().max())
        assert scale > 0
        assert float((g - g_ref).abs().max()) <= rtol * scale, tuple(p.shape)


@pytest.fixture(scope="module")
def decoy_net():
    train = decoy_mnist("train", limit=2000)
    torch.manual_seed(0)
    return _trained(cdep_decoymnist_net(), train.x, train.y)


@pytest.fixture(scope="module")
def color_net():
    train = color_mnist("train", limit=2000)
    torch.manual_seed(0)
    return _trained(cdep_colormnist_net(), train.x, train.y)


def test_seed_order_equals_the_seeds_cd_on_decoymnist_with_ties(decoy_net):
    x = decoy_mnist("test", limit=64).x
    blob = decoy_corner_mask().float()  # the seed's four 5×5 corners, one blob
    assert _first_pool_ties(decoy_net, x) > 0.2  # constant background: exact ties in many windows
    with torch.no_grad():
        rel_ref, irrel_ref = seed_cd(blob, x, decoy_net)
        rel, irrel = decompose(decoy_net, x, blob, order="seed")
        logits = decoy_net(x)
    assert float(logits.abs().max()) > 5
    assert float((rel - rel_ref).abs().max()) <= 2e-5
    assert float((irrel - irrel_ref).abs().max()) <= 2e-5
    # the penalty (CDEP's DecoyMNIST loss term) and its weight gradients
    ours = CDEP(order="seed")(decoy_net, x, torch.zeros(len(x), dtype=torch.long), mask=blob)
    seed = seed_cdep(decoy_net, x, blob)
    assert abs(float(ours.detach()) - float(seed.detach())) <= 2e-5
    _assert_gradients_close(decoy_net, ours, seed)


def test_picking_by_the_total_is_not_the_seeds_cd(decoy_net):
    """The check above can fail: the total's argmax (the kernel's first index among exact ties) and
    the shared-tie rule of the forward order both move rel far beyond the tolerance on this batch."""
    x = decoy_mnist("test", limit=64).x
    blob = decoy_corner_mask().float()
    with torch.no_grad():
        rel_ref, _ = seed_cd(blob, x, decoy_net)
        out = decoy_net[0](x)
        mixed = seed_conv_linear(blob * x, (1 - blob) * x, decoy_net[0])
        by_total = F.max_pool2d(out, 2, return_indices=True)[1]
        by_sum = F.max_pool2d(mixed[0] + mixed[1], 2, return_indices=True)[1]
        rel_forward, _ = decompose(decoy_net, x, blob)
    assert float((by_total != by_sum).float().mean()) > 0.01  # rounding picks another tied entry
    assert float((rel_forward - rel_ref).abs().max()) > 1e-3


def test_seed_order_equals_the_seeds_cd_on_colormnist_pixel_blobs(color_net):
    x = color_mnist("test", limit=32).x
    frequency = pixel_nonzero_frequency(color_mnist("train", limit=2000, normalize=False).x)
    blobs = PixelBlobSampler(frequency, n_blobs=8)(torch.Generator().manual_seed(0), x)
    assert _first_pool_ties(color_net, x) > 0.2
    with torch.no_grad():
        for blob in blobs:
            rel_ref, irrel_ref = seed_cd(blob, x, color_net)
            rel, irrel = decompose(color_net, x, blob, order="seed")
            assert float((rel - rel_ref).abs().max()) <= 2e-5
            assert float((irrel - irrel_ref).abs().max()) <= 2e-5
    # the seed's ColorMNIST loss term: Σ over the 8 blobs of cdep(model, data, blob), one blob per
    # pass as its loop (in one pass of 8·B rows the layers sum in another order: weight gradients
    # then differ by rounding, ~5e-6 of their norm)
    ours = cdep(color_net, x, blobs, blobs=True, order="seed", blob_chunk=1)
    seed = sum(seed_cdep(color_net, x, blob) for blob in blobs)
    assert abs(float(ours.detach()) - float(seed.detach())) <= 2e-5
    _assert_gradients_close(color_net, ours, seed)


def test_max_pool_pick_is_named():
    from explainreg.decomposition.rules import Decomposed, max_pool

    t = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="pick must be 'total'"):
        max_pool(Decomposed(t, t, t), lambda v: F.max_pool2d(v, 2, return_indices=True), pick="rounded")
