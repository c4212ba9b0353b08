"""The metric registry: ``@METRICS.register("morf")`` on a :class:`~explainreg.metrics._core.Metric`
subclass makes it buildable by name (:func:`build_metric`, ``explainreg evaluate --metrics``), as
``@PENALTIES.register()`` does for penalties. Adding a metric is one module plus its test.

What a caller may pass a metric is read from its constructor (:func:`accepted_settings`), so the
command line needs no table of settings per metric name.
"""
from __future__ import annotations

import inspect
from typing import Any

from ..registry import Registry
from ._core import Metric

#: the metrics by name and alias (:class:`~explainreg.registry.Registry`): ``@METRICS.register("morf")`` on a
#: :class:`~explainreg.metrics._core.Metric` subclass makes it buildable by name; ``METRICS.resolve`` gives
#: the registered name of an alias (``"Gauss"`` → ``"gaussian"``), ``METRICS.describe()`` one line each.
METRICS: Registry[type[Metric]] = Registry("metric")
#: The seed's six tests (the IPL-UV xAI-constrained-losses code of "Learning interpretable explanations by
#: optimising saliency maps at training time").
SEED_TESTS = ("morf", "faithfulness", "complexity", "roar", "gaussian", "blocks")


def build_metric(name: str, **settings: Any) -> Metric:
    """An accumulating metric by name (see ``METRICS``) with its settings.

    Args:
        name: a metric name or alias (``METRICS.resolve``).
        settings: the constructor's arguments.

    Shape:
        (no tensors)

    Returns:
        The metric instance.

    Example::

    >>> build_metric("road", order="lerf")
    ROADLeRF(percentages=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0], order='lerf', noise=0.01,
    convention='explainreg', seed=0, tol=1e-05)
    """
    return METRICS[name](**settings)


def accepted_settings(name: str, available: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``available`` that metric ``name``'s constructor takes as named parameters.

    A ``**options`` catch-all does not count; ``convention`` counts only where the metric has that
    convention (its class fact ``conventions``), so ``{"convention": "seed"}`` reaches the metrics whose
    seed code differs and no other.

    Args:
        name: a registered metric name or alias.
        available: candidate settings, e.g. ``max_batch``, ``seed``, ``convention``, ``method``.

    Returns:
        The sub-dict the metric's constructor accepts.

    Example::

        >>> accepted_settings("complexity", {"seed": 3, "convention": "seed", "max_batch": 64})
        {'convention': 'seed'}
        >>> accepted_settings("sparseness", {"seed": 3, "convention": "seed"})
        {}
    """
    cls = METRICS[name]
    parameters = inspect.signature(cls.__init__).parameters
    named = {k for k, p in parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "self"}
    return {k: v for k, v in available.items()
            if k in named and (k != "convention" or v in getattr(cls, "conventions", ()))}


__all__ = ["METRICS", "SEED_TESTS", "accepted_settings", "build_metric"]
