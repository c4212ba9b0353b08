"""Grad-CAM (attribution method ``gradcam``) on Conv1d and on a named Conv2d layer against a hand
computation: α_k = mean over positions of ∂z_t/∂A_k, cam = Σ_k α_k A_k, upsampled to the input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.attribution import attribute
from explainreg.backbones import resnet18
from explainreg.data import load_dataset
from explainreg.data.ucr import load_ucr
from explainreg.models import cnn3b


def hand_gradcam(model, layer, x, target, mode):
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.update(a=o))
    logits = model(x)
    handle.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), a)
    alpha = g.mean(dim=tuple(range(2, g.dim())), keepdim=True)
    cam = (alpha * a).sum(1, keepdim=True)
    up = F.interpolate(cam, size=tuple(x.shape[2:]), mode=mode, align_corners=False)
    return up.expand_as(x).detach()


def test_gradcam_conv1d_on_real_series():
    data = load_ucr("GunPoint", "train", limit=8)
    x, y = data.x, data.y
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 5), nn.ReLU(), nn.Conv1d(4, 6, 5, stride=2), nn.ReLU(),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    a = attribute(model, x, y, "gradcam")  # default: the last Conv1d ("2")
    expected = hand_gradcam(model, model[2], x, y, "linear")
    assert a.shape == x.shape and torch.allclose(a, expected, atol=1e-6)
    first = attribute(model, x, y, "gradcam", layer="0")
    assert torch.allclose(first, hand_gradcam(model, model[0], x, y, "linear"), atol=1e-6)
    assert not torch.allclose(first, a)


def test_gradcam_named_layer_on_real_images():
    data = load_dataset("mnist", "test", limit=6)
    torch.manual_seed(0)
    model = cnn3b().eval()
    for name, mode in (("0", "bilinear"), ("3", "bilinear")):
        a = attribute(model, data.x, data.y, "gradcam", layer=name)
        assert torch.allclose(a, hand_gradcam(model, model[int(name)], data.x, data.y, mode), atol=1e-6)
    net = resnet18(num_classes=10, in_channels=3, width=4, small_input=True).eval()
    x = data.x.expand(-1, 3, -1, -1).contiguous()
    a = attribute(net, x, data.y, "gradcam", layer="layer3.1.conv2")
    assert torch.allclose(a, hand_gradcam(net, net.layer3[1].conv2, x, data.y, "bilinear"), atol=1e-6)
    default = attribute(net, x, data.y, "gradcam")  # the last Conv2d of the net: layer4.1.conv2
    assert torch.allclose(default, hand_gradcam(net, net.layer4[1].conv2, x, data.y, "bilinear"), atol=1e-6)
    with pytest.raises(ValueError, match="layer must name a module"):
        attribute(model, data.x, data.y, "gradcam", layer="conv99")
    with pytest.raises(ValueError, match="cannot be mapped onto inputs"):
        attribute(model, data.x, data.y, "gradcam", layer="7")  # the Linear layer
