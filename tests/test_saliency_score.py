"""score= names the saliency's scalar kind (``target`` means the class, and is no keyword of the saliency
or the penalties); the recorded run config says "score"; the public API of the package; the one
stable-rank helper. Real MNIST images."""
from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import explainreg as er
from explainreg._random import descending_ranks, stable_ranks
from explainreg.objective import Objective
from explainreg.penalties import (RRR, Consistency, Fidelity, GradientL1, Locality, PenaltyContext, Smoothness,
                                  Symmetry)
from explainreg.penalties import functional as P
from explainreg.gradients import SCORES, forward_with_gradient, input_gradient

SCORED = [GradientL1, Smoothness, Locality, Fidelity, Consistency, Symmetry, RRR]


@pytest.fixture(scope="module")
def batch(mnist_test):
    torch.manual_seed(0)
    return er.models.cnn3b().eval(), mnist_test.x[:6], mnist_test.y[:6]


@pytest.mark.parametrize("score", SCORES)
def test_gradient_score_keyword_and_position_agree(batch, score):
    model, x, y = batch
    new = input_gradient(model, x, y, score=score, create_graph=False)
    torch.testing.assert_close(input_gradient(model, x, y, score, create_graph=False), new, rtol=0, atol=0)  # positional
    e, _, g = forward_with_gradient(model, x, y, score=score, create_graph=False)
    torch.testing.assert_close(g, new, rtol=0, atol=0)
    with pytest.raises(TypeError, match="target"):
        input_gradient(model, x, y, target=score)


@pytest.mark.parametrize("cls", SCORED, ids=lambda c: c.__name__)
def test_every_penalty_takes_score(batch, cls):
    model, x, y = batch
    new = cls(score="log_prob")
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731 - Symmetry draws its angle
    torch.testing.assert_close(new(model, x, y, generator=gen(), mask=(x > 0.5).float()),
                               cls(**{**new.settings(), "score": "log_prob"})(model, x, y, generator=gen(),
                                                                              mask=(x > 0.5).float()), rtol=0, atol=0)
    assert new.score == "log_prob" and new.settings()["score"] == "log_prob"
    assert "target" not in new.settings() and "score='log_prob'" in repr(new) and not hasattr(new, "target")
    with pytest.raises(TypeError, match="target"):
        cls(target="log_prob")
    with pytest.raises(ValueError, match="score must be one of 'logit', 'log_prob', 'nll', 'sum_log_prob'"):
        cls(score="prob")


def test_defaults_context_and_functional_spellings(batch):
    model, x, y = batch
    assert GradientL1().score == "logit" and RRR().score == "sum_log_prob"
    assert RRR("nll").channel_sum and not RRR(score="log_prob").channel_sum
    ctx = PenaltyContext(model, x, y)
    assert ctx.gradient("nll") is ctx.gradient(score="nll") and ctx.gradient() is ctx.gradient("logit")  # cached
    g = ctx.gradient("logit")
    torch.testing.assert_close(P.symmetry(model, x, y, g, 10.0, "logit"), P.symmetry(model, x, y, g, 10.0, score="logit"),
                               rtol=0, atol=0)
    S = sys.modules["explainreg.gradients"]
    assert not hasattr(S, "TARGETS") and not hasattr(S, "saliency_target")


def test_run_configs_record_score(batch):
    """A run folder's config.json records the scalar kind as ``score``, as the live settings say."""
    objective = Objective({Smoothness(convention="seed"): 0.1, RRR("nll"): 1.0})
    recorded = objective.config()
    assert recorded[0]["settings"] == {"offset": 1, "convention": "seed", "score": "logit"}
    assert recorded[1]["settings"]["score"] == "nll" and "target" not in recorded[1]["settings"]


@pytest.mark.synthetic
def test_stable_ranks_against_numpy_and_the_seeded_ranks_on_untied_scores():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 4, (5, 40), generator=g).float()                    # many exact ties
    expected = np.argsort(np.argsort(-s.numpy(), axis=1, kind="stable"), axis=1, kind="stable")
    np.testing.assert_array_equal(stable_ranks(s).numpy(), expected)
    expected_up = np.argsort(np.argsort(s.numpy(), axis=1, kind="stable"), axis=1, kind="stable")
    np.testing.assert_array_equal(stable_ranks(s, descending=False).numpy(), expected_up)
    untied = torch.rand(5, 40, generator=g)
    assert torch.equal(descending_ranks(untied, seed=3), stable_ranks(untied))  # ties are all that the seed moves
    tied = descending_ranks(s, seed=3, index=torch.arange(5) + 10)
    assert sorted(tied[0].tolist()) == list(range(40))
    assert (s.gather(1, tied.argsort(1)).diff(dim=1) <= 0).all()             # still sorted by decreasing score
    assert not torch.equal(tied, stable_ranks(s))                           # ties are shuffled, not raster order


@pytest.mark.synthetic
def test_the_package_shows_its_verbs_and_subpackages_and_imports_them_lazily():
    for name in ("input_gradient", "attribute", "decompose", "Objective", "metrics", "attribution", "decomposition",
                 "gradients", "penalties", "training", "data", "models", "studies"):
        assert name in er.__all__ and hasattr(er, name), name
    assert callable(er.input_gradient) and callable(er.attribute) and callable(er.decompose)
    import explainreg.gradients as gradients_module  # a dotted import gives the module, not a function
    assert isinstance(gradients_module, types.ModuleType) and gradients_module.input_gradient is er.input_gradient
    assert not hasattr(er, "saliency")  # the magnitude |g| is attribute(..., "saliency"); er.input_gradient is g
    assert er.Objective is Objective and er.metrics.MoRF is not None
    code = ("import sys, explainreg as er; loaded = [m for m in ('metrics', 'studies', 'training', 'penalties', "
            "'attribution', 'decomposition', 'data') if 'explainreg.' + m in sys.modules]; print(loaded); "
            "import explainreg.penalties.base; assert callable(er.input_gradient)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
