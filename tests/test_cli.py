"""The command line: train on a real subset, list data sets, clear errors."""
from __future__ import annotations

import json
import os

from explainreg.cli import main


def test_train_command_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "mnist", "--penalty", "smoothness", "--penalty", "gradient_l1=0.5",
                 "--penalty-option", "smoothness.convention=seed", "--epochs", "1", "--limit-train", "2000", "--lr", "3e-3",
                 "--limit-test", "200", "--batch-size", "30", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and str(out) in printed
    config = json.loads((out / "config.json").read_text())
    assert config["objective"][0] == {"name": "smoothness", "penalty": "smoothness", "weight": 0.1,
                                      "settings": {"offset": 1, "convention": "seed", "score": "logit"}}
    assert config["objective"][1]["weight"] == 0.5
    history = json.loads((out / "history.json").read_text())
    assert history[0]["test_accuracy"] > 0.5 and "train_gradient_l1" in history[0]
    # a second start into the same folder does not overwrite it; --resume finds it finished
    assert main(["train", "--epochs", "1", "--limit-train", "600", "--limit-test", "200", "--out", str(out),
                 "--no-progress"]) == 2
    assert "resume" in capsys.readouterr().err
    same = ["train", "--dataset", "mnist", "--penalty", "smoothness", "--penalty", "gradient_l1=0.5",
            "--penalty-option", "smoothness.convention=seed", "--epochs", "1", "--limit-train", "2000", "--lr", "3e-3",
            "--limit-test", "200", "--batch-size", "30", "--out", str(out), "--no-progress", "--resume"]
    assert main(same) == 0
    # other settings are refused with the differences listed (tests/test_reliability.py has more)
    assert main([a if a != "2000" else "600" for a in same]) == 2
    assert "limit_train: 2000 → 600" in capsys.readouterr().err


def test_bad_arguments_give_clear_errors(tmp_path, capsys):
    assert main(["train", "--penalty", "smoothnes", "--out", str(tmp_path / "x")]) == 2
    assert "unknown penalty 'smoothnes'" in capsys.readouterr().err
    assert main(["train", "--penalty", "smoothness=abc", "--out", str(tmp_path / "x")]) == 2
    assert "must be a number" in capsys.readouterr().err
    assert main(["train", "--data-root", str(tmp_path / "empty"), "--no-download", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not found; looked in" in err and "EXPLAINREG_DATA" in err


def test_datasets_command_reports_locations(capsys):
    assert main(["datasets"]) == 0
    printed = capsys.readouterr().out
    assert os.environ["EXPLAINREG_DATA"] in printed and "mnist" in printed and "not found" not in printed
