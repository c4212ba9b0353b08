"""The XIL study end to end on a small real DecoyMNIST subset, its XIL-faithful settings (rates, raw
pixels, sum reductions, detached Grad-CAM weights, the settings key) and its feedback corruptions."""
from __future__ import annotations

import argparse
import csv
import json

import pytest
import torch

from explainreg.studies.xil import (ISSUE_RATES, _data, _objective, add_arguments, corrupt, effective_rate, pixel_range,
                                    run, study_rates)


@pytest.mark.slow  # ≈ 45 s on a shared CPU: three short trainings and WR on 128 test images
def test_quick_study_writes_report(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--methods", "vanilla", "hint", "counterexamples", "--seeds", "0", "--epochs", "1",
                              "--train-limit", "256", "--test-limit", "128", "--out", str(tmp_path)])
    assert run(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["method"] for r in rows] == ["vanilla", "hint", "counterexamples"]
    for r in rows:
        assert 0 <= float(r["accuracy"]) <= 100 and 0 <= float(r["wr_gradcam"]) <= 100
        assert 0 <= float(r["wr_ig"]) <= 100
    assert rows[1]["rate"] == "nan"  # HINT: no normalisation rate by default (CDEP only)
    report = (tmp_path / "report.md").read_text()
    assert "| hint |" in report and "explainreg study xil" in report
    # the behavioural shortcut evidence beside WR (documentation: methods/shortcuts)
    assert "Does the model still use the decoy?" in report
    for r in rows:
        assert float(r["reliance"]) == pytest.approx(float(r["acc_agree"]) - float(r["acc_disagree"]))


def test_feedback_corruptions():
    mask = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    mask[:, :, :2, :3] = True  # 6 pixels each
    g = torch.Generator().manual_seed(0)
    assert torch.equal(corrupt(mask, "correct", g), mask)
    half = corrupt(mask, "incomplete", g)
    assert (half.flatten(1).sum(1) == 3).all() and not (half & ~mask).any()
    assert half[0, 0, 1, :3].all() and not half[0, 0, 0].any()  # the first row (raster order) removed
    rnd = corrupt(mask, "random", g)
    assert 0.3 < rnd.float().mean() < 0.7


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_xils_paper_era_settings():
    args = parse()
    assert (args.normalise, args.reduction, args.gradcam, args.pixels, args.train_split) == \
        ("none", "xil", "captum", "raw", "full")
    assert args.weight_decay == 0.0 and args.epochs == 50 and args.rates == "paper"
    assert study_rates(args) == {"rrr": 10, "rbr": 1e5, "rrr_gradcam": 1, "hint": 100, "cdep": 1e6,
                                 "expected_gradients": 1}
    fm = parse("--dataset", "decoy-fmnist")
    assert study_rates(fm) == {"rrr": 10, "rbr": 1e6, "rrr_gradcam": 10, "hint": 1e-5, "cdep": 2e6,
                               "expected_gradients": 1}
    issue = parse("--dataset", "decoy-fmnist", "--rates", "issue", "--rate", "hint=10", "--rate", "rrr=3")
    assert study_rates(issue) == {**ISSUE_RATES, "hint": 10.0, "rrr": 3.0}
    assert ISSUE_RATES == {"rrr": 10, "rrr_gradcam": 10, "rbr": 1e6, "cdep": 2e6, "hint": 1e4, "expected_gradients": 1}
    assert effective_rate("rrr", study_rates(args), "xil") == 10 * 256
    assert effective_rate("rrr", study_rates(args), "library") == 10
    assert effective_rate("hint", study_rates(args), "xil") == 100
    for bad in ("hint", "nope=1", "hint=x", "hint=-1"):
        with pytest.raises(SystemExit):
            parse("--rate", bad)


@pytest.fixture(scope="module")
def raw_batch():
    args = parse("--train-limit", "256", "--test-limit", "64")
    return _data(args), args


def test_raw_pixels_are_xils_0_255_images(raw_batch):
    (train, test), _ = raw_batch
    assert len(train) == 256 and len(test) == 64
    assert float(train.x.min()) >= 0 and float(train.x.max()) == 255
    patch = train.extras["mask"]
    grey = 255 - 25 * train.y.double()  # the training decoy's grey: 255 − 25y
    for b in range(8):
        values = train.x[b][patch[b]].double()
        torch.testing.assert_close(values, grey[b].expand_as(values), atol=1e-3, rtol=0)
    tgrey = 25 * test.y.double()
    values = test.x[0][test.extras["mask"][0]].double()
    torch.testing.assert_close(values, tgrey[0].expand_as(values), atol=1e-3, rtol=0)
    unit = _data(parse("--train-limit", "256", "--test-limit", "64", "--pixels", "unit"))[0]
    torch.testing.assert_close(train.x, (unit.x + 1) * 127.5)
    full = _data(parse("--train-limit", "54001", "--test-limit", "8"))[0]
    assert len(full) == 54001  # train + val: one row past the 90 % split


def test_counterexamples_draw_in_the_pixel_range(raw_batch):
    from explainreg.data.counterexamples import counterexamples

    (train, _), args = raw_batch
    data = counterexamples(train, 1, seed=0, value_range=pixel_range(args.pixels))
    copies = data.x[len(train):][train.extras["mask"]]
    assert 0 <= float(copies.min()) and float(copies.max()) <= 255 and float(copies.max()) > 200
    assert float(copies.std()) > 50  # uniform on 0..255 (std ≈ 73.6), not on [−1, 1]
    assert pixel_range("unit") == (-1.0, 1.0)


def test_objectives_are_xils_sums(raw_batch):
    """RRR weighted by λ·256 on a batch of 256 equals XIL's λ·Σ_b Σ (m·∂Σ_k log p_k/∂x)²; HINT is
    built with the batch sum and α detached."""
    import torch.nn.functional as F

    from explainreg.models import cdep_decoymnist_net

    (train, _), args = raw_batch
    torch.manual_seed(0)
    model = cdep_decoymnist_net()
    objective, rate = _objective("rrr", args)
    assert rate == 2560
    x, y, m = train.x, train.y, train.extras["mask"].float()
    out = objective(model, x, y, mask=train.extras["mask"])
    xr = x.clone().requires_grad_(True)
    logits = model(xr)
    (g,) = torch.autograd.grad(F.log_softmax(logits, 1), xr, torch.ones_like(logits))
    xil = F.cross_entropy(logits, y) + 10 * ((m * g) ** 2).sum()
    torch.testing.assert_close(out.loss.detach(), xil.detach(), rtol=1e-4, atol=0)
    hint, rate = _objective("hint", args)
    (penalty,) = hint.penalties
    assert rate == 100 and penalty.settings()["reduction"] == "sum" and penalty.settings()["detach_weights"]
    (penalty,) = _objective("rrr_gradcam", parse("--gradcam", "differentiable"))[0].penalties
    assert penalty.settings()["detach_weights"] is False
    assert len(_objective("vanilla", args)[0].penalties) == 0
    sgt, rate = _objective("saliency_guided", args)
    (penalty,) = sgt.penalties
    assert rate == 1.0 and penalty.name == "saliency_guided" and penalty.reads_mask() is None
    torch.manual_seed(1)
    direct = type(penalty)()(model, x, y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sgt(model, x, y).terms["saliency_guided"], float(direct.detach()), rtol=1e-5, atol=0)


def test_config_records_the_settings_and_other_settings_are_refused(tmp_path):
    common = ["--methods", "vanilla", "--seeds", "0", "--epochs", "1", "--train-limit", "64", "--test-limit", "32",
              "--out", str(tmp_path)]
    assert run(parse(*common)) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert {k: config[k] for k in ("normalisation_rate", "reduction", "gradcam", "pixels", "train_split",
                                   "weight_decay", "selection", "rates_source")} == \
        {"normalisation_rate": "none", "reduction": "xil", "gradcam": "captum", "pixels": "raw",
         "train_split": "full", "weight_decay": 0.0, "selection": "last", "rates_source": "paper"}
    assert config["rates"]["hint"] == 100 and config["effective_rates"]["rrr"] == 2560
    first = (tmp_path / "runs" / "vanilla_seed0.json").read_text()
    assert run(parse(*common)) == 0  # same settings: the finished run is reused
    assert (tmp_path / "runs" / "vanilla_seed0.json").read_text() == first
    for other in (["--gradcam", "differentiable"], ["--pixels", "unit"], ["--rate", "hint=10"],
                  ["--normalise", "cdep"], ["--weight-decay", "1e-4"], ["--reduction", "library"]):
        with pytest.raises(SystemExit, match="--out"):
            run(parse(*common, *other))
    (tmp_path / "config.json").unlink()  # the per-run record is checked as well
    with pytest.raises(SystemExit, match="vanilla_seed0.json"):
        run(parse(*common, "--pixels", "unit"))


def test_a_folder_without_the_paper_era_settings_is_refused(tmp_path):
    """A folder whose config.json lacks the paper-era settings (written by explainreg 0.1) is not reused."""
    old = {"dataset": "decoy-mnist", "epochs": 1, "feedback": "correct", "normalisation_rate": "cdep",
           "train_images": 54000, "test_images": 10000, "weight_decay": 1e-4,
           "rates": {"rrr": 10.0, "rrr_gradcam": 10.0, "rbr": 1e6, "cdep": 2e6, "hint": 1e4}}
    tmp_path.joinpath("config.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="gradcam: null"):
        run(parse("--methods", "vanilla", "--seeds", "0", "--epochs", "1", "--train-limit", "64",
                  "--test-limit", "32", "--out", str(tmp_path)))


def test_example_maps_draw_each_saved_model_s_wrong_reason_maps(tmp_path, raw_batch, monkeypatch):
    """The report's figures show, per method whose weights are in runs/, exactly the WR maps of that
    model (Grad-CAM and |input gradient| of the predicted class) on the first test images; a method
    without weights is left out, and with none there is no figure."""
    import explainreg.report as report
    from explainreg.metrics.functional.localisation import wrong_reason_maps
    from explainreg.models import cdep_decoymnist_net
    from explainreg.runs import atomic_save
    from explainreg.studies.xil import example_maps

    (_, test), _ = raw_batch
    assert example_maps(tmp_path, test, ["vanilla", "rrr"], seed=0) == []
    torch.manual_seed(3)
    model = cdep_decoymnist_net().eval()
    atomic_save(model.state_dict(), tmp_path / "runs" / "rrr_seed0.pt")
    drawn = []
    draw = report.map_grid
    monkeypatch.setattr(report, "map_grid", lambda path, x, rows, **kw: drawn.append((x, rows)) or draw(path, x, rows, **kw))
    figures = example_maps(tmp_path, test, ["vanilla", "rrr"], seed=0, n=4)
    assert [name for name, _ in figures] == ["maps_gradcam.png", "maps_ig.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name, _ in figures)
    for (x, rows), kind in zip(drawn, ("gradcam", "input_gradient")):
        assert torch.equal(x, test.x[:4]) and list(rows) == ["rrr"]
        torch.testing.assert_close(rows["rrr"], wrong_reason_maps(model, test.x[:4], kind).abs())
