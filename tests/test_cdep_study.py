"""The ``decoymnist`` / ``colormnist`` studies: a tiny real run, its report files, and skipping finished runs."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from explainreg.cli import build_parser
from explainreg.penalties import CDEP, RRR, ExpectedGradients
from explainreg.studies import discover
from explainreg.studies.cdep_mnist import SETTINGS, build_penalty


def test_studies_are_registered():
    studies = discover()
    assert {"decoymnist", "colormnist"} <= set(studies)
    help_text = build_parser().format_help()
    assert "study" in help_text


def test_paper_lambda_scales():
    setting = SETTINGS["decoymnist"]
    penalty, weight = build_penalty("rrr", 1000, setting, 10, None)
    assert isinstance(penalty, RRR) and penalty.score == "nll" and weight == 1000 / 64
    penalty, weight = build_penalty("eg", 0.1, setting, 10, None)
    assert isinstance(penalty, ExpectedGradients) and penalty.convention == "seed" and abs(weight - 0.1 * 200 / 10) < 1e-12
    penalty, weight = build_penalty("cdep", 1000, setting, 10, None)
    assert isinstance(penalty, CDEP) and weight == 1000


def test_tiny_decoymnist_study_writes_report_and_skips_finished_runs(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        argv = ["study", "decoymnist", "--quick", "--out", str(tmp_path), "--limit", "128", "--n-refs", "2",
                "--lambdas", "100"]
        args = build_parser().parse_args(argv)
        assert args.func(args) == 0
        runs = sorted(p.parent.name for p in tmp_path.glob("runs/*/result.json"))
        assert runs == ["cdep_lam100_seed0", "eg_lam100_seed0", "rrr_lam100_seed0", "vanilla_lam0_seed0"]
        table = pd.read_csv(tmp_path / "results.csv")
        assert {"method", "lambda", "test_mean", "test_std", "paper"} <= set(table.columns)
        assert len(table) == 4
        summary = (tmp_path / "summary.md").read_text()
        assert "CDEP" in summary and "60.97" in summary  # the paper's unpenalised number beside ours
        assert (tmp_path / "accuracy_vs_lambda.png").stat().st_size > 1000
        page = (tmp_path / "summary.html").read_text()  # self-contained HTML twin, figure embedded
        assert "<html" in page and "data:image/png;base64," in page and "60.97" in page
        record = json.loads((tmp_path / "runs" / "cdep_lam100_seed0" / "result.json").read_text())
        assert 0 <= record["test_accuracy"] <= 100 and record["train_size"] == 128
        # the behavioural shortcut evidence beside the accuracy (documentation: methods/shortcuts)
        evidence = json.loads((tmp_path / "runs" / "cdep_lam100_seed0" / "behaviour.json").read_text())
        assert evidence["reliance"] == pytest.approx(evidence["acc_agree"] - evidence["acc_disagree"])
        assert {"reliance", "flip_shortcut", "worst_group", "cd_margin_share", "gxi_margin_share"} <= set(table.columns)
        assert "Does the model still use the decoy?" in summary

        stamp = (tmp_path / "runs" / "cdep_lam100_seed0" / "result.json").stat().st_mtime_ns
        capsys.readouterr()
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert "[1/4]" not in out  # nothing retrained
        assert (tmp_path / "runs" / "cdep_lam100_seed0" / "result.json").stat().st_mtime_ns == stamp
        # more epochs into the same folder: the run is extended (resumed), not reused, and the report
        # holds only the runs of these settings
        longer = build_parser().parse_args([*argv, "--methods", "vanilla", "--epochs", "2"])
        assert longer.func(longer) == 0
        record = json.loads((tmp_path / "runs" / "vanilla_lam0_seed0" / "result.json").read_text())
        assert record["epochs_run"] == 2
        assert list(pd.read_csv(tmp_path / "results.csv")["method"]) == ["vanilla"]
        assert "resuming from epoch 1" in (tmp_path / "runs" / "vanilla_lam0_seed0" / "train.log").read_text()
    finally:
        torch.set_num_threads(threads)


def test_tiny_colormnist_study(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = build_parser().parse_args(["study", "colormnist", "--quick", "--out", str(tmp_path), "--limit", "256",
                                          "--methods", "cdep", "--lambdas", "10"])
        assert args.func(args) == 0
        table = pd.read_csv(tmp_path / "results.csv")
        assert list(table["method"]) == ["cdep"] and table["test_mean"].between(0, 100).all()
        # the colour as the shortcut: own class's colour vs another's (documentation: methods/shortcuts)
        assert table["reliance"].iloc[0] == pytest.approx(table["acc_agree"].iloc[0] - table["acc_disagree"].iloc[0])
        assert "Does the model still use the colour?" in (tmp_path / "summary.md").read_text()
    finally:
        torch.set_num_threads(threads)
