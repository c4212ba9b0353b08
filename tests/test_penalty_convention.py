"""The penalties' one ``convention`` switch: ``convention="seed"`` equals the deprecated
``compat=True`` on real MNIST images, the deprecated spelling warns, unsupported values are refused, and
run configs keep recording the ``compat`` flag so runs made with explainreg 0.1 resume."""
from __future__ import annotations

import pytest
import torch

from explainreg._validation import InvalidParameterError
from explainreg.models import cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import ExpectedGradients, Smoothness
from explainreg.penalties import functional as P
from explainreg.saliency import saliency


@pytest.fixture(scope="module")
def batch(mnist_test):
    torch.manual_seed(0)
    model = cdep_decoymnist_net().eval()
    x, y = mnist_test.x[:8] * 2 - 1, mnist_test.y[:8]
    mask = torch.zeros(8, 1, 28, 28)
    mask[:, :, 10:18, 10:18] = 1  # over the strokes (the corners are blank in every image: EG = 0 there)
    return model, x, y, mask


def test_smoothness_seed_convention_equals_compat_and_the_seed_formula(batch):
    model, x, y, _ = batch
    new = Smoothness(convention="seed")(model, x, y)
    with pytest.warns(DeprecationWarning, match="convention='seed'"):
        old = Smoothness(compat=True)(model, x, y)
    assert torch.equal(new, old)
    g = saliency(model, x, y)
    padded = torch.nn.functional.pad(g, (2, 0, 2, 0))          # the seed's pad-then-roll, o = 2
    seed = (g - padded[..., :-2, 2:]).abs().mean() + (g - padded[..., 2:, :-2]).abs().mean()
    torch.testing.assert_close(new, seed)
    assert not torch.equal(new, Smoothness()(model, x, y))     # the two conventions differ
    with pytest.warns(DeprecationWarning):
        assert torch.equal(P.smoothness(g, compat=True), P.smoothness(g, convention="seed"))


def test_expected_gradients_seed_convention_equals_compat(batch):
    model, x, y, mask = batch
    new = ExpectedGradients(n_refs=3, convention="seed")(model, x, y, mask=mask,
                                                          generator=torch.Generator().manual_seed(1))
    with pytest.warns(DeprecationWarning):
        old = ExpectedGradients(n_refs=3, compat=True)(model, x, y, mask=mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(new, old) and new > 0


def test_unsupported_conventions_are_refused_with_the_accepted_values():
    with pytest.raises(InvalidParameterError, match="'explainreg', 'seed' for Smoothness; got 'quantus'"):
        Smoothness(convention="quantus")
    with pytest.raises(InvalidParameterError, match="conventions are"):
        ExpectedGradients(convention="nonsense")
    with pytest.raises(InvalidParameterError, match="conflicts"), pytest.warns(DeprecationWarning):
        Smoothness(compat=True, convention="quantus")


def test_settings_say_convention_and_run_configs_keep_compat():
    penalty = Smoothness(convention="seed")
    assert penalty.settings()["convention"] == "seed" and "compat" not in penalty.settings()
    recorded = Objective({penalty: 0.1, ExpectedGradients(n_refs=2): 1.0}).config()
    assert recorded[0]["settings"] == {"offset": 1, "compat": True, "target": "logit"}
    assert recorded[1]["settings"]["compat"] is False
