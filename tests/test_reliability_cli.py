"""The command line's answers to bad input, interruptions and repeated runs, on small real subsets."""
from __future__ import annotations

import json
import os

import pytest
import torch

from explainreg.cli import main
from explainreg.objective import Objective


def test_a_penalty_given_twice_is_an_error_naming_both_weights(tmp_path, capsys):
    out = tmp_path / "run"
    for first, second in (("smoothness=0.1", "smoothness=1"), ("smooth=0.1", "smoothness=1"), ("tv=0.1", "smooth=1")):
        code = main(["train", "--penalty", first, "--penalty", second, "--epochs", "1", "--limit-train", "60",
                     "--limit-test", "30", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and "smoothness is already given" in err and "0.1" in err and "weight 1" in err, err
        assert not out.exists()
    # the same through the Python objective: two names of one penalty
    with pytest.raises(ValueError, match=r"smoothness is given twice: as 'smooth' \(weight 0.1\) and as 'smoothness'"):
        Objective({"smooth": 0.1, "smoothness": 1.0})


def test_penalty_options_follow_the_penalty_alias(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--penalty", "tv=0.2", "--penalty-option", "smoothness.offset=2", "--epochs", "1",
                 "--limit-train", "60", "--limit-test", "30", "--batch-size", "30", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    objective = json.loads((out / "config.json").read_text())["objective"]
    assert [(t["name"], t["weight"], t["settings"]["offset"]) for t in objective] == [("smoothness", 0.2, 2)]
