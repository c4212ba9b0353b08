"""A user's own model through ``--model module:callable`` and image folders through ``--data folder:PATH``:
train, resume, evaluate; the deep reference nets; bad model paths."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from explainreg.models.backbones import FeatureExtractor, ResNet, resnet18, vgg_small
from explainreg.cli import main
from explainreg.data import load_dataset
from explainreg.models import ModelImportError, build_model
from explainreg.runs import load_run

USER_MODULE = """
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, width=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(width * 16, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def broken():
    return "not a module"
"""


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    name = f"user_nets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """Real MNIST test digits 0–2 written as PNGs, ROOT/<digit>/<i>.png, with a mask on every third."""
    root = tmp_path_factory.mktemp("digits")
    data = load_dataset("mnist", "test", limit=400)
    pixels = (data.x[:, 0] * 255).round().to(torch.uint8).numpy()
    for c in range(3):
        for folder in (root / "img" / str(c), root / "mask" / str(c)):
            folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(data.y.numpy() == c)[:30]):
            Image.fromarray(pixels[i], mode="L").save(root / "img" / str(c) / f"{k}.png")
            if k % 3 == 0:
                mask = np.zeros((28, 28), np.uint8)
                mask[20:, 20:] = 1
                Image.fromarray(mask).save(root / "mask" / str(c) / f"{k}.png")
    return root


def test_user_model_trains_resumes_and_evaluates(tmp_path, user_module, digit_folder, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", f"folder:{digit_folder / 'img'}", "--masks", str(digit_folder / "mask"), "--mode", "L",
            "--model", f"{user_module}:TinyNet", "--model-kwargs", '{"width": 6}', "--penalty", "rrr=1",
            "--batch-size", "16", "--workers", "0", "--seed", "1", "--out", str(out), "--no-progress"]
    assert main(args + ["--epochs", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == f"{user_module}:TinyNet"
    assert config["model_kwargs"] == {"num_classes": 3, "in_channels": 1, "width": 6}
    assert config["model_path"] == str((tmp_path / "code").resolve())
    assert config["image_folder"]["classes"] == ["0", "1", "2"]
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["train_rrr"] >= 0
    # a fresh session: the module is not on sys.path any more; the run's recorded folder finds it
    sys.modules.pop(user_module, None)
    sys.path.remove(str(tmp_path / "code"))
    model, _ = load_run(out)
    assert type(model).__name__ == "TinyNet" and model.conv.out_channels == 6
    capsys.readouterr()
    assert main(["evaluate", str(out), "--metrics", "complexity,morf", "--attribution", "saliency,gradcam",
                 "--limit", "12", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # the folder's masks (--masks) mark what the model must not use: the behavioural metrics come beside
    assert metrics["n_images"] == 12 and set(metrics["results"]) == {"saliency", "gradcam", "none"}
    assert {"flip_rate", "group_accuracy", "decision_share"} <= set(metrics["results"]["none"])
    # the checkpointed weights are the ones evaluated: same logits as the reloaded model
    state = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_bad_model_paths(user_module, tmp_path, capsys):
    with pytest.raises(ModelImportError, match="module 'no_such_package_xyz.nets' does not import"):
        build_model("no_such_package_xyz.nets:Net")
    with pytest.raises(ModelImportError, match="has no attribute 'Missing'"):
        build_model(f"{user_module}:Missing")
    with pytest.raises(ModelImportError, match="returned a str, not an nn.Module"):
        build_model(f"{user_module}:broken")
    with pytest.raises(ModelImportError, match="must be 'module:callable'"):
        build_model(":Net")
    code = main(["train", "--model", "no_such_package_xyz:Net", "--limit-train", "10", "--limit-test", "10",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "does not import" in capsys.readouterr().err
    code = main(["train", "--data", f"folder:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "r2"), "--no-progress"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_user_model_on_builtin_dataset(tmp_path, user_module):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--model", f"{user_module}:TinyNet", "--epochs", "1",
                 "--limit-train", "60", "--limit-test", "30", "--batch-size", "30", "--out", str(out),
                 "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_kwargs"] == {"in_channels": 1}
    model, _ = load_run(out)
    assert model.fc.out_features == 10


def test_resnet18_and_vgg_shapes():
    torch.manual_seed(0)
    net = resnet18(num_classes=7, width=8)
    x = torch.rand(2, 3, 64, 64)
    assert net(x).shape == (2, 7)
    assert FeatureExtractor(net)(x).shape == (2, 64) and net.num_features == 64
    assert sum(p.numel() for p in resnet18().parameters()) == 11_689_512  # torchvision's ResNet-18 count
    small = resnet18(num_classes=3, in_channels=1, width=4, small_input=True)
    assert small(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    vgg = vgg_small(num_classes=5, width=4)
    assert vgg(torch.rand(3, 3, 40, 40)).shape == (3, 5)
    with pytest.raises(ValueError, match="layers must give four"):
        ResNet((2, 2, 2))
    with pytest.raises(TypeError, match="no forward_features"):
        FeatureExtractor(torch.nn.Linear(2, 2))
