"""The isic study (CDEP's skin-lesion recipe) on the patch benchmark written from real Fashion-MNIST,
its AUC/F1 against hand computations, and the head-only CDEP penalty against CD on the whole net."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from explainreg.cli import main
from explainreg.data.patch_benchmark import write_patch_benchmark
from explainreg.decomposition import decompose
from explainreg.penalties.annotation import cdep_share
from explainreg.penalties.base import PenaltyContext
from explainreg.studies.isic import (FeatureCDEP, cached_features, classification_scores, isic_splits, make_head,
                                     small_cnn_extractor)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_patch_benchmark(tmp_path_factory.mktemp("bench") / "isic", n_train=40, n_test=20, size=32,
                                 patch=(6, 9), seed=0)


def test_benchmark_layout_and_patches(bench):
    info = json.loads((bench / "benchmark.json").read_text())
    assert info["counts"]["train"] == {"no_cancer": {"images": 40, "patched": 20}, "cancer": {"images": 40, "patched": 0}}
    train, test = isic_splits(bench, 32, workers=0)
    assert train.classes == ["no_cancer", "cancer"] and len(train) == 80 and len(test) == 40
    masked = [s for s in train.samples if s.mask is not None]
    assert len(masked) == 20 and all(s.label == 0 for s in masked)  # patches on the benign class only
    s = masked[0]
    image = np.asarray(Image.open(s.image)).astype(int)
    mask = np.asarray(Image.open(s.mask)) > 0
    assert (image[mask].std(0) == 0).all() and len(set(map(tuple, image[mask]))) == 1  # one flat colour
    assert (np.abs(image[mask][:, 0] - image[mask][:, 1]) + np.abs(image[mask][:, 1] - image[mask][:, 2])).min() > 0
    assert sum(t.mask is not None and t.label == 1 for t in test.samples) == 10  # test: patches on both classes


def test_auc_f1_against_hand_computation():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=gen)
    scores = (torch.rand(200, generator=gen) * 0.7 + 0.3 * y).round(decimals=2)  # ties on purpose
    got = classification_scores(scores, y)
    pos, neg = scores[y == 1], scores[y == 0]
    pairs = (pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()
    assert got["auc"] == pytest.approx(float(pairs.mean()), abs=1e-12)  # Mann–Whitney
    pred = scores > 0.5
    tp, fp, fn = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert got["accuracy"] == pytest.approx(float((pred.long() == y).double().mean()))


def test_head_cdep_equals_cd_through_the_whole_net(bench):
    """CD of the head from the cached (rel, irrel) features = CD of extractor∘head on the image."""
    train, _ = isic_splits(bench, 32, workers=0)
    torch.manual_seed(0)
    extractor = small_cnn_extractor().eval()
    feats = cached_features(extractor, train.subset(range(30)), bench.parent / "cache.pt")
    head = make_head(feats["total"].shape[1]).eval()
    patched = feats["patched"]
    assert int(patched.sum()) > 0 and torch.equal(feats["rel"][~patched], torch.zeros_like(feats["rel"][~patched]))
    ctx = PenaltyContext(head, feats["total"], feats["y"], {k: feats[k] for k in ("rel", "irrel", "patched")},
                         input_grad=False)
    value = FeatureCDEP().compute(ctx)
    xs = torch.stack([train[i][0] for i in range(30)])[patched]
    ms = torch.stack([train[i][2]["mask"] for i in range(30)])[patched].float()
    rel, irrel = decompose(torch.nn.Sequential(extractor, head), xs, ms)
    assert float(value.detach()) == pytest.approx(float(cdep_share(rel, irrel).detach()), rel=1e-4)
    value.backward()
    assert head[0].weight.grad is not None and head[0].weight.grad.abs().sum() > 0


@pytest.mark.slow  # about 25 s on 2 shared cores
def test_isic_study_quick(bench, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["study", "isic", "--data-root", str(bench), "--quick", "--out", str(out), "--workers", "0",
                 "--extractor", "resnet18"]) == 0
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].startswith("method,seed") and len(table) == 4
    summary = (out / "summary.md").read_text()
    assert "QUICK" in summary and "| cdep |" in summary and "0.89 / 0.61" in summary
    assert "Does the model still use the patch?" in summary and "reliance" in table[0]
    assert "flip_patch_removed" in table[0]
    assert any(p.name.startswith("train-resnet18") for p in (out / "cache").iterdir())
    with pytest.raises(FileNotFoundError, match="CDEP's ISIC layout"):
        isic_splits(tmp_path, 32)


def test_patch_groups_against_a_hand_count():
    from torch import nn

    from explainreg.studies.isic import patch_groups

    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-1.0], [1.0]]))          # predicts class 1 iff the feature > 0
    test = {"total": torch.tensor([[-1.0], [1.0], [-1.0], [-1.0], [1.0], [-1.0]]),
            "y": torch.tensor([0, 0, 0, 1, 1, 1]), "patched": torch.tensor([1, 1, 0, 1, 0, 0])}
    out = patch_groups(head, test)
    # agreeing: rows 0, 1 (patched benign), 4, 5 (unpatched malignant): right 0, 4 → 50 %; disagreeing: rows 2, 3 → 50 %
    assert out["acc_agree"] == 50.0 and out["acc_disagree"] == 50.0 and out["reliance"] == 0.0
    # groups (0, absent) row 2: 1; (0, present) rows 0, 1: ½; (1, absent) rows 4, 5: ½; (1, present) row 3: 0
    assert out["worst_group"] == 0.0 and out["average_group"] == pytest.approx(100 * 2 / 4)
