"""Extra forward passes of penalties leave BatchNorm statistics alone; the one-pass saliency warns
once about training-mode BatchNorm (documentation: methods/gradient, methods/decomposition)."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from explainreg import modes
from explainreg.objective import Objective
from explainreg.penalties import CDEP, RRR, ExpectedGradients, Fidelity, GradientL1, SaliencyGuided, Symmetry


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 5), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).train()


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers()}


CORNERS = torch.zeros(28, 28)
CORNERS[:5, :5] = CORNERS[:5, -5:] = CORNERS[-5:, :5] = CORNERS[-5:, -5:] = 1


@pytest.mark.parametrize("penalty", [Fidelity(), Symmetry(), ExpectedGradients(n_refs=3), SaliencyGuided(),
                                     CDEP(), RRR(), GradientL1()], ids=lambda p: p.name)
def test_penalty_forwards_do_not_move_batchnorm_statistics(penalty, mnist_test):
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    model = bn_net()
    reference = copy.deepcopy(model)
    reference(x)  # the one forward pass of a training step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = Objective({penalty: 1.0}, seed=0)(model, x, y, mask=CORNERS)
    out.loss.backward()
    expected = buffers(reference)
    for name, value in buffers(model).items():
        torch.testing.assert_close(value, expected[name], msg=f"{penalty.name} moved {name}")
    # and the penalty is still computed with training-mode batch statistics (value unchanged)
    assert torch.isfinite(out.loss)


def test_frozen_statistics_keep_the_forward_value_and_restore_buffers(mnist_test):
    model = bn_net()
    x = mnist_test.x[:8]
    before = buffers(model)
    plain = copy.deepcopy(model)(x)
    with modes.frozen_norm_statistics(model):
        inside = model(x)
    torch.testing.assert_close(inside, plain)
    for name, value in buffers(model).items():
        torch.testing.assert_close(value, before[name])
    model(x)  # outside the block the statistics move as usual
    assert int(model[1].num_batches_tracked) == 1


def test_training_mode_batchnorm_warns_once_per_model(mnist_test):
    x, y = mnist_test.x[:8], mnist_test.y[:8]
    model = bn_net()
    with pytest.warns(UserWarning, match="BatchNorm layers in training mode"):
        GradientL1()(model, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        GradientL1()(model, x, y)  # once only
        GradientL1()(bn_net().eval(), x, y)  # eval mode: no warning


def test_cdep_uses_deterministic_dropout(mnist_test):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10)).train()
    x, y = mnist_test.x[:16], mnist_test.y[:16]
    a = CDEP()(model, x, y, mask=CORNERS)
    b = CDEP()(model, x, y, mask=CORNERS)
    torch.testing.assert_close(a, b)  # no fresh dropout mask per call
    assert model[3].training  # the mode is restored
    torch.testing.assert_close(a, CDEP()(model.eval(), x, y, mask=CORNERS))


def test_cdep_in_blob_chunks_equals_one_pass(mnist_test):
    """blob_chunk bounds CD's memory by one chunk (checkpointed); value and weight gradients unchanged."""
    from explainreg.data import color_mnist_blob_sampler
    from explainreg.models import cdep_colormnist_net

    x, y = mnist_test.x[:8].repeat(1, 3, 1, 1), mnist_test.y[:8]
    blobs = color_mnist_blob_sampler(n_blobs=5)(torch.Generator().manual_seed(0), x)
    grads = []
    for chunk in (None, 2):
        torch.manual_seed(0)
        model = cdep_colormnist_net()
        value = CDEP(blob_sampler=lambda generator, images: blobs, blob_chunk=chunk)(model, x, y)
        value.backward()
        grads.append((value.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-6, rtol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="blob_chunk"):
        CDEP(blob_chunk=0)
