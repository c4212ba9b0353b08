"""explainreg: train neural networks with constrained explanations and measure their faithfulness.

The verbs:

* :func:`input_gradient` — the differentiable signed input gradient (the quantity the penalties constrain;
  its magnitude is the attribution method ``"saliency"``, the signed gradient method ``"gradient"``);
* :class:`Objective` — the training loss CE + Σ_i λ_i · R_i with one shared forward pass;
* :func:`attribute` — attributions for evaluation (gradient, integrated gradients, Grad-CAM, …);
* :func:`decompose` — contextual decomposition of the logits for a masked region (Murdoch et al.
  2018; Singh et al. 2019).

The subpackages: ``data``, ``models``, ``penalties``, ``training``, ``metrics``, ``attribution``,
``decomposition``, ``studies`` (and ``gradients``, ``runs``, ``transforms``, ``inputs``). Each is imported on
first use, so ``import explainreg`` costs little more than ``import torch``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> import explainreg as er
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x, y = torch.randn(3, 1, 2, 2), torch.tensor([0, 1, 1])
    >>> er.input_gradient(net, x, y).shape
    torch.Size([3, 1, 2, 2])
    >>> out = er.Objective({"gradient_l1": 0.1})(net, x, y)
    >>> sorted(out.terms)
    ['ce', 'gradient_l1', 'loss']
"""
from __future__ import annotations

import importlib
from typing import Any

from .gradients import input_gradient, minmax_normalize

__version__ = "0.2.0"

_LAZY_MODULES = ("attribution", "data", "decomposition", "gradients", "inputs", "metrics", "models", "penalties", "runs",
                 "studies", "training", "transforms")
_LAZY_NAMES = {"attribute": "attribution", "decompose": "decomposition", "Objective": "objective",
               "ObjectiveOutput": "objective"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["Objective", "ObjectiveOutput", "attribute", "attribution", "data", "decompose", "decomposition",
           "gradients", "input_gradient", "inputs", "metrics", "minmax_normalize", "models", "penalties", "runs",
           "studies", "training", "transforms", "__version__"]
