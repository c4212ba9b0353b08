"""Deep reference networks built from standard torch modules: ResNet-18-shaped and VGG-shaped.

Both follow torchvision's layer layout (so a user's torchvision weights line up by name when the
widths are the defaults) but are written here, with a configurable ``width`` and any input size
(an ``AdaptiveAvgPool2d`` before the classifier). Each has ``forward_features(x) -> B×F`` and a
linear/MLP head, so the CDEP skin-lesion recipe (Rieger et al. 2020, "Interpretations are useful:
penalizing explanations to align neural networks with prior knowledge": an ImageNet-trained VGG16
whose extractor is frozen) can freeze the extractor and train the head only: :class:`FeatureExtractor`
wraps ``forward_features`` as a module.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet's basic block: conv3×3(stride)–BN–ReLU–conv3×3–BN, plus the identity (or a 1×1
    conv–BN projection when the shape changes), then ReLU: ``relu(F(x) + P(x))``.

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: the first conv's stride (2 halves H and W).

    Shape:
        B×in_planes×H×W → B×planes×⌈H/stride⌉×⌈W/stride⌉.

    Example::

        >>> import torch
        >>> from explainreg.models.backbones import BasicBlock
        >>> block = BasicBlock(4, 8, stride=2).eval()
        >>> block(torch.randn(2, 4, 9, 9)).shape, block.downsample is not None
        (torch.Size([2, 8, 5, 5]), True)
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ResNet(nn.Module):
    """ResNet with basic blocks (He et al. 2016): stem conv7×7/2–BN–ReLU–MaxPool(3, 2, 1), four
    stages of ``layers[i]`` blocks with ``width·(1, 2, 4, 8)`` channels (stride 2 from stage 2),
    AdaptiveAvgPool2d(1), ``torch.flatten``, Linear.

    Args:
        layers: blocks per stage; ``(2, 2, 2, 2)`` is ResNet-18.
        num_classes, in_channels: output logits K and input channels C.
        width: channels of the stem and first stage (64 in ResNet-18).
        small_input: a conv3×3/1 stem without max-pooling, for 28–64 pixel inputs.

    Shape:
        B×C×H×W → B×K (any H, W ≥ 32 with the ImageNet stem, ≥ 8 with ``small_input``);
        ``forward_features``: B×C×H×W → B×(8·width).

    Raises:
        ValueError: ``layers`` is not four positive counts, or a size is not positive.

    Example::

        >>> import torch
        >>> from explainreg.models.backbones import ResNet
        >>> net = ResNet((1, 1, 1, 1), num_classes=3, width=4, small_input=True).eval()
        >>> x = torch.randn(2, 3, 16, 16)
        >>> net(x).shape, net.forward_features(x).shape
        (torch.Size([2, 3]), torch.Size([2, 32]))
    """

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), num_classes: int = 1000, in_channels: int = 3,
                 width: int = 64, small_input: bool = False) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must give four positive block counts, got {tuple(layers)}")
        if width < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(f"width, num_classes and in_channels must be positive, got {width}, {num_classes}, "
                             f"{in_channels}")
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        planes, stages = width, []
        for i, n in enumerate(layers):
            out = width * 2 ** i
            blocks = [BasicBlock(planes, out, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(out, out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            planes = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        self.num_features = planes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features B×F (F = 8·width) before the classifier (``fc``).

        Example::

            >>> import torch
            >>> from explainreg.models.backbones import resnet18
            >>> net = resnet18(num_classes=2, width=2, small_input=True).eval()
            >>> x = torch.randn(1, 3, 8, 8)
            >>> bool(torch.allclose(net.fc(net.forward_features(x)), net(x)))
            True
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def resnet18(num_classes: int = 1000, in_channels: int = 3, width: int = 64, small_input: bool = False) -> ResNet:
    """ResNet-18-shaped: :class:`ResNet` with ``layers=(2, 2, 2, 2)`` (11.7 M parameters at width 64, K = 1000).

    Args:
        num_classes, in_channels, width, small_input: as :class:`ResNet`.

    Shape:
        B×C×H×W → B×K.

    Returns:
        The :class:`ResNet`.

    Example::

        >>> import torch
        >>> from explainreg.models.backbones import resnet18
        >>> from explainreg.models import count_parameters
        >>> net = resnet18(num_classes=5, width=4, small_input=True).eval()
        >>> net(torch.randn(2, 3, 32, 32)).shape, len(net.layer1) + len(net.layer4)
        (torch.Size([2, 5]), 4)
        >>> count_parameters(resnet18())
        11689512
    """
    return ResNet((2, 2, 2, 2), num_classes, in_channels, width, small_input)


#: VGG configurations: channel multiples of ``width`` and "M" for a 2×2 max-pool (VGG11 = "A").
VGG_CONFIGS: dict[str, tuple] = {
    "vgg11": (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"),
    "vgg16": (1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"),
    "small": (1, "M", 2, "M", 4, 4, "M"),
}


class VGG(nn.Module):
    """VGG-shaped (Simonyan & Zisserman 2015): ``features`` = conv3×3(pad 1)[–BN]–ReLU blocks and
    2×2 max-pools as ``config`` says, AdaptiveAvgPool2d(pool), ``torch.flatten``, then
    ``classifier`` = Linear–ReLU–Dropout–Linear–ReLU–Dropout–Linear.

    Args:
        config: a key of :data:`VGG_CONFIGS` or a tuple of width multiples and "M".
        num_classes, in_channels: output logits K and input channels C.
        width: channels per unit multiple (64 in VGG16).
        hidden: classifier width (4096 in VGG16).
        pool: output side of the adaptive average pool (7 in VGG16).
        batch_norm: a BatchNorm after each conv.
        dropout: the classifier's dropout probability.

    Shape:
        B×C×H×W → B×K; ``forward_features``: B×C×H×W → B×(channels·pool²).

    Example::

        >>> import torch
        >>> from explainreg.models.backbones import VGG
        >>> net = VGG((1, "M", 2, "M"), num_classes=3, width=4, hidden=8).eval()
        >>> x = torch.randn(2, 3, 12, 12)
        >>> net(x).shape, net.forward_features(x).shape, net.num_features
        (torch.Size([2, 3]), torch.Size([2, 32]), 32)
    """

    def __init__(self, config: str | Sequence = "small", num_classes: int = 10, in_channels: int = 3,
                 width: int = 16, hidden: int = 128, pool: int = 2, batch_norm: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        cfg = VGG_CONFIGS[config] if isinstance(config, str) else tuple(config)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = int(item) * width
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.num_features = channels * pool * pool
        self.classifier = nn.Sequential(
            nn.Linear(self.num_features, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def vgg_small(num_classes: int = 10, in_channels: int = 3, width: int = 16, hidden: int = 128) -> VGG:
    """A small VGG-shaped net: conv(w)–pool–conv(2w)–pool–conv(4w)–conv(4w)–pool, BN, avg-pool 2×2, MLP
    head.

    Args:
        num_classes, in_channels, width, hidden: as :class:`VGG`.

    Shape:
        B×C×H×W (H, W ≥ 8) → B×K.

    Returns:
        The :class:`VGG`.

    Example::

        >>> import torch
        >>> from explainreg.models.backbones import vgg_small
        >>> vgg_small(num_classes=4, width=2, hidden=8).eval()(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """
    return VGG("small", num_classes, in_channels, width, hidden)


class FeatureExtractor(nn.Module):
    """``model.forward_features`` as a module (e.g. the frozen extractor of the CDEP recipe).

    Args:
        model: a module with a ``forward_features(x)`` method (:class:`ResNet`, :class:`VGG`).

    Shape:
        as ``model.forward_features``: B×C×H×W → B×F.

    Raises:
        TypeError: ``model`` has no ``forward_features``.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.models.backbones import FeatureExtractor, vgg_small
        >>> net = vgg_small(num_classes=2, width=2, hidden=8).eval()
        >>> features = FeatureExtractor(net).requires_grad_(False)   # frozen: train a new head only
        >>> head = nn.Linear(net.num_features, 2)
        >>> head(features(torch.randn(3, 3, 16, 16))).shape
        torch.Size([3, 2])
        >>> FeatureExtractor(nn.Linear(2, 2))
        Traceback (most recent call last):
        ...
        TypeError: Linear has no forward_features(x) method; ...
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(model, "forward_features", None)):
            raise TypeError(f"{type(model).__name__} has no forward_features(x) method; pass a module that "
                            "returns the features itself (e.g. model.features)")
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


__all__ = ["BasicBlock", "FeatureExtractor", "ResNet", "VGG", "VGG_CONFIGS", "resnet18", "vgg_small"]
