"""Training refuses a penalty whose mask the data state to mark the other meaning, and converts by the
one stated rule (the complement 1 − m) only when asked (documentation: guide/concepts)."""
from __future__ import annotations

import json

import pytest
import torch

from explainreg.cli import main
from explainreg.data import load_dataset
from explainreg.data.datasets import ArrayDataset
from explainreg.data.shortcuts import decoy_mnist, masked_dataset
from explainreg.inputs import complement_mask, mask_route, stated_mask_meanings
from explainreg.models import build_model
from explainreg.objective import Objective
from explainreg.penalties import HINT, RRR, Locality
from explainreg.training import TrainConfig, train

CONFIG = TrainConfig(epochs=1, batch_size=32, progress=False)


@pytest.fixture(scope="module")
def decoy():
    """128 DecoyMNIST training images; ``mask`` = the four corners, stated as what the model must not use."""
    return load_dataset("decoy-mnist", "train", limit=128)


def _net():
    torch.manual_seed(0)
    return build_model("cdep_decoymnist")


def test_decoy_data_state_their_masks(decoy):
    assert stated_mask_meanings(decoy) == {"mask": "must_not_use"}
    xil = decoy_mnist("train", limit=64, mask="patch", reward_mask=True)
    assert stated_mask_meanings(xil) == {"mask": "must_not_use", "reward_mask": "evidence"}


@pytest.mark.parametrize("penalty", [Locality(), HINT(reduction="mean")])
def test_train_refuses_an_evidence_penalty_on_shortcut_masks(decoy, tmp_path, penalty):
    """Locality's target map and HINT's reward mark where the saliency should be: handed the decoy corners they
    would pull the explanation onto the shortcut."""
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    data = decoy if penalty.name == "locality" else ArrayDataset(
        decoy.x, decoy.y, {"mask": decoy.extras["mask"], "reward_mask": decoy.extras["mask"]}, name="decoy-corners",
        mask_meanings={"mask": "must_not_use", "reward_mask": "must_not_use"})
    with pytest.raises(ValueError) as info:
        train(model, Objective({penalty: 1.0}), data, config=CONFIG, run_dir=tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"{penalty.name} is defined for masks that mark where the evidence is")
    assert "marks what the model must not use (must_not_use)" in message and "train_set (" in message
    assert "mask_convert='complement'" in message and "--mask-convert complement" in message
    assert "HINT, Locality" not in message and "CDEP, RRR" in message  # the penalties defined for such masks
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before any step
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_shortcut_penalty_on_evidence_masks(decoy, tmp_path):
    objects = masked_dataset(decoy.x, decoy.y, decoy.x > 0, meaning="evidence", name="digits")
    with pytest.raises(ValueError, match="rrr is defined for masks that mark what the model must not use, but `mask` "
                                         r"of train_set \(digits\) marks where the evidence is"):
        train(_net(), Objective({RRR(): 10.0}), objects, config=CONFIG)


def test_objective_own_statement_is_checked_and_contradictions_refused(decoy):
    with pytest.raises(ValueError, match="rrr is defined for masks that mark what the model must not use"):
        Objective({RRR(): 1.0}, mask_meanings={"mask": "evidence"})
    with pytest.raises(ValueError, match=r"`mask` was stated to mark evidence \(the Objective's mask_meanings, "
                                         r"--mask-meaning\), and train_set \(decoymnist\) says must_not_use"):
        train(_net(), Objective({HINT(): 1.0}, mask_meanings={"mask": "evidence"}), decoy, config=CONFIG)
    with pytest.raises(ValueError, match="mask_convert must be None"):
        Objective({RRR(): 1.0}, mask_convert="invert")


def test_complement_is_trained_on_only_when_asked(decoy):
    """With mask_convert='complement' each penalty's term equals the penalty called on 1 − m of the data's mask;
    the penalty that reads the stated meaning gets the mask unchanged."""
    model = _net()
    x, y, corners = decoy.x[:32], decoy.y[:32], decoy.extras["mask"][:32]
    objective = Objective({RRR(): 1.0, Locality(): 1.0, HINT(reduction="mean"): 1.0}, mask_convert="complement")
    routes = objective.check_masks(stated_mask_meanings(decoy))
    assert [(r.read, r.to, r.complement) for r in routes.values()] == [
        ("mask", "mask", False), ("mask", "mask", True), ("mask", "reward_mask", True)]
    out = objective(model, x, y, mask=corners)
    assert out.terms["rrr"] == pytest.approx(float(RRR()(model, x, y, mask=corners).detach()), rel=1e-5)
    assert out.terms["locality"] == pytest.approx(float(Locality()(model, x, y, mask=~corners).detach()), rel=1e-5)
    assert out.terms["locality"] != pytest.approx(float(Locality()(model, x, y, mask=corners).detach()), rel=1e-3)
    assert out.terms["hint"] == pytest.approx(float(HINT(reduction="mean")(model, x, y, reward_mask=~corners).detach()),
                                              rel=1e-5)
    recorded = {c["name"]: c.get("mask") for c in objective.config()}
    assert recorded == {"rrr": None, "locality": "1 − mask", "hint": "1 − mask as reward_mask"}


def test_evidence_mask_reaches_hint_under_its_own_name(decoy):
    """HINT reads `reward_mask`; data whose one mask is stated as evidence hand it over unchanged."""
    objects = masked_dataset(decoy.x[:32], decoy.y[:32], decoy.x[:32] > 0, meaning="evidence")
    objective = Objective({HINT(reduction="mean"): 1.0})
    result = train(_net(), objective, objects, config=CONFIG)
    assert result.history[0]["train_hint"] > 0
    model = _net()
    out = objective(model, objects.x, objects.y, **objects.extras)
    direct = HINT(reduction="mean")(model, objects.x, objects.y, reward_mask=objects.extras["mask"])
    assert out.terms["hint"] == pytest.approx(float(direct.detach()), rel=1e-5)


def test_xil_data_train_rrr_and_hint_as_stated():
    data = decoy_mnist("train", limit=64, mask="patch", reward_mask=True)
    objective = Objective({RRR(): 1.0, HINT(reduction="mean"): 1.0})
    train(_net(), objective, data, config=CONFIG)
    assert all(r.as_is for r in objective.mask_routes.values())


def test_complement_rule_refuses_what_has_no_complement():
    with pytest.raises(ValueError, match="list of 2 blobs, which has no single complement"):
        complement_mask([torch.ones(2, 2), torch.zeros(2, 2)], "cdep")
    with pytest.raises(ValueError, match=r"needs mask in \[0, 1\].*\[0, 255\]"):
        complement_mask(torch.tensor([0.0, 255.0]), "rrr")
    soft = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(complement_mask(soft), torch.tensor([1.0, 0.75, 0.0]))
    assert mask_route("rrr", "mask", "must_not_use", {}).as_is  # nothing stated: read as it is


def test_cli_train_refuses_and_converts(tmp_path, capsys):
    common = ["train", "--dataset", "decoy-mnist", "--limit-train", "64", "--limit-test", "32", "--epochs", "1",
              "--batch-size", "32", "--no-progress", "--device", "cpu", "--threads", "1"]
    code = main(common + ["--penalty", "locality=1", "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert code != 0 and "locality is defined for masks that mark where the evidence is" in err
    assert "--dataset decoy-mnist marks what the model must not use" in err and "--mask-convert complement" in err
    assert not (tmp_path / "refused").exists()
    code = main(common + ["--penalty", "hint=1", "--out", str(tmp_path / "hint")])
    assert code != 0 and "train on the complement of the data's shortcut masks with --mask-convert complement" in \
        capsys.readouterr().err
    code = main(common + ["--penalty", "locality=1", "--mask-meaning", "evidence", "--out", str(tmp_path / "contra")])
    assert code != 0 and "--dataset decoy-mnist says must_not_use; state one meaning" in capsys.readouterr().err
    assert main(common + ["--penalty", "hint=1", "--mask-convert", "complement", "--out", str(tmp_path / "hint")]) == 0
    config = json.loads((tmp_path / "hint" / "config.json").read_text())
    assert config["objective"][0]["mask"] == "1 − mask as reward_mask"


def _folder_with_corner_masks(root, mnist_test):
    """IMAGES/<digit>/<i>.png (real MNIST test digits 0 and 1) and MASKS/<digit>/<i>.png: the top-left 6×6 corner."""
    import numpy as np
    from PIL import Image

    images, masks = root / "images", root / "masks"
    corner = np.zeros((28, 28), np.uint8)
    corner[:6, :6] = 255
    for digit in (0, 1):
        (images / str(digit)).mkdir(parents=True)
        (masks / str(digit)).mkdir(parents=True)
        for i in (mnist_test.y == digit).nonzero().flatten()[:12].tolist():
            Image.fromarray((mnist_test.x[i, 0] * 255).byte().numpy(), mode="L").save(images / str(digit) / f"{i}.png")
            Image.fromarray(corner, mode="L").save(masks / str(digit) / f"{i}.png")
    return images, masks


def test_cli_train_on_an_image_folder_states_its_masks(tmp_path, mnist_test, capsys):
    images, masks = _folder_with_corner_masks(tmp_path, mnist_test)
    common = ["train", "--data", f"folder:{images}", "--masks", str(masks), "--mode", "L", "--model", "cnn3b",
              "--workers", "0", "--epochs", "1", "--batch-size", "8", "--no-progress", "--device", "cpu"]
    # --masks mark what the model must not use unless --mask-meaning says otherwise
    assert main(common + ["--penalty", "locality=1", "--out", str(tmp_path / "refused")]) != 0
    assert f"`mask` of --data folder:{images} marks what the model must not use" in capsys.readouterr().err
    assert main(common + ["--penalty", "rrr=1", "--mask-meaning", "evidence", "--out", str(tmp_path / "rrr")]) != 0
    assert "rrr is defined for masks that mark what the model must not use" in capsys.readouterr().err
    assert main(common + ["--penalty", "locality=1", "--mask-meaning", "evidence", "--out", str(tmp_path / "loc")]) == 0
    config = json.loads((tmp_path / "loc" / "config.json").read_text())
    assert config["image_folder"]["mask_meaning"] == "evidence" and "mask" not in config["objective"][0]
    assert main(common + ["--penalty", "hint=1", "--mask-convert", "complement", "--out", str(tmp_path / "hint")]) == 0
    config = json.loads((tmp_path / "hint" / "config.json").read_text())
    assert config["objective"][0]["mask"] == "1 − mask as reward_mask"
    assert "mask_meaning" not in config["image_folder"]  # the default meaning of --masks is not recorded
    assert json.loads((tmp_path / "hint" / "history.json").read_text())[0]["train_hint"] > 0
