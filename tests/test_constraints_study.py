"""The constraints study end to end on a tiny real MNIST run: every model and metric in the report."""
from __future__ import annotations

import json

import pandas as pd

from explainreg.cli import main
from explainreg.studies.constraints import COLUMNS, PENALTIES


def test_tiny_study_reports_every_model_and_metric(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["study", "constraints", "--quick", "--out", str(out), "--limit-train", "300", "--limit-test", "100",
            "--eval-images", "40", "--roar-train", "120", "--epochs", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed
    table = pd.read_csv(out / "results.csv")
    assert list(table["model"]) == ["baseline", *PENALTIES]
    for key, _, _ in COLUMNS:
        assert table[key].notna().all(), key
    assert table["test_accuracy"].between(0, 100).all()
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["quick"] and results["environment"]["torch"]
    assert results["data"]["n_eval"] == 40
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in ["baseline", *PENALTIES]:
        assert name in markdown and name in html
    for _, title, _ in COLUMNS:
        assert title in markdown
    assert "(0.696)" in markdown  # the seed's published baseline MoRF AUC beside ours
    # the report's command repeats this study: the mode and every setting that differs from its defaults
    assert (f"explainreg study constraints --dataset mnist --quick --limit-train 300 --limit-test 100 "
            f"--eval-images 40 --roar-train 120 --out {out}") in markdown
    assert html.count("data:image/png;base64,") == 8  # 3 saliency grids, 4 curve plots, penalties in training
    for png in ["saliency_saliency", "saliency_integrated_gradients", "saliency_gradcam", "morf_curves",
                "roar_curves", "gaussian_curves", "blocks_curves", "penalties_during_training"]:
        assert (out / "figures" / f"{png}.png").stat().st_size > 5000
    # the baseline monitored every penalty while training without being trained on them
    steps = json.loads((out / "runs" / "baseline" / "steps.json").read_text())
    assert all(p in steps[0] for p in PENALTIES)
    # a rerun reuses the finished runs and cached evaluations
    mtime = (out / "runs" / "baseline" / "checkpoint.pt").stat().st_mtime
    assert main(args) == 0
    assert (out / "runs" / "baseline" / "checkpoint.pt").stat().st_mtime == mtime


def test_command_line_names_every_non_default_setting():
    from explainreg.cli import build_parser
    from explainreg.studies.constraints import command_line, settings_from_args

    argv = ["study", "constraints", "--dataset", "fashion-mnist", "--epochs", "1", "--roar-epochs", "2",
            "--weight", "locality=1", "--penalties", "locality,fidelity", "--seed", "3", "--out", "o"]
    line = command_line(settings_from_args(build_parser().parse_args(argv)))
    assert line == ("explainreg study constraints --dataset fashion-mnist --epochs 1 --roar-epochs 2 --seed 3 "
                    "--penalties locality,fidelity --weight locality=1 --out o")
    # the printed command parses back to the same settings
    again = settings_from_args(build_parser().parse_args(line.split()[1:]))
    assert again == settings_from_args(build_parser().parse_args(argv))


def test_jobs_train_in_processes_the_same_models_and_more_epochs_extend_them(tmp_path):
    import torch

    from explainreg.cli import build_parser
    from explainreg.studies.constraints import run_study, settings_from_args

    def settings(out, *extra):
        argv = ["study", "constraints", "--quick", "--out", str(out), "--limit-train", "150", "--limit-test", "60",
                "--eval-images", "20", "--roar-train", "60", "--penalties", "gradient_l1,locality", *extra]
        return settings_from_args(build_parser().parse_args(argv))

    run_study(settings(tmp_path / "serial"))
    run_study(settings(tmp_path / "parallel"), jobs=2)
    for run in ["baseline", "gradient_l1-w0.1", "locality-w0.1"]:
        serial, parallel = (torch.load(tmp_path / kind / "runs" / run / "checkpoint.pt", weights_only=False)["model"]
                            for kind in ("serial", "parallel"))
        for key in serial:  # one torch thread in a worker vs the test's own: equal up to float summation order
            torch.testing.assert_close(parallel[key], serial[key], rtol=1e-4, atol=1e-5)
    table = pd.read_csv(tmp_path / "parallel" / "results.csv")
    assert list(table["model"]) == ["baseline", "gradient_l1", "locality"] and table["roar"].notna().all()
    # asking for more epochs resumes the finished runs and re-evaluates them (the cache knows the epochs)
    run_study(settings(tmp_path / "parallel", "--epochs", "2"), jobs=2)
    state = torch.load(tmp_path / "parallel" / "runs" / "locality-w0.1" / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1 and [h["epoch"] for h in state["history"]] == [1, 2]
    evaluation = json.loads((tmp_path / "parallel" / "runs" / "locality-w0.1" / "study_evaluation.json").read_text())
    assert evaluation["metrics"]["test_accuracy"]["value"] == 100 * state["history"][-1]["test_accuracy"]


def test_jobs_must_be_positive(tmp_path):
    import pytest

    assert main(["study", "constraints", "--quick", "--out", str(tmp_path), "--jobs", "0"]) != 0
    from explainreg.studies.constraints import Settings, run_study
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_study(Settings(out=str(tmp_path)), jobs=0)
