"""``explainreg evaluate RUN_DIR`` on a tiny run folder made from the trained fixture."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from explainreg.cli import main


@pytest.fixture()
def run_dir(tmp_path, trained_cnn3b):
    (tmp_path / "config.json").write_text(json.dumps({"dataset": "mnist", "model": "cnn3b", "normalize": False,
                                                      "data_root": os.environ["EXPLAINREG_DATA"]}))
    torch.save({"model": trained_cnn3b.state_dict()}, tmp_path / "checkpoint.pt")
    return tmp_path


def test_evaluate_writes_json_csv_and_plots(run_dir, capsys):
    code = main(["evaluate", str(run_dir), "--metrics", "morf,faithfulness,complexity,roar,gaussian,blocks",
                 "--attribution", "saliency,random", "--limit", "40", "--batch-size", "16", "--roar-epochs", "1",
                 "--roar-train-limit", "300", "--no-progress"])
    assert code == 0
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["n_images"] == 40 and set(summary["results"]) == {"none", "saliency", "random"}
    assert set(summary["results"]["saliency"]) == {"morf", "faithfulness", "complexity", "roar"}
    assert set(summary["results"]["none"]) == {"gaussian", "blocks"}
    assert summary["results"]["saliency"]["morf"]["value"] > summary["results"]["random"]["morf"]["value"]
    table = pd.read_csv(run_dir / "metrics.csv")
    assert {"attribution", "metric", "kind", "step", "value"} <= set(table.columns)
    for name in ("morf", "roar", "gaussian", "blocks"):
        assert (run_dir / f"metrics_{name}.png").stat().st_size > 1000


def test_evaluate_bad_metric_is_a_clear_error(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--metrics", "morf,wat", "--no-progress"]) == 2
    assert "unknown metric 'wat'" in capsys.readouterr().err
    assert main(["evaluate", str(run_dir / "missing"), "--no-progress"]) == 2
