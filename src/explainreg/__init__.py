"""explainreg: train neural networks with constrained explanations and measure their faithfulness.

The verbs: :func:`saliency` (differentiable input gradients), :class:`Objective` (CE + Σ λ·R),
:func:`attribute` (attributions for evaluation), :func:`decompose` (contextual decomposition).
The subpackages: ``data``, ``models``, ``penalties``, ``training``, ``metrics``, ``attribution``,
``decomposition``, ``studies`` (the last four are imported on first use).
"""
from __future__ import annotations

import importlib
from typing import Any

from . import data, models, penalties, runs, training, transforms
from .objective import Objective, ObjectiveOutput
from .saliency import minmax_normalize, saliency

__version__ = "0.1.0"

_LAZY_MODULES = ("metrics", "attribution", "decomposition", "studies")
_LAZY_NAMES = {"attribute": "attribution", "decompose": "decomposition"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Objective", "ObjectiveOutput", "attribute", "attribution", "data", "decompose", "decomposition",
           "metrics", "minmax_normalize", "models", "penalties", "runs", "saliency", "studies", "training",
           "transforms", "__version__"]
