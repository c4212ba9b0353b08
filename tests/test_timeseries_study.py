"""``explainreg study timeseries`` end to end on a tiny setting: files, rows and the report."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from explainreg.cli import main

ROOT = Path(os.environ.get("EXPLAINREG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "ucr").is_dir(), reason="shared UCR data not found")
def test_quick_study_writes_results(tmp_path):
    out = tmp_path / "ts"
    code = main(["study", "timeseries", "--quick", "--layouts", "SmallMiddle", "--ucr", "ItalyPowerDemand",
                 "--models", "tcn", "--methods", "saliency,integrated_gradients", "--n-train", "64", "--n-test", "16",
                 "--epochs", "2", "--ucr-epochs", "2", "--eval-samples", "8", "--data-root", str(ROOT),
                 "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    datasets = {r["dataset"] for r in rows}
    assert datasets == {"SmallMiddle_box", "ucr/ItalyPowerDemand"}
    got = {(r["dataset"], r["training"], r["method"], r["metric"]) for r in rows}
    for training in ("regular", "guided"):
        assert ("SmallMiddle_box", training, "integrated_gradients", "diff_aup_benchmark") in got
        assert ("ucr/ItalyPowerDemand", training, "random", "masked_accuracy_auc") in got
        assert ("ucr/ItalyPowerDemand", training, "", "accuracy") in got
    assert not any(r["metric"].startswith("aup") for r in rows if r["dataset"].startswith("ucr/"))
    for r in rows:
        if r["metric"] == "accuracy":
            assert 0.0 <= float(r["value"]) <= 1.0
    record = json.loads((out / "results.json").read_text())
    assert record["environment"]["torch"] and record["settings"]["layouts"] == ["SmallMiddle"]
    assert len(record["masked_accuracy_curves"]["ucr/ItalyPowerDemand|tcn|guided"]["random"]) == 10
    ref = {r["metric"]: float(r["value"]) for r in rows if r["model"] == "1nn"}
    assert ref["accuracy_ed"] == pytest.approx(ref["published_accuracy_ed"], abs=6e-5)   # 1 − 0.0447
    report = (out / "report.md").read_text()
    assert "1-NN references" in report and "DataSummary.csv" in report
    assert "Diff(AUP)" in report and (out / "saliency_heatmaps.png").is_file()
    assert main(["study", "timeseries", "--layouts", "Centre", "--out", str(out)]) == 2


@pytest.mark.skipif(not (ROOT / "ucr").is_dir(), reason="shared UCR data not found")
def test_reference_rows_reproduce_the_archive():
    """The study's 1-NN rows: explainreg's ED and DTW on ItalyPowerDemand equal the archive's figures."""
    from explainreg.data.ucr import load_ucr
    from explainreg.studies.timeseries import Settings, reference_rows

    train, test = load_ucr("ItalyPowerDemand", "train", ROOT), load_ucr("ItalyPowerDemand", "test", ROOT)
    rows = {r["metric"]: r["value"] for r in reference_rows("ItalyPowerDemand", train, test, Settings(nn_dtw=True))}
    assert set(rows) == {"accuracy_ed", "accuracy_dtw_d", "accuracy_dtw_i", "published_accuracy_ed",
                         "published_accuracy_dtw_full"}
    assert rows["accuracy_ed"] == pytest.approx(1 - 0.0447, abs=6e-5)
    assert rows["accuracy_dtw_d"] == pytest.approx(rows["published_accuracy_dtw_full"], abs=6e-5)
    assert rows["accuracy_dtw_i"] == rows["accuracy_dtw_d"]          # one channel: the two DTWs coincide
    bm = reference_rows("BasicMotions", load_ucr("BasicMotions", "train", ROOT),
                        load_ucr("BasicMotions", "test", ROOT), Settings())
    assert [r["metric"] for r in bm] == ["accuracy_ed"]               # no published univariate figure
