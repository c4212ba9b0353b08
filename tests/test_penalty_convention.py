"""The penalties' one ``convention`` switch: ``convention="seed"`` is the seed's formula on real MNIST
images, unsupported values are refused, run configs record ``convention``, and a run folder written by
explainreg 0.1 (with the flag ``compat``) loads through :func:`explainreg.runs.migrate`."""
from __future__ import annotations

import json

import pytest
import torch

from explainreg._validation import InvalidParameterError
from explainreg.models import cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import ExpectedGradients, Smoothness
from explainreg.penalties import functional as P
from explainreg.runs import read_config, settings_changes
from explainreg.gradients import input_gradient


@pytest.fixture(scope="module")
def batch(mnist_test):
    torch.manual_seed(0)
    model = cdep_decoymnist_net().eval()
    x, y = mnist_test.x[:8] * 2 - 1, mnist_test.y[:8]
    mask = torch.zeros(8, 1, 28, 28)
    mask[:, :, 10:18, 10:18] = 1  # over the strokes (the corners are blank in every image: EG = 0 there)
    return model, x, y, mask


def test_smoothness_seed_convention_is_the_seed_formula(batch):
    model, x, y, _ = batch
    new = Smoothness(convention="seed")(model, x, y)
    with pytest.raises(TypeError, match="compat"):
        Smoothness(compat=True)
    g = input_gradient(model, x, y)
    padded = torch.nn.functional.pad(g, (2, 0, 2, 0))          # the seed's pad-then-roll, o = 2
    seed = (g - padded[..., :-2, 2:]).abs().mean() + (g - padded[..., 2:, :-2]).abs().mean()
    torch.testing.assert_close(new, seed)
    assert not torch.equal(new, Smoothness()(model, x, y))     # the two conventions differ
    torch.testing.assert_close(P.smoothness(g, convention="seed"), seed)


def test_expected_gradients_seed_convention_is_the_unaveraged_sum(batch):
    model, x, y, mask = batch
    new = ExpectedGradients(n_refs=3, convention="seed")(model, x, y, mask=mask,
                                                          generator=torch.Generator().manual_seed(1))
    ours = ExpectedGradients(n_refs=3)(model, x, y, mask=mask, generator=torch.Generator().manual_seed(1))
    assert new > 0 and not torch.equal(new, ours)


def test_unsupported_conventions_are_refused_with_the_accepted_values():
    with pytest.raises(InvalidParameterError, match="'explainreg', 'seed' for Smoothness; got 'quantus'"):
        Smoothness(convention="quantus")
    with pytest.raises(InvalidParameterError, match="conventions are"):
        ExpectedGradients(convention="nonsense")


def test_settings_and_run_configs_say_convention_and_old_run_folders_migrate(tmp_path):
    penalty = Smoothness(convention="seed")
    assert penalty.settings()["convention"] == "seed" and "compat" not in penalty.settings()
    recorded = Objective({penalty: 0.1, ExpectedGradients(n_refs=2): 1.0}).config()
    assert recorded[0]["settings"] == {"offset": 1, "convention": "seed", "score": "logit"}
    assert recorded[1]["settings"]["convention"] == "explainreg"
    # a config.json as explainreg 0.1 wrote it: target (the scalar kind) and compat (a flag)
    old = {"model": "cnn3b", "train": {"epochs": 1, "target": 3},
           "objective": [{"name": "smoothness", "penalty": "smoothness", "weight": 0.1,
                          "settings": {"offset": 1, "convention": "seed", "score": "logit"}},
                         {"name": "expected_gradients", "penalty": "expected_gradients", "weight": 1.0,
                          "settings": {"n_refs": 2, "compat": False}}]}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = read_config(tmp_path)
    assert [o["settings"] for o in loaded["objective"]] == [s["settings"] for s in recorded]
    assert loaded["train"] == {"epochs": 1, "target": 3}   # a class index named target stays as it is
    assert settings_changes(loaded, {**old, "objective": recorded}, 0) == []   # the old run resumes unchanged
