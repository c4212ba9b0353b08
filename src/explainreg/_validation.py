"""Early input checks with messages that name the parameter and say what to do."""
from __future__ import annotations

from typing import Sequence

import torch


def check_batch(x: torch.Tensor, y: torch.Tensor | None = None, *, min_dim: int = 2, tokens: bool = False) -> None:
    """Check that ``x`` is a finite floating batch and ``y`` one integer label per sample.

    ``tokens=True`` (callers that understand token inputs, documentation: guide/concepts) also accepts integer
    token ids of shape B×T with non-negative values."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if tokens and not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool:
        if x.dim() != 2:
            raise TypeError(f"x must be a floating-point tensor (e.g. images scaled to [0, 1]) or B×T integer token "
                            f"ids, got {x.dtype} of shape {tuple(x.shape)}; convert images with x.float() / 255")
        check_token_ids(x)
        if y is not None:
            check_batch(x.new_zeros(x.shape[0], 1, dtype=torch.float32), y)
        return
    if not x.is_floating_point():
        hint = ("; integer token ids (B×T) are accepted by saliency, the penalties, Objective and decompose, "
                "and explainreg.attribution.attribute"
                if not tokens else "")
        raise TypeError(f"x must be a floating-point tensor (e.g. images scaled to [0, 1]), got {x.dtype}{hint}")
    if x.dim() < min_dim:
        raise ValueError(f"x must be batched with shape B×... ({min_dim}+ dims), got shape {tuple(x.shape)}; "
                         "add a batch dimension with x.unsqueeze(0)")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (B = 0)")
    if not torch.isfinite(x).all():
        raise ValueError(f"x contains {int((~torch.isfinite(x)).sum())} non-finite values (NaN or inf); clean the inputs")
    if y is None:
        return
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer tensor of class indices, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.dtype != torch.long:
        raise TypeError(f"y must hold int64 (torch.long) class indices, got {y.dtype}: convert with y.long() "
                        "(cross-entropy and indexing need int64; uint8 would even index as a mask)")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (B,) = ({x.shape[0]},) matching x, got {tuple(y.shape)}")


def check_token_ids(ids: torch.Tensor, num_embeddings: int | None = None) -> None:
    """Check integer token ids: shape B×T with B, T ≥ 1, values in [0, num_embeddings)."""
    if ids.dim() != 2:
        raise ValueError(f"token ids must have shape B×T (sentences × positions), got shape {tuple(ids.shape)}; "
                         "add a batch dimension with ids.unsqueeze(0)")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"token ids are empty (shape {tuple(ids.shape)}): give at least one sentence of one token")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (num_embeddings is not None and high >= num_embeddings):
        bound = f"[0, {num_embeddings - 1}]" if num_embeddings is not None else "[0, ∞)"
        raise ValueError(f"token ids must lie in {bound} (the embedding has "
                         f"{num_embeddings if num_embeddings is not None else 'an unknown number of'} rows), "
                         f"got min {low} and max {high}; encode the sentences with the model's vocabulary")


def check_labels(y: torch.Tensor, num_classes: int) -> None:
    """Check that every label indexes one of the model's ``num_classes`` outputs."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels y must lie in [0, {num_classes - 1}] (the model has {num_classes} outputs), "
                         f"got min {int(y.min())} and max {int(y.max())}")


def check_logits(logits: torch.Tensor, batch_size: int) -> None:
    if not isinstance(logits, torch.Tensor) and isinstance(getattr(logits, "logits", None), torch.Tensor):
        raise TypeError(f"the model returned a {type(logits).__name__} (a HuggingFace ModelOutput), not a logits "
                        "tensor; wrap the model: explainreg.hf.HFClassifier(model) takes the token ids (or pixels) "
                        "and returns the logits, with the padding as its attention_mask (docs/transformers.md)")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch_size:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape B×K = ({batch_size}, K), got {shape}")


def check_int(name: str, value) -> None:
    """``value`` must be a Python or NumPy integer (not a bool, not a float such as 2.5 or 2.0)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")


def check_number(name: str, value) -> None:
    """``value`` must be a finite real number."""
    import math
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")


def check_model_input(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Check ``x`` against the model's first layer and parameters: a conv net needs B×C×H×W (B×C×L,
    B×C×D×H×W for Conv1d/3d) with its ``in_channels``, and ``x`` the parameters' floating dtype.
    Token ids (integer ``x``) are left to the model's embedding."""
    if not x.is_floating_point():
        return
    params = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if params is not None and params.is_floating_point() and x.dtype != params.dtype:
        cast = {torch.float32: "x.float()", torch.float64: "x.double()", torch.float16: "x.half()",
                torch.bfloat16: "x.bfloat16()"}.get(params.dtype, f"x.to({params.dtype})")
        raise TypeError(f"x is {x.dtype} but the model's parameters are {params.dtype}; convert the inputs with "
                        f"{cast} (or the model with model.to({x.dtype}))")
    if not isinstance(model, torch.nn.Module):
        return
    first = next((m for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                                                              torch.nn.Linear))), None)
    if first is None or isinstance(first, torch.nn.Linear):
        return
    dims = {torch.nn.Conv1d: ("B×C×L", 3), torch.nn.Conv2d: ("B×C×H×W", 4), torch.nn.Conv3d: ("B×C×D×H×W", 5)}
    layout, ndim = next(v for k, v in dims.items() if isinstance(first, k))
    channels = first.in_channels
    if x.dim() == ndim - 1:
        raise ValueError(f"the model's first layer ({type(first).__name__}, in_channels={channels}) expects {layout} "
                         f"inputs, got shape {tuple(x.shape)}: the channel dimension is missing; add it with "
                         "x.unsqueeze(1)" + (" (grey images have C = 1)" if channels == 1 else ""))
    if x.dim() == ndim and x.shape[1] != channels:
        raise ValueError(f"the model's first layer ({type(first).__name__}) expects {layout} inputs with C = {channels} "
                         f"channels, got shape {tuple(x.shape)} (C = {x.shape[1]}); check the channel order "
                         "(channels first) or build the model with in_channels=" + str(x.shape[1]))


# The short checks below keep their messages ("x must be one of …; got …") and share the constraint
# objects further down, which :func:`check_parameter` phrases scikit-learn's way.
def check_choice(name: str, value, choices) -> None:
    """``value`` must be one of ``choices`` (:class:`Options`)."""
    if not Options(choices).is_satisfied_by(value):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


#: the one ``reduction`` vocabulary, torch's: over the batch ``"mean"``, ``"sum"``, or ``"none"`` (one value per
#: sample); each function accepts the subset its result has a meaning for
REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction, accepted: Sequence[str] = REDUCTIONS, why: str = "") -> str:
    """``reduction`` must be one of ``accepted`` (values of :data:`REDUCTIONS`); the error names them, and
    ``why`` says why a value of the vocabulary is not accepted here.

    Example:
        >>> check_reduction("sum", ("mean", "sum"))
        'sum'
        >>> check_reduction("none", ("mean", "sum"), "a penalty is one number per batch")
        Traceback (most recent call last):
        ...
        ValueError: reduction must be one of 'mean', 'sum'; got 'none' (a penalty is one number per batch)
    """
    unknown = set(accepted) - set(REDUCTIONS)
    if unknown:  # pragma: no cover - a programming error in the caller
        raise AssertionError(f"{sorted(unknown)} are not reductions ({', '.join(REDUCTIONS)})")
    if not isinstance(reduction, str) or reduction not in accepted:
        note = f" ({why})" if why and reduction in REDUCTIONS else ""
        raise ValueError(f"reduction must be one of {', '.join(map(repr, accepted))}; got {reduction!r}{note}")
    return reduction


def check_range(name: str, value: float, low: float | None = None, high: float | None = None,
                *, low_open: bool = False, high_open: bool = False) -> None:
    """``value`` must lie in the interval (:class:`Interval`; open ends with ``low_open``/``high_open``)."""
    closed = {(False, False): "both", (False, True): "left", (True, False): "right", (True, True): "neither"}
    interval = Interval(float, low, high, closed=closed[(low_open, high_open)])
    if not interval.contains(value):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}{hi}; got {value}")


def check_fractions(name: str, values, low: float = 0.0, high: float = 1.0) -> tuple[float, ...]:
    """A non-empty sequence of numbers in [``low``, ``high``] (:class:`Fractions`), as a tuple of floats."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence")
    item = Interval(float, low, high)
    bad = [v for v in values if not item.contains(v)]
    if bad:
        raise ValueError(f"{name} must lie in [{low}, {high}]; got {bad}")
    return values


def check_positive_int(name: str, value) -> int:
    """A whole number ≥ 1 (an integral float such as 2.0 is accepted), as an int."""
    if not (POSITIVE_INT.is_satisfied_by(value)
            or (isinstance(value, float) and value.is_integer() and POSITIVE_INT.contains(value))):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ constraint objects
class Constraint:
    """A constraint on one parameter that is both the check and its message (scikit-learn's
    ``_param_validation``): ``is_satisfied_by(value)`` and ``str(constraint)``, the phrase that ends
    "The 'x' parameter of F must be …"."""

    def is_satisfied_by(self, value) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class Interval(Constraint):
    """Numbers of ``kind`` (``int``: integers, not bools; ``float``: any finite real) in an interval;
    ``None`` bounds are open to ±∞; ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.

    Example::

        >>> str(Interval(int, 1, None, closed="left"))
        'an int in the range [1, inf)'
    """

    def __init__(self, kind: type, low=None, high=None, *, closed: str = "both") -> None:
        if kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def is_satisfied_by(self, value) -> bool:
        import numbers

        if isinstance(value, bool) or not isinstance(value, numbers.Integral if self.kind is int else numbers.Real):
            return False
        return self.contains(value)

    def contains(self, value) -> bool:
        """Is the number ``value`` inside the bounds (finite, whatever its type)?"""
        import math

        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (value == self.low and self.closed in ("right", "neither"))):
            return False
        if self.high is not None and (value > self.high or (value == self.high and self.closed in ("left", "neither"))):
            return False
        return True

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{'an int' if self.kind is int else 'a float'} in the range {left}{low}, {high}{right}"


class Options(Constraint):
    """One of a fixed set of values.

    Example::

        >>> str(Options(("morf", "lerf")))
        "a str among {'morf', 'lerf'}"
    """

    def __init__(self, options) -> None:
        self.options = tuple(options)

    def is_satisfied_by(self, value) -> bool:
        try:
            return value in self.options
        except TypeError:  # e.g. a tensor compared with strings
            return False

    def __str__(self) -> str:
        kinds = sorted({type(o).__name__ for o in self.options})
        return f"a {' or '.join(kinds)} among {{{', '.join(map(repr, self.options))}}}"


class Fractions(Constraint):
    """A non-empty sequence of numbers, each in [``low``, ``high``]."""

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        self.item = Interval(float, low, high)

    def is_satisfied_by(self, value) -> bool:
        try:
            items = list(value)
        except TypeError:
            return False
        return bool(items) and all(self.item.is_satisfied_by(v) for v in items)

    def __str__(self) -> str:
        return f"a non-empty sequence of numbers, each {str(self.item).removeprefix('a float ')}"


def check_parameter(owner: str, name: str, value, *constraints: Constraint) -> None:
    """Raise ``InvalidParameterError`` unless ``value`` satisfies one of ``constraints``:
    "The 'name' parameter of owner must be <constraint>. Got <value> instead."."""
    if any(c.is_satisfied_by(value) for c in constraints):
        return
    wanted = " or ".join(map(str, constraints))
    raise InvalidParameterError(f"The {name!r} parameter of {owner} must be {wanted}. Got {value!r} instead.")


def validate(owner: str, **checks) -> None:
    """``validate("MoRF", max_batch=(max_batch, Interval(int, 1, None)), order=(order, Options(...)))``:
    :func:`check_parameter` for each ``name=(value, constraint, ...)``."""
    for name, (value, *constraints) in checks.items():
        check_parameter(owner, name, value, *constraints)


class InvalidParameterError(ValueError, TypeError):
    """A parameter outside its constraints (a ``ValueError`` and a ``TypeError``, as scikit-learn's)."""


POSITIVE_INT = Interval(int, 1, None, closed="left")


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts that must be ≥ 1 (epochs, batch sizes, image limits)."""
    return _parsed(text, int, 1, "a whole number ≥ 1")


def nonnegative_int(text: str) -> int:
    """argparse ``type=`` for whole numbers ≥ 0 (seeds, patience)."""
    return _parsed(text, int, 0, "a whole number ≥ 0")


def nonnegative_float(text: str) -> float:
    """argparse ``type=`` for finite numbers ≥ 0 (penalty weights, weight decay)."""
    return _parsed(text, float, 0, "a finite number ≥ 0")


def positive_float(text: str) -> float:
    """argparse ``type=`` for finite numbers > 0 (learning rates)."""
    value = _parsed(text, float, 0, "a finite number > 0")
    if value == 0:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _parsed(text: str, kind, low, what: str):
    import argparse
    import math

    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if (kind is float and not math.isfinite(value)) or value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


# ------------------------------------------------------------------------------------ conventions
#: The one ``convention`` switch of the metrics and the penalties: ``"explainreg"`` (this library's definitions, the
#: default), ``"seed"`` (the seed code's computation, quirks included, where it differs) and
#: ``"quantus"`` (Quantus 0.6's defaults). Each metric declares the ones it has (``Metric.conventions``); Smoothness and ExpectedGradients take explainreg and seed.
CONVENTIONS = ("explainreg", "seed", "quantus")
#: the conventions of a metric that Quantus 0.6 also has, and of one whose seed code differs.
QUANTUS_CONVENTIONS = ("explainreg", "quantus")
SEED_CONVENTIONS = ("explainreg", "seed")

def check_convention(owner: str, convention: str, supported: Sequence[str] = QUANTUS_CONVENTIONS) -> str:
    """``convention`` if ``owner`` (a metric or function name) supports it, else ``InvalidParameterError``
    (a ``ValueError``) naming the parameter and the conventions ``owner`` accepts.

    Example::

        >>> check_convention("Sparseness", "quantus")
        'quantus'
        >>> check_convention("Sparseness", "seed")
        Traceback (most recent call last):
        ...
        explainreg._validation.InvalidParameterError: convention must be one of 'explainreg', 'quantus' for
        Sparseness; got 'seed' (Sparseness has no 'seed' convention)
    """
    if not Options(supported).is_satisfied_by(convention):
        why = (f" ({owner} has no {convention!r} convention)" if Options(CONVENTIONS).is_satisfied_by(convention)
               else f" (the conventions are {', '.join(map(repr, CONVENTIONS))})")
        raise InvalidParameterError(f"convention must be one of {', '.join(map(repr, supported))} for {owner}; "
                                    f"got {convention!r}{why}")
    return convention


def check_finite_option(owner: str, name: str, value) -> None:
    """Raise ``InvalidParameterError`` when the option ``value`` holds a NaN or ±inf: a number, or one
    inside a list, tuple, dict or floating-point tensor (a NaN angle or weight makes every value it
    touches NaN, or a constant, without a word).

    Example::

        >>> check_finite_option("Symmetry", "angles", [5, 10])
        >>> check_finite_option("Symmetry", "angles", [5, float("nan")])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        explainreg._validation.InvalidParameterError: The 'angles' parameter of Symmetry must hold finite ... (angles[1] is nan)...
    """
    import math
    import numbers

    def first_bad(v, where: str):
        if isinstance(v, bool):
            return None
        if isinstance(v, numbers.Real):
            return (where, v) if not math.isfinite(v) else None
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() or v.is_complex():
                bad = (~torch.isfinite(v.detach())).nonzero()
                if len(bad):
                    index = "".join(f"[{int(i)}]" for i in bad[0])
                    return f"{where}{index}", v.detach()[tuple(bad[0])].item()
            return None
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, (list, tuple)):
            items = enumerate(v)
        else:
            return None
        for key, item in items:
            found = first_bad(item, f"{where}[{key!r}]" if isinstance(v, dict) else f"{where}[{key}]")
            if found is not None:
                return found
        return None

    found = first_bad(value, name)
    if found is not None:
        where, bad = found
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must hold finite numbers; got {value!r} "
                                    f"({where} is {bad}). Give finite values (NaN and ±inf are not options).")
