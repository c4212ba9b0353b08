"""The metric registry: ``@register_metric("morf")`` on a :class:`~explainreg.metrics._core.Metric`
subclass makes it buildable by name (:func:`build_metric`, ``explainreg evaluate --metrics``), as
``@register_penalty`` does for penalties. Adding a metric is one module plus its test.

What a caller may pass a metric is read from its constructor (:func:`accepted_settings`), so the
command line needs no table of settings per metric name.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from ._core import Metric

#: name → metric class, in registration order.
METRICS: dict[str, type[Metric]] = {}
#: alternative spelling → registered name.
METRIC_ALIASES: dict[str, str] = {}
#: The seed's six tests (the IPL-UV xAI-constrained-losses code of "Learning interpretable explanations by
#: optimising saliency maps at training time").
SEED_TESTS = ("morf", "faithfulness", "complexity", "roar", "gaussian", "blocks")

M = TypeVar("M", bound=type)


def register_metric(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[M], M]:
    """Class decorator: register a metric class under ``name`` (and ``aliases``).

    Example::

        >>> from explainreg.metrics import Metric, register_metric, scalar_result
        >>> @register_metric("mean_attribution")
        ... class MeanAttribution(Metric):
        ...     name, needs_model = "mean_attribution", False
        ...     def per_image(self, model, x, y, a): return a.flatten(1).mean(1)
        ...     def summarize(self, rows): return scalar_result(self, rows)
        >>> import torch; round(build_metric("mean_attribution")(None, None, None, torch.ones(2, 3)).value, 3)
        1.0
        >>> _ = METRICS.pop("mean_attribution")
    """

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Metric)):
            raise TypeError(f"register_metric({name!r}) decorates a subclass of explainreg.metrics.Metric, "
                            f"got {cls!r}")
        taken = [n for n in (name, *aliases) if _key(n) in METRICS or _key(n) in METRIC_ALIASES]
        if taken:
            raise ValueError(f"metric name {taken[0]!r} is already registered (by "
                             f"{METRICS.get(_key(taken[0])) or METRICS[METRIC_ALIASES[_key(taken[0])]]}); pick "
                             "another name")
        METRICS[_key(name)] = cls
        METRIC_ALIASES.update({_key(a): _key(name) for a in aliases})
        return cls

    return decorate


def _key(name: str) -> str:
    return str(name).lower().replace("-", "_")


def resolve_metric(name: str) -> str:
    """The registered name of ``name``: case, ``-``/``_`` and aliases such as ``gauss`` accepted.

    Args:
        name: a metric name or alias.

    Shape:
        (no tensors)

    Returns:
        The registered name; ``ValueError`` listing the metrics for an unknown one.

    Example::

    >>> resolve_metric("Gauss"), resolve_metric("faithfulness-correlation")
    ('gaussian', 'faithfulness_correlation')
    """
    key = _key(name)
    key = METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; metrics must be among {', '.join(METRICS)}")
    return key


def build_metric(name: str, **settings: Any) -> Metric:
    """An accumulating metric by name (see ``METRICS``) with its settings.

    Args:
        name: a metric name or alias (:func:`resolve_metric`).
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
    return METRICS[resolve_metric(name)](**settings)


def accepted_settings(name: str, available: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``available`` that metric ``name``'s constructor takes as named parameters.

    A ``**options`` catch-all does not count; ``convention`` counts only where the metric has that
    convention (its class fact ``conventions``), so ``{"convention": "seed"}`` reaches the metrics whose
    seed code differs and no other.

    Args:
        name: a registered metric name or alias (:func:`resolve_metric`).
        available: candidate settings, e.g. ``max_batch``, ``seed``, ``convention``, ``method``.

    Returns:
        The sub-dict the metric's constructor accepts.

    Example::

        >>> accepted_settings("complexity", {"seed": 3, "convention": "seed", "max_batch": 64})
        {'convention': 'seed'}
        >>> accepted_settings("sparseness", {"seed": 3, "convention": "seed"})
        {}
    """
    cls = METRICS[resolve_metric(name)]
    parameters = inspect.signature(cls.__init__).parameters
    named = {k for k, p in parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "self"}
    return {k: v for k, v in available.items()
            if k in named and (k != "convention" or v in getattr(cls, "conventions", ()))}


__all__ = ["METRICS", "METRIC_ALIASES", "SEED_TESTS", "accepted_settings", "build_metric", "register_metric",
           "resolve_metric"]
