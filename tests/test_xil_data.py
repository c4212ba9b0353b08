"""Decoy-FMNIST, DecoyMNIST's patch and reward masks, and counterexamples, on the real IDX files."""
from __future__ import annotations

import pytest
import torch

from explainreg.data import decoy_mnist, load_dataset
from explainreg.data.counterexamples import counterexamples, randomize_masked
from explainreg.data.shortcuts import decoy_corner_mask, decoy_fmnist


def test_decoy_fmnist_follows_the_decoymnist_recipe():
    train = decoy_fmnist("train", limit=200, mask="patch", reward_mask=True)
    test = decoy_fmnist("test", limit=200, mask="patch")
    raw = load_dataset("fashion-mnist", "test", limit=200)
    assert train.name == "decoyfmnist" and train.x.shape == (200, 1, 28, 28)
    for data, grey in ((train, 255 - 25 * train.y), (test, 25 * test.y)):
        patch = data.extras["mask"]
        assert (patch.flatten(1).sum(1) == 25).all()
        assert (patch & ~decoy_corner_mask()[None, None]).sum() == 0  # inside a corner
        values = (data.x + 1) / 2 * 255
        expected = grey.float()[:, None, None, None].expand_as(values)
        torch.testing.assert_close(values[patch], expected[patch], atol=1e-3, rtol=0)
    # outside the patch the test images are the Fashion-MNIST images
    outside = ~test.extras["mask"]
    torch.testing.assert_close(((test.x + 1) / 2)[outside], raw.x[outside], atol=1e-6, rtol=0)
    reward = train.extras["reward_mask"]
    source = load_dataset("fashion-mnist", "train")
    from explainreg.data.shortcuts import _split_index
    index = _split_index(source.y, "train", 0.1, 0, 200)
    assert torch.equal(reward, source.x[index] * 255 > 1)
    assert load_dataset("decoy-fmnist", "test", limit=10).source.startswith("Decoy-FMNIST test")


def test_decoymnist_patch_mask_is_where_the_patch_was_written():
    corners = decoy_mnist("train", limit=300)
    patch = decoy_mnist("train", limit=300, mask="patch")
    assert torch.equal(corners.x, patch.x)
    m = patch.extras["mask"]
    assert (m.flatten(1).sum(1) == 25).all() and (m & ~corners.extras["mask"]).sum() == 0
    grey = (255 - 25 * patch.y).float()[:, None, None, None].expand_as(patch.x)
    torch.testing.assert_close(((patch.x + 1) / 2 * 255)[m], grey[m], atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="mask must be 'corners'"):
        decoy_mnist("train", limit=3, mask="edge")


def test_counterexamples_randomise_exactly_the_masked_pixels():
    data = decoy_mnist("train", limit=60, mask="patch")
    mask = data.extras["mask"].clone()
    mask[::3] = False  # a third of the images unannotated
    data.extras["mask"] = mask
    out = counterexamples(data, n_copies=2, seed=5)
    annotated = mask.flatten(1).any(1).nonzero().flatten()
    n, n_a = len(data), len(annotated)
    assert len(out) == n + 2 * n_a
    assert torch.equal(out.x[:n], data.x) and torch.equal(out.y[:n], data.y)  # originals untouched
    assert not out.extras["counterexample"][:n].any() and out.extras["counterexample"][n:].all()
    for j in range(2):
        rows = slice(n + j * n_a, n + (j + 1) * n_a)
        copies, orig, m = out.x[rows], data.x[annotated], mask[annotated]
        assert torch.equal(out.y[rows], data.y[annotated])
        assert torch.equal(copies[~m], orig[~m])  # outside the mask: bit for bit
        assert (copies[m] != orig[m]).float().mean() > 0.99  # inside: new values
        assert float(copies[m].min()) >= -1 and float(copies[m].max()) <= 1  # the data range
    assert 0.1 < float(out.x[n:][out.extras["mask"][n:]].std()) < 0.7  # uniform on [−1, 1]: std ≈ 0.577
    assert torch.equal(counterexamples(data, n_copies=2, seed=5).x, out.x)
    assert not torch.equal(counterexamples(data, n_copies=2, seed=6).x, out.x)


def test_counterexamples_errors():
    data = decoy_mnist("train", limit=5, with_mask=False)
    with pytest.raises(ValueError, match="no extras\\['mask'\\]"):
        counterexamples(data)
    with pytest.raises(ValueError, match="n_copies"):
        counterexamples(decoy_mnist("train", limit=5), n_copies=-1)
    x = torch.zeros(2, 1, 3, 3)
    m = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    assert torch.equal(randomize_masked(x, m, 0, 1, torch.Generator().manual_seed(0)), x)
