"""The text SGT study end to end on a small real subset (documentation: guide/text)."""
from __future__ import annotations

import csv

import pytest

from explainreg.cli import main


def test_sgt_text_study_writes_accuracy_and_eraser(tmp_path):
    argv = ["study", "sgt-text", "--model", "cnn", "--limit", "96", "--epochs", "1", "--eval-limit", "20",
            "--seeds", "0", "--threads", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert [r["guided"] for r in rows] == ["False", "True"]
    for r in rows:
        assert 0 <= float(r["test_accuracy"]) <= 100
        for key in ("gradient_comprehensiveness", "random_sufficiency", "integrated_gradients_sufficiency"):
            assert -1 <= float(r[key]) <= 1
    assert "random comp." in (tmp_path / "summary.md").read_text()
    # a rerun reuses the finished runs; other settings into the same folder are refused, naming the difference
    done = tmp_path / "runs" / "cnn-guided-seed0.json"
    stamp = done.stat().st_mtime
    assert main(argv) == 0 and done.stat().st_mtime == stamp
    with pytest.raises(SystemExit, match=r"cnn-regular-seed0.json.*\n.*fraction: 0.5 → 0.3"):
        main([*argv, "--fraction", "0.3"])
