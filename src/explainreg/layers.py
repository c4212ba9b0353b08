"""Finding a layer of a model: by dotted name, as a module, or the last convolution of a kind
(the default Grad-CAM layer of the evaluation attributions and of the XIL penalties)."""
from __future__ import annotations

from torch import nn


def find_layer(model: nn.Module, layer: str | nn.Module | None = None, kind: type = nn.Conv2d,
               who: str = "Grad-CAM") -> nn.Module:
    """The module named ``layer`` in ``model.named_modules()`` (e.g. ``"layer4.1.conv2"``), ``layer``
    itself when it is a module, or by default the last module of type ``kind`` in registration order.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
        >>> find_layer(net) is net[2], find_layer(net, "0") is net[0]
        (True, True)
    """
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    names = ", ".join(n for n in modules if n) or "none"
    if layer is None:
        found = [m for m in modules.values() if isinstance(m, kind)]
        if not found:
            raise ValueError(f"{who} needs a convolutional layer and the model has no nn.{kind.__name__}: pass "
                             f"layer='<name>', one of {names}")
        return found[-1]
    if layer not in modules:
        raise ValueError(f"layer must name a module of the model, one of {names}; got {layer!r}")
    return modules[layer]


__all__ = ["find_layer"]
