"""Bad input and faults in the data loaders, the penalties and the padding handling, on real data:
``limit`` as a seeded subset stratified by label, padding that never counts, non-finite penalty
options, bf16 autocast, attention kernels under double backprop, torch.func, the penalty registry."""
from __future__ import annotations

import pytest
import torch

from explainreg.data import load_dataset
from explainreg.data.text import sst_bias

torch.set_num_threads(1)


def test_limit_is_a_stratified_subset_on_a_file_grouped_by_label():
    whole = load_dataset("sst-2", "test")
    part = load_dataset("sst-2", "test", limit=500)
    share = lambda d: float(d.y.float().mean())  # noqa: E731
    assert abs(share(part) - share(whole)) <= 1 / 500 + 1e-9        # first 500 rows: 93.2 % one label
    train = load_dataset("sst-2", "train", limit=2000)
    counts = train.y.bincount().tolist()
    assert min(counts) > 900, counts                                   # first 2000 rows: 124 / 1,876
    assert "limit 2000 (stratified by label, seed 0)" in train.source
    again = load_dataset("sst-2", "train", limit=2000)
    other = load_dataset("sst-2", "train", limit=2000, subset_seed=1)
    assert torch.equal(again.x, train.x) and not torch.equal(other.x, train.x)


def test_limit_has_one_meaning_in_every_loader():
    for name, split, limit in (("mnist", "test", 300), ("ucr/JapaneseVowels", "train", 45),
                               ("sst-decoy", "test", 120)):
        whole, part = load_dataset(name, split), load_dataset(name, split, limit=limit)
        assert len(part) == limit, name
        expected = whole.y.bincount().double() * limit / len(whole)
        assert (part.y.bincount(minlength=len(expected)) - expected).abs().max() < 1, name
        assert f"limit {limit} (stratified by label, seed 0)" in part.source, name
    splits = sst_bias("decoy", limit=300)
    for ds in (splits.train, splits.dev, splits.test):
        assert abs(float(ds.y.float().mean()) - 0.5) < 0.1


def test_limit_refuses_what_is_not_a_positive_count():
    from explainreg.data.datasets import stratified_subset

    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="limit must be a positive number"):
            stratified_subset(torch.tensor([0, 1, 0]), bad)
    with pytest.raises(ValueError, match="limit must be a positive number"):
        load_dataset("ucr/JapaneseVowels", "train", limit=0)
