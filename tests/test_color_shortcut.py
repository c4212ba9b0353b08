"""ColorMNIST's colour swap (ColorShortcut) on real images: the recoloured digit equals the digit drawn in
the other colour, and the reliance of a model that reads only the colour is known in closed form."""
from __future__ import annotations

import torch
from torch import nn

from explainreg.data.shortcuts import ColorShortcut, color_mnist, color_mnist_stats, color_palette
from explainreg.metrics import ShortcutReliance


def test_colour_swap_equals_the_digit_drawn_in_the_other_colour():
    """Test digits d are drawn in colour 9 − d; their grey level read with the known colour, times another
    palette colour and normalised, is what the hook returns from the normalised image."""
    mean, std = color_mnist_stats()
    raw = color_mnist("test", limit=200, normalize=False)
    x = color_mnist("test", limit=200).x
    colour = color_palette()[9 - raw.y]                                   # B×3, the colour each digit is drawn in
    channel = colour.argmax(1)                                            # its strongest channel
    grey = raw.x[torch.arange(len(x)), channel] / colour[torch.arange(len(x)), channel, None, None]
    target = (raw.y + 3) % 10
    drawn = grey[:, None] * color_palette()[target][:, :, None, None]
    expected = (drawn - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    out = ColorShortcut(mean, std)(x, None, target, torch.arange(len(x)))
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-5)
    own = ColorShortcut(mean, std)(x, None, 9 - raw.y, torch.arange(len(x)))  # its own colour: unchanged
    torch.testing.assert_close(own, x, rtol=0, atol=2e-5)
    assert torch.equal(ColorShortcut(mean, std).region(x)[:, 0], grey > 1e-3)


class ColourOnly(nn.Module):
    """Predicts the class whose palette colour is closest in direction to the image's overall colour."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        direction = (x * self.std + self.mean).sum((2, 3))
        palette = color_palette()
        return 10 * direction @ palette.T / (direction.norm(dim=1, keepdim=True) * palette.norm(dim=1))


def test_a_colour_only_model_relies_fully_on_the_colour():
    """Own colour: every prediction right; another class's colour: every prediction that class, so none
    right, reliance 1 and every (class, disagreeing) group at 0."""
    mean, std = color_mnist_stats()
    test = color_mnist("test", limit=300)
    hook = ColorShortcut(mean, std)
    result = ShortcutReliance(hook)(ColourOnly(mean, std), test.x, test.y, mask=hook.region(test.x))
    assert result.extra["accuracy_agreeing"] == 1.0 and result.extra["accuracy_disagreeing"] == 0.0
    assert result.value == 1.0 and result.extra["worst_group_accuracy"] == 0.0
    # a changed prediction is any other class's colour but the one the test digit is drawn in (9 − d): 8 of 9
    assert abs(result.extra["flip_rate"] - 8 / 9) < 0.06
