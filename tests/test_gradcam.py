"""Grad-CAM (attribution method ``gradcam``) on Conv1d and on a named Conv2d layer against a hand
computation: α_k = mean over positions of ∂z_t/∂A_k, cam = Σ_k α_k A_k, upsampled to the input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.attribution import attribute
from explainreg.models.backbones import resnet18
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


class _ShortcutBlock(nn.Module):
    """A residual block whose 1×1 shortcut convolution is registered last and runs after the main path."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))


class _TwoBranches(nn.Module):
    """Two equally deep convolutions concatenated before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(1, 3, 5, padding=2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.left(x), self.right(x)], 1))


def _resnet_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         _ShortcutBlock(4, 8, 2), _ShortcutBlock(8, 8, 1), _ShortcutBlock(8, 16, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def test_gradcam_default_in_a_residual_net_is_the_main_paths_last_conv_not_the_shortcut():
    """Every block has a 1×1 shortcut convolution registered (and run) after its main path: the
    default Grad-CAM layer is the last block's conv2, for attribute(), the XIL penalties and the
    wrong-reason maps; the model's train/eval flags and BatchNorm statistics are left as they were."""
    from explainreg.metrics.functional.localisation import wrong_reason_maps
    from explainreg.gradcam import find_conv_layer

    data = load_dataset("mnist", "test", limit=6)
    net = _resnet_like()
    last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
    assert last is net[5].shortcut[0]  # registration order would pick the shortcut
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    assert find_conv_layer(net, sample=data.x) is net[5].conv2
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(v, stats[k]) for k, v in net.state_dict().items())
    net.eval()
    a = attribute(net, data.x, data.y, "gradcam")
    assert torch.allclose(a, hand_gradcam(net, net[5].conv2, data.x, data.y, "bilinear"), atol=1e-6)
    assert not torch.allclose(a, hand_gradcam(net, last, data.x, data.y, "bilinear"), atol=1e-4)
    assert not any(m.training for m in net.modules())
    cam = wrong_reason_maps(net, data.x)
    named = wrong_reason_maps(net, data.x, layer="5.conv2")
    assert torch.equal(cam, named)


def test_gradcam_default_refuses_equally_deep_parallel_convs_and_lists_the_layers():
    data = load_dataset("mnist", "test", limit=4)
    torch.manual_seed(0)
    net = _TwoBranches().eval()
    with pytest.raises(ValueError, match=r"ambiguous: left, right are equally deep .* pass layer='<name>', "
                                         r"one of left, right"):
        attribute(net, data.x, data.y, "gradcam")
    a = attribute(net, data.x, data.y, "gradcam", layer="right")
    assert torch.allclose(a, hand_gradcam(net, net.right, data.x, data.y, "bilinear"), atol=1e-6)


def test_attribute_and_the_wrong_reason_maps_equal_captums_layer_gradcam_on_real_images():
    """One Grad-CAM (explainreg.gradcam) under attribute and the wrong-reason maps: Captum's LayerGradCam
    with LayerAttribution.interpolate (bilinear for attribute, nearest for XIL's WR maps) on MNIST."""
    from captum.attr import LayerAttribution, LayerGradCam

    from explainreg.metrics.functional.localisation import wrong_reason_maps

    data = load_dataset("mnist", "test", limit=6)
    torch.manual_seed(0)
    model = cnn3b().eval()
    x, y = data.x, data.y
    for relu in (False, True):
        cam = LayerGradCam(model, model[3]).attribute(x, target=y, relu_attributions=relu)
        captum = LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear").expand_as(x)
        ours = attribute(model, x, y, "gradcam", relu=relu)
        assert torch.allclose(ours, captum, atol=1e-6) and ours.abs().sum() > 0
    cam = LayerGradCam(model, model[3]).attribute(x, target=y, relu_attributions=True)
    nearest = LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="nearest")
    assert torch.allclose(wrong_reason_maps(model, x, target=y), nearest, atol=1e-6)
