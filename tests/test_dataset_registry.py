"""Every registered data set (``explainreg.data.DATASETS``) trains through ``explainreg train --dataset NAME``
for one epoch on a small subset of the real files (../shared/data), or, where train does not take it,
the command says what prepares it; ``explainreg datasets`` lists every one of them."""
from __future__ import annotations

import json
import re

import pytest
import torch

from explainreg.cli import main
from explainreg.data import DATASETS, available_datasets, dataset_family, load_dataset
from explainreg.registry import UnknownNameError


@pytest.mark.parametrize("name", available_datasets())
def test_train_takes_every_registered_data_set_or_names_what_prepares_it(name, tmp_path, capsys):
    family, canonical = dataset_family(name)
    code = main(["train", "--dataset", name, "--epochs", "1", "--limit-train", "40", "--limit-test", "20",
                 "--batch-size", "20", "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"])
    out, err = capsys.readouterr()
    if family.model is None:
        assert code == 2 and family.prepared_by in err and f"--dataset {name}" in err
        assert not (tmp_path / "run").exists()
        return
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["dataset"], config["model"]) == (canonical, family.model)
    shown = re.search(r"^train: (\d+) images .*^test: (\d+) images", out, re.S | re.M)
    assert shown and 0 < int(shown[1]) <= 40 and 0 < int(shown[2]) <= 20 and "limit 40" in config["train_source"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 1 and 0.0 <= history[0]["test_accuracy"] <= 1.0


def test_the_registry_describes_and_finds_every_data_set(capsys):
    assert main(["datasets"]) == 0
    printed = capsys.readouterr().out
    for family in DATASETS.values():
        assert f"{family.name}: {family.help}" in printed and family.help
        assert all(name in printed for name in family.names())
    assert dataset_family("FashionMNIST")[1] == "fashion-mnist" and dataset_family("ucr/gunpoint")[1] == "ucr/GunPoint"
    with pytest.raises(UnknownNameError, match="unknown data set 'cifar'.*mnist"):
        load_dataset("cifar")
    with pytest.raises(UnknownNameError, match="ucr is a family of data sets: name one as ucr/NAME"):
        load_dataset("ucr")
    with pytest.raises(UnknownNameError, match="mnist is one data set"):
        load_dataset("mnist/x")
    with pytest.raises(ValueError, match="is already registered"):
        DATASETS.register("rt", DATASETS["mnist"])


@pytest.mark.parametrize("name, features, classes", [("breast-cancer", 30, 2), ("wine", 13, 3)])
def test_the_tables_train_an_mlp_sized_from_the_data(name, features, classes, tmp_path, capsys):
    code = main(["train", "--dataset", name, "--epochs", "5", "--batch-size", "16", "--lr", "0.01", "--out",
                 str(tmp_path / "run"), "--no-progress", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "mlp" and config["model_kwargs"] == {"in_features": features, "num_classes": classes}
    test_set = load_dataset(name, "test")
    accuracy = json.loads((tmp_path / "run" / "history.json").read_text())[-1]["test_accuracy"]
    majority = float(torch.bincount(test_set.y).max()) / len(test_set)
    assert accuracy > majority + 0.2, (accuracy, majority)    # the standardised tables are nearly separable
