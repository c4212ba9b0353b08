"""LSTM, TCN and Transformer classifiers on real UCR series: shapes, layouts, causality, gradients."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from explainreg.data import load_dataset
from explainreg.models import build_model
from explainreg.gradients import input_gradient
from explainreg.models.sequence import TCNClassifier

ROOT = Path(os.environ.get("EXPLAINREG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
pytestmark = pytest.mark.skipif(not (ROOT / "ucr").is_dir(), reason="shared UCR data not found")


@pytest.fixture(scope="module")
def motions():
    d = load_dataset("ucr/BasicMotions", "train", ROOT)
    return d.x[:8], d.y[:8]


@pytest.mark.parametrize("name", ["lstm", "tcn", "transformer"])
def test_logits_layouts_and_double_backprop(name, motions):
    x, y = motions
    torch.manual_seed(0)
    model = build_model(name, in_channels=6, num_classes=4).eval()
    logits = model(x)
    assert logits.shape == (8, 4)
    twin = build_model(name, in_channels=6, num_classes=4, layout="BxTxF").eval()
    twin.load_state_dict(model.state_dict())
    assert torch.allclose(twin(x.transpose(1, 2)), logits, atol=1e-5)
    with pytest.raises(ValueError, match=r"expects a BxCxT batch with 6 channels .* looks laid out BxTxF"):
        model(x.transpose(1, 2))
    with pytest.raises(ValueError, match="expects a BxTxF batch with 6 channels"):
        twin(x)
    g = input_gradient(model, x, y)                      # create_graph: the saliency reaches the weights
    grads = torch.autograd.grad(g.abs().sum(), list(model.parameters()), allow_unused=True)
    assert sum(float(v.abs().sum()) for v in grads if v is not None) > 0


def test_tcn_is_causal(motions):
    x, _ = motions
    torch.manual_seed(0)
    tcn = TCNClassifier(6, 4).eval()
    h = tcn.blocks(x)
    changed = x.clone()
    changed[..., 60:] = torch.randn_like(changed[..., 60:])
    h2 = tcn.blocks(changed)
    assert torch.allclose(h[..., :60], h2[..., :60]) and not torch.allclose(h[..., 60:], h2[..., 60:])
    assert tcn.receptive_field == 91


def test_bad_settings():
    with pytest.raises(ValueError, match="layout must be one of"):
        build_model("lstm", in_channels=3, layout="BxFxT")
    with pytest.raises(ValueError, match="width .* must be divisible by heads"):
        build_model("transformer", in_channels=3, width=30, heads=4)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        build_model("tcn", in_channels=0)
