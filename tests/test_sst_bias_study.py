"""The SST bias study end to end on a small real subset (documentation: guide/text)."""
from __future__ import annotations

import csv

import pytest

from explainreg.cli import main


def _run(out, *extra):
    return main(["study", "sst-bias", "--bias", "gender", "--out", str(out), "--threads", "1", *extra])


def test_sst_bias_study_writes_its_table(tmp_path):
    assert _run(tmp_path, "--limit", "96", "--epochs", "1", "--lambdas", "0", "300", "--seeds", "0") == 0
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert [(r["method"], float(r["lambda"])) for r in rows] == [("vanilla", 0.0), ("cdep", 300.0), ("rrr", 10.0)]
    assert all(0 <= float(r["test_accuracy"]) <= 100 for r in rows)
    summary = (tmp_path / "summary.md").read_text()
    assert "| cdep | 300 |" in summary and "64.3" in summary  # the paper's vanilla number beside ours
    assert "bias word CD rel" in summary and (tmp_path / "accuracy_vs_lambda.png").is_file()
    assert "Does the model still use the bias?" in summary and all(r["worst_group"] for r in rows)
    stamp = (tmp_path / "runs" / "cdep-lambda300-seed0" / "result.json").stat().st_mtime
    assert _run(tmp_path, "--limit", "96", "--epochs", "1", "--lambdas", "0", "300", "--seeds", "0") == 0
    assert (tmp_path / "runs" / "cdep-lambda300-seed0" / "result.json").stat().st_mtime == stamp  # finished runs kept
    # other settings into the same folder: refused, naming the difference, not mixed into the table
    with pytest.raises(SystemExit, match=r"vanilla-lambda0-seed0.*\n.*epochs: 1 → 2"):
        _run(tmp_path, "--limit", "96", "--epochs", "2", "--lambdas", "0", "300", "--seeds", "0")


@pytest.mark.slow
def test_sst_bias_quick_mode(tmp_path):
    assert main(["study", "sst-bias", "--bias", "decoy", "--quick", "--out", str(tmp_path), "--threads", "1"]) == 0
    assert "Quick mode" in (tmp_path / "summary.md").read_text()


def test_decoy_columns_plant_each_class_decoy_word():
    import math

    import torch

    from explainreg.data.text import glove_vectors, sst_bias
    from explainreg.studies.sst_bias import shortcut_columns
    from explainreg.models.text import cdep_lstm

    splits = sst_bias("decoy", limit=64, seed=0)
    torch.manual_seed(0)
    model = cdep_lstm(len(splits.vocab), 2, vectors=glove_vectors(splits.vocab)[0]).eval()
    columns = shortcut_columns(model, "decoy", splits)
    assert columns["reliance"] == pytest.approx(columns["acc_agree"] - columns["acc_disagree"])
    assert 0 <= columns["flip_shortcut"] <= 100 and 0 <= columns["cd_logit_share"] <= 1
    assert not math.isnan(columns["cd_margin_share"]) and math.isnan(columns["flip_mean"])  # no dense fill for tokens
