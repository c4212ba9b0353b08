"""ColorMNIST, DecoyMNIST, the pixel blob sampler and user-mask data sets, generated from real MNIST."""
from __future__ import annotations

import pytest
import torch

from explainreg.data.datasets import stratified_subset
from explainreg.data import (
    PixelBlobSampler,
    color_mnist,
    color_mnist_blob_sampler,
    color_mnist_stats,
    color_palette,
    decoy_corner_mask,
    decoy_mnist,
    load_dataset,
    masked_dataset,
)

# the CDEP code, RGB (0–1) per digit
PAPER_PALETTE = [(1, 0, 0), (.945, .525, 0), (.790, .889, 0), (.278, .834, 0), (0, .779, .173), (0, .723, .563),
                 (0, .445, .668), (0, .068, .613), (.248, 0, .557), (.502, 0, .502)]


@pytest.fixture(scope="module")
def mnist_train():
    return load_dataset("mnist", "train")


def seed_split(n: int = 60_000):
    """The seed's ``torch.manual_seed(0); random_split(..., [54000, 6000])``."""
    train, val = torch.utils.data.random_split(range(n), [54_000, 6_000], generator=torch.Generator().manual_seed(0))
    return torch.tensor(list(train.indices)), torch.tensor(list(val.indices))


def test_palette_matches_the_paper():
    torch.testing.assert_close(color_palette(), torch.tensor(PAPER_PALETTE), atol=2e-3, rtol=0)


@pytest.fixture(scope="module")
def mnist_test_full():
    return load_dataset("mnist", "test")


def test_color_mnist_colours_and_split(mnist_train, mnist_test_full):
    train_idx, val_idx = seed_split()
    train = color_mnist("train", normalize=False, limit=50)
    val = color_mnist("val", normalize=False, limit=50)
    test = color_mnist("test", normalize=False, limit=50)
    assert train.x.shape == (50, 3, 28, 28) and train.name == "colormnist"
    palette = torch.tensor(PAPER_PALETTE)
    for data, gray, index, flip in ((train, mnist_train, train_idx, False), (val, mnist_train, val_idx, True),
                                    (test, mnist_test_full, torch.arange(10_000), True)):
        index = index[stratified_subset(gray.y[index], 50)]  # limit=50: the split's stratified subset
        for i in range(0, 50, 7):
            j = int(index[i])
            label = int(gray.y[j])
            assert int(data.y[i]) == label
            colour = palette[9 - label if flip else label]
            torch.testing.assert_close(data.x[i], gray.x[j] * colour[:, None, None], atol=2e-3, rtol=0)
    assert len(color_mnist("val", normalize=False)) == 6000


def test_color_mnist_normalisation_uses_training_statistics(mnist_train):
    train_idx, _ = seed_split()
    palette = color_palette().double()
    total = torch.zeros(3, dtype=torch.float64)
    square = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(train_idx), 6000):  # plainly: build the colour images chunk by chunk
        idx = train_idx[start:start + 6000]
        images = mnist_train.x[idx].double() * palette[mnist_train.y[idx]][:, :, None, None]
        total += images.sum((0, 2, 3))
        square += images.pow(2).sum((0, 2, 3))
    n = len(train_idx) * 28 * 28
    mean = total / n
    std = (square / n - mean ** 2).sqrt()
    got_mean, got_std = color_mnist_stats()
    torch.testing.assert_close(got_mean.double(), mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got_std.double(), std, rtol=1e-5, atol=1e-7)
    raw = color_mnist("test", normalize=False, limit=20)
    normed = color_mnist("test", limit=20)
    torch.testing.assert_close(normed.x, (raw.x - got_mean[:, None, None]) / got_std[:, None, None])


def test_decoy_mnist_patches(mnist_train, mnist_test_full):
    train_idx, _ = seed_split()
    for split, gray, index, value in (("train", mnist_train, train_idx, lambda y: 255 - 25 * y),
                                      ("test", mnist_test_full, torch.arange(10_000), lambda y: 25 * y)):
        data = decoy_mnist(split, limit=200)
        index = index[stratified_subset(gray.y[index], 200)]  # limit=200: the split's stratified subset
        assert data.x.shape == (200, 1, 28, 28) and data.x.min() >= -1 and data.x.max() <= 1
        for i in range(200):
            j = int(index[i])
            y = int(gray.y[j])
            expected = gray.x[j, 0] * 2 - 1
            diff = (data.x[i, 0] - expected).abs() > 1e-6
            patch_value = value(y) / 255 * 2 - 1
            corners = [(r, c) for r in (0, 23) for c in (0, 23)
                       if torch.allclose(data.x[i, 0, r:r + 5, c:c + 5], torch.full((5, 5), patch_value), atol=1e-5)]
            assert len(corners) >= 1, (split, i)
            r, c = corners[0]
            outside = diff.clone()
            outside[r:r + 5, c:c + 5] = False
            assert not outside.any(), "only the patch differs from MNIST scaled to [-1, 1]"
        assert data.extras["mask"].shape == (200, 1, 28, 28)
        assert torch.equal(data.extras["mask"][0, 0], decoy_corner_mask())
    assert int(decoy_corner_mask().sum()) == 100


def test_decoy_mnist_is_deterministic_with_a_seed():
    a = decoy_mnist("train", limit=300, seed=3)
    b = decoy_mnist("train", limit=300, seed=3)
    c = decoy_mnist("train", limit=300, seed=4)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert len(decoy_mnist("val")) == 6000 and len(decoy_mnist("test", limit=10)) == 10


def test_blob_sampler_follows_pixel_frequency(mnist_train):
    train_idx, _ = seed_split()
    freq = (mnist_train.x[train_idx, 0] > 0).float().mean(0)
    sampler = color_mnist_blob_sampler(n_blobs=8)
    torch.testing.assert_close(sampler.probs.float().view(28, 28), freq / freq.sum())
    blobs = sampler(torch.Generator().manual_seed(0))
    assert blobs.shape == (8, 28, 28) and torch.equal(blobs.sum((1, 2)), torch.ones(8))
    again = sampler(torch.Generator().manual_seed(0))
    assert torch.equal(blobs, again)
    draws = torch.cat([sampler(torch.Generator().manual_seed(s)) for s in range(250)]).sum(0)  # 2,000 pixels
    assert float(draws[freq == 0].sum()) == 0
    empirical = draws.flatten() / draws.sum()
    assert float((empirical - sampler.probs.float()).abs().sum()) < 0.45  # total variation, 2,000 draws
    with pytest.raises(ValueError, match="frequency"):
        PixelBlobSampler(torch.zeros(28, 28))


def test_masked_dataset():
    x = torch.rand(6, 3, 8, 8)
    y = torch.arange(6)
    data = masked_dataset(x, y, torch.rand(6, 8, 8) > 0.5)
    assert data.extras["mask"].shape == (6, 1, 8, 8) and data.extras["mask"].dtype == torch.bool
    shared = masked_dataset(x, y, torch.ones(8, 8))
    assert shared.extras["mask"].shape == (6, 1, 8, 8)
    soft = masked_dataset(x, y, torch.full((6, 3, 8, 8), 0.5))
    assert soft.extras["mask"].dtype == torch.float32
    _, _, extras = data[2]
    assert extras["mask"].shape == (1, 8, 8)
    with pytest.raises(ValueError, match="does not match"):
        masked_dataset(x, y, torch.ones(5, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        masked_dataset(x, y, torch.full((8, 8), 3.0))
    with pytest.raises(ValueError, match="label"):
        masked_dataset(x, y[:4], torch.ones(8, 8))
