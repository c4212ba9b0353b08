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
    # DecoyMNIST's masks mark what the model must not use: pointing game scores evidence, so it takes their
    # complement only when asked (documentation: guide/concepts)
    assert main(["evaluate", str(tmp_path / "run"), "--metrics", "pointing_game,wrong_reason,morf",
                 "--attribution", "saliency", "--limit", "64", "--no-progress", "--device", "cpu",
                 "--mask-convert", "complement"]) == 0
    out = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]["saliency"]
    # the same numbers from the metric objects on the same images and masks
    test = load_dataset("decoy-mnist", "test", limit=64)
    model, _ = load_run(tmp_path / "run")
    a = attribute(model, test.x, test.y, "saliency")
    expected_pg = PointingGame()(model, test.x, test.y, a, ~test.extras["mask"]).value
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


@pytest.fixture(scope="module")
def decoy_run(tmp_path_factory):
    """A vanilla CDEP net trained one epoch on 512 DecoyMNIST images (masks: the decoy corners, must not use)."""
    folder = tmp_path_factory.mktemp("decoy") / "run"
    torch.manual_seed(0)
    model = build_model("cdep_decoymnist")
    train(model, Objective(), load_dataset("decoy-mnist", "train", limit=512),
          config=TrainConfig(epochs=1, batch_size=64, progress=False), run_dir=folder,
          run_info={"dataset": "decoy-mnist", "normalize": False, "model": "cdep_decoymnist"})
    return folder


@pytest.mark.parametrize("metric", ["pointing_game", "relevance_mass_accuracy"])
def test_evaluate_refuses_evidence_metrics_on_must_not_use_masks(decoy_run, capsys, metric):
    # scored as evidence, the decoy corners rank a model that looks at the shortcut above one that does not
    code = main(["evaluate", str(decoy_run), "--metrics", metric, "--attribution", "saliency", "--limit", "32",
                 "--no-progress", "--device", "cpu", "--output", str(decoy_run / "refused")])
    assert code != 0
    err = capsys.readouterr().err
    assert f"{metric} scores masks that mark where the evidence is, but the mask of the run's data set" in err
    assert "marks what the model must not use" in err and "--mask-convert complement" in err
    assert not (decoy_run / "refused" / "metrics.json").exists()
    code = main(["evaluate", str(decoy_run), "--metrics", metric, "--attribution", "saliency", "--limit", "32",
                 "--no-progress", "--device", "cpu", "--mask-meaning", "evidence"])
    assert code != 0 and "--mask-meaning evidence contradicts the run's data" in capsys.readouterr().err


def test_evaluate_prints_the_behavioural_metrics_beside_the_explanation_metrics(decoy_run, capsys):
    from explainreg.data.shortcuts import DecoyShortcut
    from explainreg.metrics import FlipRate, ShortcutReliance

    assert main(["evaluate", str(decoy_run), "--metrics", "morf", "--attribution", "saliency", "--limit", "64",
                 "--no-progress", "--device", "cpu", "--output", str(decoy_run / "behaviour")]) == 0
    printed = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert {"shortcut_reliance", "flip_rate", "group_accuracy", "decision_share"} <= set(printed["none"])
    assert "morf" in printed["saliency"]
    out = json.loads((decoy_run / "behaviour" / "metrics.json").read_text())["results"]["none"]
    test = load_dataset("decoy-mnist", "test", limit=64)
    model, _ = load_run(decoy_run)
    reliance = ShortcutReliance(DecoyShortcut())(model, test.x, test.y, mask=test.extras["mask"])
    assert out["shortcut_reliance"]["value"] == pytest.approx(reliance.value)
    assert out["shortcut_reliance"]["extra"]["accuracy_disagreeing"] == pytest.approx(
        reliance.extra["accuracy_disagreeing"])
    flips = FlipRate("other_class")(model, test.x, test.y, mask=test.extras["mask"])
    assert out["flip_rate"]["value"] == pytest.approx(flips.value)
