"""Data loading from the real IDX files, the bundled subset, and clear errors."""
from __future__ import annotations

import gzip

import pytest
import torch

from explainreg.data import ArrayDataset, DataNotFoundError, load_dataset, read_idx, write_idx


def test_mnist_matches_the_published_facts():
    train = load_dataset("mnist", "train")
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.float32
    assert train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert train.y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert float(train.x.mean()) == pytest.approx(0.1307, abs=1e-4)
    test = load_dataset("mnist", "test", limit=100)
    assert len(test) == 100


def test_fashion_and_normalisation():
    fashion = load_dataset("fashion-mnist", "test")
    assert fashion.y.bincount().tolist() == [1000] * 10
    norm = load_dataset("mnist", "train", normalize=True, limit=60000)
    assert float(norm.x.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(norm.x.std()) == pytest.approx(1.0, abs=1e-3)


def test_missing_root_says_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"looked in .*mnist.*EXPLAINREG_DATA"):
        load_dataset("mnist", "train", root=tmp_path, download=False)


def test_bundled_subset_is_real_and_announced(tmp_path):
    with pytest.warns(UserWarning, match="bundled"):
        data = load_dataset("mnist", "train", root=tmp_path, download=False, allow_bundled=True)
    full = load_dataset("mnist", "train")
    assert len(data) == 3000 and data.y.bincount().tolist() == [300] * 10
    # every bundled image is one of the real training images (the first 300 of each class)
    first_zero = torch.nonzero(full.y == 0).flatten()[0]
    assert torch.equal(data.x[data.y == 0][0], full.x[first_zero])
    assert "bundled" in data.source


def test_unknown_dataset_and_bad_split():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*mnist"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("mnist", "validation")


def test_idx_round_trip_and_corruption(tmp_path):
    array = (torch.arange(2 * 3 * 4) % 256).to(torch.uint8).view(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    assert torch.equal(read_idx(tmp_path / "a.gz"), array)
    with gzip.open(tmp_path / "a.gz", "rb") as f:
        raw = f.read()
    with gzip.open(tmp_path / "cut.gz", "wb") as f:
        f.write(raw[:-5])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


def test_array_dataset_checks_and_split(mnist_test):
    with pytest.raises(ValueError, match="one label per image"):
        ArrayDataset(mnist_test.x, mnist_test.y[:-1])
    a, b = mnist_test.split(0.25, seed=1)
    assert len(a) + len(b) == len(mnist_test) and len(b) == 128
    assert not set(a.y.tolist()) - set(range(10))
