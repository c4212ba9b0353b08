"""A multilayer perceptron for tabular features (B×F), the reference model of the bundled tables
(``breast-cancer``, ``wine``: :mod:`explainreg.data.tabular`).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

__all__ = ["mlp"]


def mlp(num_classes: int = 2, in_features: int = 30, hidden: Sequence[int] = (32, 32)) -> nn.Sequential:
    """Linear–ReLU layers of widths ``hidden``, then a linear layer to the logits:
    h_0 = x, h_{l+1} = ReLU(W_l h_l + b_l), logits = W_L h_L + b_L.

    Built from ``nn.Linear`` and ``nn.ReLU`` only, so every penalty, attribution method, metric and
    contextual decomposition works on it.

    Args:
        num_classes: logits K.
        in_features: input features F.
        hidden: the widths of the hidden layers (empty: a linear model).

    Shape:
        B×F → B×K.

    Returns:
        An ``nn.Sequential``.

    Raises:
        ValueError: a non-positive ``num_classes``, ``in_features`` or width.

    Example::

        >>> import torch
        >>> from explainreg.models import build_model, count_parameters
        >>> net = build_model("mlp", num_classes=3, in_features=13)
        >>> tuple(net(torch.zeros(4, 13)).shape), count_parameters(net)   # 13·32+32 + 32·32+32 + 32·3+3
        ((4, 3), 1603)
        >>> build_model("mlp", hidden=(0,))
        Traceback (most recent call last):
        ...
        ValueError: mlp's num_classes, in_features and hidden widths must be positive integers; got 2, 30, (0,)
    """
    widths = [in_features, *hidden]
    if any(not isinstance(w, int) or w < 1 for w in (num_classes, *widths)):
        raise ValueError(f"mlp's num_classes, in_features and hidden widths must be positive integers; got "
                         f"{num_classes}, {in_features}, {tuple(hidden)}")
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths, widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))
