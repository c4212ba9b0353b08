"""A tiny run of ``explainreg study saliency-guided`` on real MNIST: outputs, caching, bad options."""
from __future__ import annotations

import pandas as pd
import pytest

from explainreg.cli import main
from explainreg.studies.saliency_guided import METHODS

TINY = ["--quick", "--epochs", "1", "--limit-train", "1100", "--limit-test", "200", "--eval-images", "24",
        "--ig-steps", "4", "--batch-size", "256", "--threads", "1", "--no-progress"]


def test_tiny_study_writes_tables_figures_and_summary(tmp_path, capsys):
    out = tmp_path / "sgt"
    assert main(["study", "saliency-guided", "--out", str(out), *TINY]) == 0
    for name in ("masked_accuracy.csv", "curve_areas.csv", "masked_accuracy.png", "saliency_maps.png",
                 "summary.md", "results.json", "regular/checkpoint.pt", "guided/checkpoint.pt"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "masked_accuracy.csv")
    assert set(table["model"]) == {"regular", "guided"} and set(table["method"]) == set(METHODS)
    assert sorted(set(table["drop_percent"])) == list(range(0, 100, 10))
    assert len(table) == 2 * len(METHODS) * 10 and table["accuracy"].between(0, 1).all()
    areas = pd.read_csv(out / "curve_areas.csv", index_col="method")
    assert list(areas.columns) == ["regular", "guided"] and areas.notna().all().all()
    summary = (out / "summary.md").read_text()
    assert "| Gradient |" in summary and "guided − regular" in summary and "--quick" in summary
    page = (out / "summary.html").read_text()  # self-contained HTML twin, figures embedded
    assert "<html" in page and page.count("data:image/png;base64,") == 2 and "guided − regular" in page

    # a rerun reuses the finished runs and the cached curves
    stamp = (out / "guided" / "checkpoint.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["study", "saliency-guided", "--out", str(out), *TINY]) == 0
    assert (out / "guided" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert "saliency: area" not in capsys.readouterr().out  # no curve recomputed
    assert pd.read_csv(out / "masked_accuracy.csv").equals(table)

    # other SGT settings in the same folder are refused, not silently mixed
    assert main(["study", "saliency-guided", "--out", str(out), *TINY, "--fraction", "0.2"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("option,value", [("--fraction", "1.5"), ("--fill", "zeros"), ("--methods", "lime"),
                                          ("--models", "fancy")])
def test_bad_study_options(tmp_path, capsys, option, value):
    assert main(["study", "saliency-guided", "--out", str(tmp_path), "--quick", option, value]) == 2
    assert option.lstrip("-").split("-")[0] in capsys.readouterr().err
