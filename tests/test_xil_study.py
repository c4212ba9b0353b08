"""The XIL study end to end on a small real DecoyMNIST subset, and its feedback corruptions."""
from __future__ import annotations

import argparse
import csv

import pytest
import torch

from explainreg.studies.xil import add_arguments, corrupt, run


@pytest.mark.slow  # ≈ 45 s on a shared CPU: three short trainings and WR on 128 test images
def test_quick_study_writes_report(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--methods", "vanilla", "hint", "counterexamples", "--seeds", "0", "--epochs", "1",
                              "--train-limit", "256", "--test-limit", "128", "--out", str(tmp_path)])
    assert run(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["method"] for r in rows] == ["vanilla", "hint", "counterexamples"]
    for r in rows:
        assert 0 <= float(r["accuracy"]) <= 100 and 0 <= float(r["wr_gradcam"]) <= 100
        assert 0 <= float(r["wr_ig"]) <= 100
    assert rows[1]["rate"] == "nan"  # HINT: no normalisation rate by default (CDEP only)
    report = (tmp_path / "report.md").read_text()
    assert "| hint |" in report and "explainreg study xil" in report


def test_feedback_corruptions():
    mask = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    mask[:, :, :2, :3] = True  # 6 pixels each
    g = torch.Generator().manual_seed(0)
    assert torch.equal(corrupt(mask, "correct", g), mask)
    half = corrupt(mask, "incomplete", g)
    assert (half.flatten(1).sum(1) == 3).all() and not (half & ~mask).any()
    assert half[0, 0, 1, :3].all() and not half[0, 0, 0].any()  # the first row (raster order) removed
    rnd = corrupt(mask, "random", g)
    assert 0.3 < rnd.float().mean() < 0.7
