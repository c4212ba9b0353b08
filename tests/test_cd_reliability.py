"""Contextual decomposition on users' own models: a forward that depends on the model's mode, the
all-ones / all-zeros masks where a unit sees no input, and clear errors for what CD cannot do."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.decomposition import decompose
from explainreg.penalties.annotation import cdep


class ModeDependentNet(nn.Module):
    """A small MNIST CNN whose forward reads ``self.training``: a train-only shift and functional dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(4 * 12 * 12, 10)
        self.shift, self.p = 0.5, 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv(x)), 2)
        if self.training:
            h = h + self.shift
        h = F.dropout(h, self.p, training=self.training)
        return self.fc(h.flatten(1))


def _half_mask() -> torch.Tensor:
    mask = torch.zeros(28, 28)
    mask[:, :14] = 1
    return mask


def test_eval_decomposition_after_a_training_mode_cdep_call_is_the_eval_models(mnist_test):
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet(), mnist_test.x[:16], _half_mask()
    fresh = copy.deepcopy(net).eval()  # never decomposed: traced for the first time in eval mode
    net.train()
    cdep(net, x, mask).backward()
    net.eval()
    rel, irrel = decompose(net, x, mask)
    again = decompose(net, x, mask)
    rel_fresh, irrel_fresh = decompose(fresh, x, mask)
    logits = net(x).detach()
    scale = float(logits.abs().max())
    torch.testing.assert_close(rel + irrel, logits, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(rel, rel_fresh)
    torch.testing.assert_close(irrel, irrel_fresh)
    torch.testing.assert_close(again, (rel, irrel))


def test_training_mode_cdep_is_deterministic_with_functional_dropout(mnist_test):
    """CDEP decomposes the deterministic network: ``F.dropout(..., training=True)`` is the identity
    in the CD pass, as ``nn.Dropout`` layers are, so two calls on the same batch agree."""
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet().train(), mnist_test.x[:16], _half_mask()
    first, second = cdep(net, x, mask), cdep(net, x, mask)
    torch.testing.assert_close(first, second)
    no_dropout = copy.deepcopy(net)
    no_dropout.p = 0.0
    torch.testing.assert_close(first, cdep(no_dropout, x, mask))


def test_a_changed_plain_setting_is_traced_again(mnist_test):
    torch.manual_seed(0)
    net, x, mask = ModeDependentNet().train(), mnist_test.x[:16], _half_mask()
    decompose(net, x, mask)
    net.shift = -0.25
    torch.manual_seed(1)
    rel, irrel = decompose(net, x, mask)
    torch.manual_seed(1)
    logits = net(x).detach()  # the same dropout draw: CD in training mode shares one mask between the parts
    torch.testing.assert_close(rel + irrel, logits, atol=1e-5 * float(logits.abs().max()), rtol=1e-5)
