"""Deep networks the CD exactness tests build themselves (documentation: methods/decomposition)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.down is None else self.down(x)
        return F.relu(out + shortcut)


class ResNet18Shaped(nn.Module):
    """ResNet-18's layout (7×7/2 stem, BN, MaxPool 3/2/1, 4 stages × 2 basic blocks, AdaptiveAvgPool)."""

    def __init__(self, in_channels: int = 3, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        chans = [width, 2 * width, 4 * width, 8 * width]
        blocks, c = [], width
        for i, c_out in enumerate(chans):
            blocks += [BasicBlock(c, c_out, 1 if i == 0 else 2), BasicBlock(c_out, c_out, 1)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def conv_bn_stack(depth: int, in_channels: int = 1, width: int = 8, classes: int = 10) -> nn.Sequential:
    """``depth`` × (Conv 3×3 → BatchNorm → ReLU), a max-pool every 4 layers, then a linear head."""
    layers: list[nn.Module] = []
    c = in_channels
    for i in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        if i % 4 == 3:
            layers.append(nn.MaxPool2d(2))
        c = width
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, classes)]
    return nn.Sequential(*layers)


def randomise_batchnorm(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Non-trivial running statistics and affine parameters, as a trained network has."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                m.bias.copy_(torch.rand(c, generator=generator) - 0.5)
    return model


def train_briefly(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 20, seed: int = 0) -> nn.Module:
    """A few Adam steps on real images (train mode: BatchNorm learns real running statistics)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x), (32,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def normalised_images(mnist_test, channels: int, size: int, n: int = 8) -> torch.Tensor:
    """The first n images of a MNIST split, resized to size×size, normalised, repeated to channels."""
    x = mnist_test.x[:n]
    if size != 28:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return ((x - 0.1307) / 0.3081).repeat(1, channels, 1, 1)


def region_masks(size: int) -> dict[str, torch.Tensor]:
    """The exactness tests' masks: the left half, and the four 5×5 corners."""
    half = torch.zeros(size, size)
    half[:, : size // 2] = 1
    corner = torch.zeros(size, size)
    corner[:5, :5] = corner[:5, -5:] = corner[-5:, :5] = corner[-5:, -5:] = 1
    return {"half": half, "corner": corner}
