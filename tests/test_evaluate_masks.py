"""`explainreg evaluate` runs the localisation and wrong-reason metrics when the data set has masks."""
from __future__ import annotations

import json

import pytest
import torch

from explainreg.cli import main
from explainreg.data import load_dataset
from explainreg.metrics import PointingGame, WrongReason
from explainreg.attribution import attribute
from explainreg.models import build_model
from explainreg.objective import Objective
from explainreg.runs import load_run
from explainreg.training import TrainConfig, train


def test_evaluate_gives_localisation_metrics_on_decoy_mnist(tmp_path):
    train_set = load_dataset("decoy-mnist", "train", limit=512)
    torch.manual_seed(0)
    model = build_model("cdep_decoymnist")
    train(model, Objective(), train_set, config=TrainConfig(epochs=1, batch_size=64, progress=False),
          run_dir=tmp_path / "run", run_info={"dataset": "decoy-mnist", "normalize": False, "model": "cdep_decoymnist"})
    assert main(["evaluate", str(tmp_path / "run"), "--metrics", "pointing_game,wrong_reason,morf",
                 "--attribution", "saliency", "--limit", "64", "--no-progress", "--device", "cpu"]) == 0
    out = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]["saliency"]
    # the same numbers from the metric objects on the same images and masks
    test = load_dataset("decoy-mnist", "test", limit=64)
    model, _ = load_run(tmp_path / "run")
    a = attribute(model, test.x, test.y, "saliency")
    expected_pg = PointingGame()(model, test.x, test.y, a, test.extras["mask"]).value
    expected_wr = WrongReason()(model, test.x, test.y, a, test.extras["mask"]).value
    assert out["pointing_game"]["value"] == pytest.approx(expected_pg, abs=1e-6)
    assert out["wrong_reason"]["value"] == pytest.approx(expected_wr, abs=1e-4)
    assert "morf" in out


def test_evaluate_refuses_mask_metrics_without_masks(tmp_path, capsys):
    train_set = load_dataset("mnist", "train", limit=256)
    model = build_model("cnn3b")
    train(model, Objective(), train_set, config=TrainConfig(epochs=1, batch_size=64, progress=False),
          run_dir=tmp_path / "run", run_info={"dataset": "mnist", "normalize": False, "model": "cnn3b"})
    code = main(["evaluate", str(tmp_path / "run"), "--metrics", "pointing_game", "--attribution", "saliency",
                 "--limit", "32", "--no-progress", "--device", "cpu"])
    assert code != 0
    assert "compare attributions with annotation masks" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()
