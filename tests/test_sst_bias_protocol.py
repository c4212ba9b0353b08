"""``explainreg study sst-bias --protocol paper``: every epoch's dev and test accuracy recorded, the
paper's measure (dev maximum over epochs) and the clean one (test at the best dev epoch) from one run."""
from __future__ import annotations

import csv
import json

import pytest

from explainreg.cli import main
from explainreg.studies.sst_bias import SSTBiasSettings


def test_paper_protocol_records_every_epoch_and_both_measures(tmp_path):
    args = ["study", "sst-bias", "--bias", "decoy", "--out", str(tmp_path), "--threads", "1", "--protocol", "paper",
            "--limit", "96", "--epochs", "2", "--lambdas", "0", "600", "--seeds", "0", "--methods", "cdep"]
    assert main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert [(r["method"], float(r["lambda"])) for r in rows] == [("vanilla", 0.0), ("cdep", 600.0)]
    for row in rows:
        record = json.loads((tmp_path / "runs" / f"{row['method']}-lambda{float(row['lambda']):g}-seed0"
                             / "result.json").read_text())["record"]
        dev, test = record["dev_by_epoch"], record["test_by_epoch"]
        assert record["epochs_run"] == 2 and len(dev) == len(test) == 2  # no early stopping
        assert record["paper_accuracy"] == max(dev)
        best = dev.index(max(dev))  # the clean measure: the test accuracy at the (first) best dev epoch
        assert record["test_accuracy"] == pytest.approx(test[best])
        assert record["dev_accuracy"] == pytest.approx(dev[best])
        assert [float(v) for v in row["dev_by_epoch"].split()] == pytest.approx(dev, abs=0.006)
    summary = (tmp_path / "summary.md").read_text()
    assert "dev max over epochs (paper's measure)" in summary and "75.4" in summary


def test_paper_protocol_defaults():
    settings = SSTBiasSettings(bias="decoy", protocol="paper")
    assert settings.output == "results/sst-bias-decoy-paper"
    with pytest.raises(ValueError, match="protocol must be one of 'clean', 'paper'"):
        SSTBiasSettings(bias="decoy", protocol="notebook")
