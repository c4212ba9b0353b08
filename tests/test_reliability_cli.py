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


@pytest.fixture()
def small_run(tmp_path):
    """A run folder of an (untrained) CNN3b on MNIST: what evaluate reads."""
    from explainreg.models import cnn3b

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"dataset": "mnist", "model": "cnn3b", "normalize": False,
                                                 "data_root": os.environ["EXPLAINREG_DATA"]}))
    torch.manual_seed(0)
    torch.save({"model": cnn3b().state_dict()}, run / "checkpoint.pt")
    return run


def _evaluate(run, *extra: str) -> int:
    return main(["evaluate", str(run), "--metrics", "morf,complexity", "--limit", "12", "--batch-size", "6",
                 "--no-progress", *extra])


def _entries(run) -> dict[tuple[str, str, int | None], float]:
    entries = json.loads((run / "metrics.json").read_text())["entries"]
    return {(e["attribution"], e["metric"], e["settings"].get("limit")): e["result"]["value"] for e in entries}


def test_evaluate_with_another_attribution_keeps_the_earlier_results(small_run, capsys):
    import pandas as pd

    assert _evaluate(small_run, "--attribution", "saliency") == 0
    first = _entries(small_run)
    assert _evaluate(small_run, "--attribution", "random") == 0
    err = capsys.readouterr().err
    assert "added 2 (random: complexity, morf)" in err and "kept 2 earlier (saliency: complexity, morf)" in err
    both = _entries(small_run)
    assert set(both) == {("saliency", "morf", 12), ("saliency", "complexity", 12), ("random", "morf", 12),
                         ("random", "complexity", 12)}
    assert all(both[k] == v for k, v in first.items())
    summary = json.loads((small_run / "metrics.json").read_text())
    assert set(summary["results"]) == {"saliency", "random"}
    # the same attribution, metric and settings again: replaced, the rest kept; other settings: added
    assert _evaluate(small_run, "--attribution", "saliency") == 0
    err = capsys.readouterr().err
    assert "replaced 2 with the same attribution, metric and settings (saliency: complexity, morf)" in err
    assert "kept 2 earlier (random: complexity, morf)" in err
    assert _evaluate(small_run, "--attribution", "saliency", "--limit", "6") == 0
    assert len(_entries(small_run)) == 6
    table = pd.read_csv(small_run / "metrics.csv")
    summaries = table[table["kind"] == "summary"]
    assert len(summaries) == 6 and set(summaries["attribution"]) == {"saliency", "random"}


def test_evaluate_keeps_a_metrics_file_it_did_not_write(small_run, capsys):
    (small_run / "metrics.json").write_text('["my own notes"]')
    assert _evaluate(small_run, "--attribution", "saliency") == 2
    assert "is not a metrics file of `explainreg evaluate`" in capsys.readouterr().err
    assert (small_run / "metrics.json").read_text() == '["my own notes"]'
    # one written before results were keyed by their settings: its results are kept beside the new ones
    legacy = {"n_images": 40, "seed": 0, "compat": False, "results": {"ig": {"morf": {"value": 0.25}}}}
    (small_run / "metrics.json").write_text(json.dumps(legacy))
    assert _evaluate(small_run, "--attribution", "saliency") == 0
    assert "kept 1 earlier (ig: morf)" in capsys.readouterr().err
    assert _entries(small_run)[("ig", "morf", None)] == 0.25


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_evaluate_keeps_finished_parts_and_resumes(small_run, capsys, monkeypatch, how):
    import signal

    import importlib

    import explainreg.attribution

    evaluate_module = importlib.import_module("explainreg.cli.evaluate")  # it calls the attribute it imported

    real, calls = explainreg.attribution.attribute, []
    handler_before = signal.getsignal(signal.SIGTERM)  # another library (Ray) may have installed its own

    def interrupted_at_random(model, x, y, method, **kwargs):
        calls.append(method)
        if method == "random":
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return real(model, x, y, method, **kwargs)

    monkeypatch.setattr(evaluate_module, "attribute", interrupted_at_random)
    assert _evaluate(small_run, "--attribution", "saliency,random") == 130
    err = capsys.readouterr().err
    assert "2 finished results are saved in" in err and "Rerun the same command with --resume" in err
    assert set(_entries(small_run)) == {("saliency", "morf", 12), ("saliency", "complexity", 12)}
    saved = _entries(small_run)
    calls.clear()
    monkeypatch.setattr(evaluate_module, "attribute", lambda m, x, y, method, **k: calls.append(method)
                        or real(m, x, y, method, **k))
    assert _evaluate(small_run, "--attribution", "saliency,random", "--resume") == 0
    assert "--resume: saliency: morf, complexity already in" in capsys.readouterr().err
    assert set(calls) == {"random"}  # the finished saliency part is not computed again
    resumed = _entries(small_run)
    assert len(resumed) == 4 and all(resumed[k] == v for k, v in saved.items())
    assert signal.getsignal(signal.SIGTERM) is handler_before  # evaluate puts back the handler it found


def test_a_mask_given_as_nested_lists_is_read_as_its_array(mnist_test):
    from explainreg.inputs import normalize_mask
    from explainreg.models import cnn3b
    from explainreg.penalties import RRR

    torch.manual_seed(0)
    model, x, y = cnn3b(), mnist_test.x[:4], mnist_test.y[:4]
    grid = torch.zeros(28, 28)
    grid[:, :7] = 1  # the left quarter
    nested = grid.tolist()
    assert torch.equal(normalize_mask(nested, x), normalize_mask(grid, x))
    assert torch.equal(RRR()(model, x, y, mask=nested), RRR()(model, x, y, mask=grid))
    with pytest.raises(ValueError, match=r"nested list whose rows differ in length \(\[27, 28\]\)"):
        normalize_mask(nested[:-1] + [nested[-1][:-1]], x)


def test_evaluate_with_a_checkpoint_that_does_not_fit_the_model_says_so(small_run, capsys):
    config = json.loads((small_run / "config.json").read_text())
    (small_run / "config.json").write_text(json.dumps({**config, "model": "cnn4b"}))  # the weights are cnn3b's
    assert _evaluate(small_run, "--attribution", "saliency") == 2
    err = capsys.readouterr().err
    assert f"{small_run / 'checkpoint.pt'} does not fit the model" in err and "model 'cnn4b'" in err
    assert "put the model and model_kwargs it was trained with into config.json" in err
    (small_run / "config.json").write_text(json.dumps({**config, "model_kwargs": {"widht": 3}}))
    assert _evaluate(small_run, "--attribution", "saliency") == 2
    err = capsys.readouterr().err
    assert "the model 'cnn3b' cannot be built with the model_kwargs {'widht': 3} of" in err and "'widht'" in err
    assert not (small_run / "metrics.json").exists()


def _digit_folder(root, mnist_test, sizes: dict[int, int]):
    """ROOT/<digit>/<i>.png from real MNIST test digits 0 and 1; digit d's images saved at sizes[d]×sizes[d]."""
    from PIL import Image

    for digit, side in sizes.items():
        (root / str(digit)).mkdir(parents=True)
        picked = (mnist_test.y == digit).nonzero().flatten()[:10]
        for i in picked.tolist():
            image = Image.fromarray((mnist_test.x[i, 0] * 255).byte().numpy(), mode="L")
            image.resize((side, side)).save(root / str(digit) / f"{i}.png")
    return root


def test_an_image_folder_with_several_sizes_asks_for_one(tmp_path, mnist_test, capsys):
    folder = _digit_folder(tmp_path / "digits", mnist_test, {0: 28, 1: 32})
    base = ["train", "--data", f"folder:{folder}", "--mode", "L", "--model", "cnn3b", "--epochs", "1",
            "--workers", "0", "--batch-size", "8", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"the images of {folder} come in several sizes (H×W)" in err and "is 28×28" in err and "is 32×32" in err
    assert "--image-size N --crop N" in err
    assert main([*base, "--image-size", "28", "--crop", "28", "--out", str(tmp_path / "b")]) == 0
    assert "test accuracy" in capsys.readouterr().out


def _train(tmp_path, name: str, *args: str) -> int:
    return main(["train", *args, "--epochs", "1", "--limit-train", "60", "--limit-test", "30", "--batch-size", "30",
                 "--out", str(tmp_path / name), "--no-progress"])


def test_train_takes_every_data_set_it_can_train_on(tmp_path, capsys):
    assert _train(tmp_path, "decoy", "--dataset", "decoy-mnist", "--penalty", "cdep=10") == 0
    assert _train(tmp_path, "series", "--dataset", "ucr/gunpoint", "--penalty", "smoothness=0.1") == 0
    assert _train(tmp_path, "colour", "--dataset", "color-mnist") == 0
    capsys.readouterr()
    decoy, series, colour = (json.loads((tmp_path / n / "config.json").read_text()) for n in ("decoy", "series", "colour"))
    assert (decoy["dataset"], decoy["model"]) == ("decoy-mnist", "cdep_decoymnist")
    assert (series["dataset"], series["model"], series["model_kwargs"]) == ("ucr/GunPoint", "tcn",
                                                                           {"in_channels": 1, "num_classes": 2})
    assert (colour["dataset"], colour["model"]) == ("color-mnist", "cdep_colormnist")
    assert main(["evaluate", str(tmp_path / "series"), "--metrics", "morf", "--limit", "8", "--no-progress"]) == 0
    assert _train(tmp_path, "text", "--dataset", "sst") == 2
    assert "`explainreg study sst-bias`" in capsys.readouterr().err
    assert _train(tmp_path, "typo", "--dataset", "decoy-mnsit") == 2
    err = capsys.readouterr().err
    assert "is not a data set train knows" in err and "decoy-mnist" in err and "ucr/GunPoint" in err
    assert _train(tmp_path, "norm", "--dataset", "decoy-mnist", "--normalize") == 2
    assert "leave --normalize out" in capsys.readouterr().err


def test_mask_penalties_without_masks_say_which_data_sets_carry_them(tmp_path, mnist_test, capsys):
    for penalty in ("cdep", "rrr", "expected_gradients", "rrr_gradcam", "rbr"):
        assert _train(tmp_path, penalty, "--penalty", f"{penalty}=1") == 2
        err = capsys.readouterr().err
        assert f"--penalty {penalty} needs annotation masks" in err and "mnist has none" in err
        assert "--dataset decoy-mnist or decoy-fmnist" in err and "--data folder:PATH --masks MASKS" in err
        assert not (tmp_path / penalty).exists()
    folder = _digit_folder(tmp_path / "digits", mnist_test, {0: 28, 1: 28})
    assert _train(tmp_path, "f", "--data", f"folder:{folder}", "--mode", "L", "--model", "cnn3b", "--workers", "0",
                  "--penalty", "rrr=1") == 2
    assert f"--data folder:{folder} without --masks has none" in capsys.readouterr().err


def _evidence_folder(root, digits):
    """EVIDENCE/<class>/<stem>.png: the digit's own pixels of each image of ``digits``."""
    import numpy as np
    from PIL import Image

    for image in digits.rglob("*.png"):
        (root / image.parent.name).mkdir(parents=True, exist_ok=True)
        pixels = np.array(Image.open(image)) > 0
        Image.fromarray((pixels * 255).astype(np.uint8), mode="L").save(root / image.parent.name / image.name)
    return root


def test_hint_gets_reward_masks_from_the_command_line(tmp_path, mnist_test, capsys):
    assert _train(tmp_path, "none", "--dataset", "decoy-mnist", "--penalty", "hint=1") == 2
    assert "--penalty hint needs reward masks" in capsys.readouterr().err
    assert _train(tmp_path, "decoy", "--dataset", "decoy-mnist", "--penalty", "hint=1", "--evidence-masks",
                  "object") == 0
    history = json.loads((tmp_path / "decoy" / "history.json").read_text())
    assert history[0]["train_hint"] > 0
    digits = _digit_folder(tmp_path / "digits", mnist_test, {0: 28, 1: 28})
    evidence = _evidence_folder(tmp_path / "evidence", digits)
    assert _train(tmp_path, "folder", "--data", f"folder:{digits}", "--mode", "L", "--model", "cnn3b", "--workers",
                  "0", "--penalty", "hint=1", "--evidence-masks", str(evidence)) == 0
    config = json.loads((tmp_path / "folder" / "config.json").read_text())
    assert config["image_folder"]["evidence_masks"] == str(evidence.resolve())
    assert json.loads((tmp_path / "folder" / "history.json").read_text())[0]["train_hint"] > 0
    assert "evidence masks from" in capsys.readouterr().out
    assert _train(tmp_path, "m", "--dataset", "mnist", "--penalty", "hint=1", "--evidence-masks", "object") == 2
    assert "--evidence-masks object takes the object's pixels of decoy-mnist or decoy-fmnist" in \
        capsys.readouterr().err


def test_mask_messages_and_evidence_masks_read_the_data_set_registry(tmp_path, mnist_test, capsys):
    from dataclasses import replace

    from explainreg.cli.train import check_masks
    from explainreg.data import DATASETS, CarriedMask, carrying_masks

    decoy = DATASETS["decoy-mnist"]
    masks = (CarriedMask("mask", "must_not_use", help="the stamped corner"),
             CarriedMask("reward_mask", "evidence", option="reward_mask", help="the stroke pixels"))
    DATASETS.register("stamped-digits", replace(decoy, name="stamped-digits", load=lambda name, *a, **k:
                                                decoy.load("decoy-mnist", *a, **k), masks=masks))
    try:
        assert carrying_masks("must_not_use")[-1] == carrying_masks("evidence", on_request=True)[-1] == "stamped-digits"
        with pytest.raises(ValueError, match=r"--dataset decoy-mnist or decoy-fmnist or stamped-digits \(the decoy "
                                             r"corners, the stamped corner\)"):
            check_masks(["cdep"], {}, "mnist")
        with pytest.raises(ValueError, match=r"--evidence-masks object with --dataset decoy-mnist or decoy-fmnist or "
                                             r"stamped-digits \(the object's own pixels, the stroke pixels\)"):
            check_masks(["hint"], {"mask"}, "mnist")
        assert _train(tmp_path, "s", "--dataset", "stamped-digits", "--model", "cnn3b", "--penalty", "hint=1",
                      "--evidence-masks", "object") == 0, capsys.readouterr().err
        assert json.loads((tmp_path / "s" / "history.json").read_text())[0]["train_hint"] > 0
    finally:
        DATASETS.pop("stamped-digits")
    assert "stamped-digits" not in carrying_masks("must_not_use")
    with pytest.raises(ValueError) as error:
        check_masks(["cdep"], {}, "mnist")
    assert "stamped" not in str(error.value) and "--dataset decoy-mnist or decoy-fmnist (the decoy corners)" in \
        str(error.value)


def test_threads_sets_torch_threads(small_run, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert _train(tmp_path, "t", "--threads", "1") == 0 and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert _evaluate(small_run, "--threads", "1") == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main(["train", "--threads", "0"])
    assert "--threads" in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    for command, expected in (("train", ["passes over the training images (default: 8)", "(default: 0.001)",
                                         "(default: mnist)", "(default: 0.1)"]),
                              ("evaluate", ["images per update (default: 250)", "(default: saliency)",
                                            "ROAR retraining epochs (the seed's) (default: 6)"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(e in text for e in expected), (command, [e for e in expected if e not in text])
        assert "(default: None)" not in text and "(default: False)" not in text


def test_device_meta_at_the_command_line_is_a_clear_error(small_run, tmp_path, capsys):
    assert _train(tmp_path, "meta", "--device", "meta") == 2
    assert "device='meta' holds shapes without values" in capsys.readouterr().err
    assert _evaluate(small_run, "--device", "meta") == 2
    assert "device='meta' holds shapes without values" in capsys.readouterr().err


def test_the_interruption_message_advises_resume_only_where_the_command_has_it(monkeypatch, capsys):
    from explainreg.cli import datasets

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "run", interrupted)
    assert main(["datasets"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" not in err


def test_evaluate_interrupted_before_any_result_says_nothing_was_written(small_run, capsys, monkeypatch):
    import importlib

    import explainreg.attribution

    evaluate_module = importlib.import_module("explainreg.cli.evaluate")  # it calls the attribute it imported

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "attribute", interrupted)
    assert _evaluate(small_run, "--attribution", "saliency") == 130
    assert "interrupted before the first result was finished; nothing was written" in capsys.readouterr().err
    assert not (small_run / "metrics.json").exists()
    monkeypatch.undo()
    assert _evaluate(small_run, "--attribution", "saliency", "--resume") == 0
    assert "metrics.json holds no earlier results; computing every part" in capsys.readouterr().err
