"""Shared machinery of the metrics: checks, chunked forward passes, non-zero percentiles, AUC,
the result record and the accumulating base class."""
from __future__ import annotations

import contextvars
import functools
import inspect
import math
import warnings
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import torch
from torch import nn

from .._random import as_index
from .._validation import (CONVENTIONS, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, InvalidParameterError, Options,
                           check_convention, check_batch, check_choice, check_fractions, check_labels,
                           check_logits, check_positive_int)
from ..modes import eval_mode, model_device
from ._sync import local_sync, row_index, sync_count, sync_rows

#: The seed's 20 percentiles: sorted(int(linspace(0, 100, 20)), descending) (the IPL-UV xAI-constrained-losses code).
SEED_PERCENTILES = tuple(sorted((int(v) for v in torch.linspace(0, 100, 20, dtype=torch.float64).tolist()),
                                reverse=True))


# ----------------------------------------------------------------------------------------------- checks
def check_inputs(x: torch.Tensor, y: torch.Tensor | None, attributions: torch.Tensor | None = None,
                 *, name: str = "attributions") -> None:
    """x a finite batch, y its labels, attributions finite and of the shape of x (or B×1×H×W)."""
    check_batch(x, y)
    if attributions is None:
        return
    if not isinstance(attributions, torch.Tensor) or not attributions.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of the shape of x, got "
                        f"{getattr(attributions, 'dtype', type(attributions).__name__)}")
    a_shape, x_shape = tuple(attributions.shape), tuple(x.shape)
    ok = a_shape == x_shape or (len(a_shape) == len(x_shape) >= 3 and a_shape[0] == x_shape[0]
                                and a_shape[1] == 1 and a_shape[2:] == x_shape[2:])
    if not ok:
        raise ValueError(f"{name} must have the shape of x {x_shape} (or {(x_shape[0], 1) + x_shape[2:]}), "
                         f"got {a_shape}")
    bad = ~torch.isfinite(attributions)
    if bad.any():
        rows = bad.flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name} contain {int(bad.sum())} non-finite values (NaN or inf) in images {rows[:10]}"
                         f"{'…' if len(rows) > 10 else ''}; fix or drop those attributions")


def broadcast_attributions(attributions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return attributions.expand_as(x) if attributions.shape != x.shape else attributions


# ------------------------------------------------------------------------------------------- forwards
#: the most rows per forward pass of the perturbed stacks; the chunk actually used is the smaller of this
#: and the rows whose activations fit ``ACTIVATION_BUDGET`` (see :func:`rows_per_forward`).
MAX_BATCH = 8192
#: bytes of activations (sum over the model's modules of their outputs) per forward pass, by device type.
#: On a CPU a chunk whose activations stay in cache is fastest: 40 MiB gives CNN3b (0.088 MB of
#: activations per row) 477 rows and CNN4b (1.33 MB per row) 31 rows; measured on one thread, CNN3b costs
#: 190 µs/row at 256–512 rows and 300 at 768–1024, CNN4b 3.2–3.5 ms/row at 32–64 rows and 5.0 at 512
#: (benchmarks/metrics_speed.py). On a GPU bigger chunks fill the device. Change the entries to tune
#: (e.g. ``ACTIVATION_BUDGET["cuda"] = 8 << 30``).
ACTIVATION_BUDGET: dict[str, int] = {"cpu": 40 << 20, "cuda": 2 << 30, "mps": 1 << 30}
_ACTIVATION_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def activation_bytes(model: nn.Module, sample: torch.Tensor) -> int:
    """Bytes of activations of one forward pass of ``sample`` (1×...): the input plus the outputs of
    every leaf module (modules without children), measured once per model, input shape and dtype."""
    key = (tuple(sample.shape[1:]), sample.dtype, str(sample.device))
    cache = _ACTIVATION_CACHE.setdefault(model, {})
    if key in cache:
        return cache[key]
    total = [sample[:1].numel() * sample.element_size()]

    def hook(module, inputs, output):
        for t in (output if isinstance(output, (tuple, list)) else (output,)):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(sample[:1])
    finally:
        for h in handles:
            h.remove()
    cache[key] = total[0]
    return total[0]


def rows_per_forward(model: nn.Module, sample: torch.Tensor, max_batch: int = MAX_BATCH) -> int:
    """Rows per forward pass: min(``max_batch``, ``ACTIVATION_BUDGET[device]`` // activation bytes per
    row), at least 1. ``sample`` is one input row (1×...) on the model's device."""
    budget = ACTIVATION_BUDGET.get(sample.device.type, ACTIVATION_BUDGET["cpu"])
    per_row = max(1, activation_bytes(model, sample))
    return max(1, min(int(max_batch), budget // per_row))


def forward_chunks(model: nn.Module, x: torch.Tensor, max_batch: int = MAX_BATCH, *, output: str = "prob",
                   index: torch.Tensor | None = None) -> torch.Tensor:
    """Model outputs for a big stack ``x`` (N×...), chunked by :func:`rows_per_forward`, without gradients.

    ``output``: ``"prob"`` softmax, ``"logit"``, ``"label"`` argmax. With ``index`` (N,), only the
    output of class ``index[n]`` for each row (shape N); else N×K (N for labels).
    """
    check_choice("output", output, ("prob", "logit", "label"))
    device = model_device(model)
    out = []
    with torch.no_grad():
        rows = rows_per_forward(model, x[:1].to(device), max_batch) if len(x) else 1
        for start in range(0, x.shape[0], rows):
            z = model(x[start:start + rows].to(device))
            if start == 0:
                check_logits(z, min(rows, x.shape[0]))
            if output == "label":
                out.append(z.argmax(1))
                continue
            if output == "prob":
                z = z.softmax(1)
            if index is not None:
                z = z.gather(1, index[start:start + rows].to(device)[:, None]).squeeze(1)
            out.append(z)
    return torch.cat(out)


_VALIDATE_ARGS: contextvars.ContextVar[bool] = contextvars.ContextVar("validate_args", default=True)


@contextmanager
def validation(validate_args: bool = True) -> Iterator[None]:
    """While the block runs, :func:`prepare` makes (``True``) or skips (``False``) its model probe: one
    forward pass of one row per call that checks the logits' shape and the labels' range. The
    tensors' own checks (type, shape, finiteness) always run."""
    token = _VALIDATE_ARGS.set(bool(validate_args))
    try:
        yield
    finally:
        _VALIDATE_ARGS.reset(token)


def prepare(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attributions: torch.Tensor | None = None):
    """Check inputs and move them to the model's device; returns ``(x, y, a)`` (a broadcast to x).
    The model probe (logits B×K, labels in [0, K)) runs unless switched off by :func:`validation`."""
    check_inputs(x, y, attributions)
    device = model_device(model) if model is not None else x.device
    x = x.detach().to(device)
    y = y.to(device) if y is not None else None
    a = broadcast_attributions(attributions.detach().to(device), x) if attributions is not None else None
    if model is not None and y is not None and _VALIDATE_ARGS.get():
        with torch.no_grad():
            probe = model(x[:1])
        check_logits(probe, 1)
        check_labels(y, probe.shape[1])
    return x, y, a


# ---------------------------------------------------------------------------------------- percentiles
def nonzero_percentile(values: torch.Tensor, percentiles: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """q[b, s] = the ``percentiles[s]``-th percentile (linear interpolation, as ``np.percentile``) of the
    non-zero entries of row ``values[b]`` (B×N); NaN for a row without non-zero entries. Float64."""
    v = values.detach().double()
    p = torch.as_tensor(percentiles, dtype=torch.float64, device=v.device)
    nonzero = v != 0
    n = nonzero.sum(1, keepdim=True)                                   # B×1
    s = torch.where(nonzero, v, torch.full_like(v, math.inf)).sort(1).values
    pos = p[None, :] / 100.0 * (n - 1).clamp_min(0)                    # B×S
    lo = pos.floor().long()
    hi = pos.ceil().long()
    v_lo, v_hi = s.gather(1, lo), s.gather(1, hi)
    q = v_lo + (v_hi - v_lo) * (pos - lo)
    q = torch.where(v_hi == v_lo, v_lo, q)
    return torch.where(n > 0, q, torch.full_like(q, math.nan))


def above_percentile_masks(a: torch.Tensor, percentiles: Sequence[float]) -> torch.Tensor:
    """Masks B×S×(rest of a's shape): entries with attribution > the p-th percentile of the image's
    non-zero attributions (the seed's MoRF/ROAR rule); none for all-zero images."""
    flat = a.flatten(1)
    q = nonzero_percentile(flat, percentiles)                          # B×S, NaN → nothing removed
    mask = flat.double()[:, None, :] > q[:, :, None]
    return mask.view((a.shape[0], len(percentiles)) + tuple(a.shape[1:]))


def trapezoid(y: torch.Tensor, x: Sequence[float] | torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """∫ y dx by the trapezoid rule (``sklearn.metrics.auc`` for increasing x; dx = 1 when x is None)."""
    if x is None:
        return torch.trapezoid(y, dim=dim)
    return torch.trapezoid(y, torch.as_tensor(x, dtype=y.dtype, device=y.device), dim=dim)


def nanmean(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return values.nanmean(dim) if values.numel() else torch.tensor(math.nan)


# -------------------------------------------------------------------------------------- reductions
def curve_value(rows: torch.Tensor, steps: Sequence[float] | torch.Tensor, *, transform=None,
                auc_x: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """∫ T(c̄) ds by the trapezoid rule: c̄ = the NaN-safe mean over images of ``rows`` (B×S), T the
    ``transform`` (identity by default), over ``steps`` (or ``auc_x``). A 0-d float64 tensor."""
    curve = nanmean(rows.double(), 0)
    shown = transform(curve) if transform is not None else curve
    x = torch.as_tensor(steps if auc_x is None else auc_x, dtype=torch.float64)
    return trapezoid(shown.cpu(), x)


def scores_value(rows: torch.Tensor) -> torch.Tensor:
    """The NaN-safe mean of per-image scores (B); a 0-d float64 tensor (NaN when all are NaN)."""
    return nanmean(rows.double(), 0)


def reduce_rows(rows: torch.Tensor, reduction: str, value) -> torch.Tensor:
    """``reduction="mean"``: ``value(rows)`` (the metric's summary); ``"none"``: the per-image rows."""
    check_choice("reduction", reduction, ("mean", "none"))
    return rows if reduction == "none" else value(rows)


# ----------------------------------------------------------------------------------------- results
@dataclass
class MetricResult:
    """One metric's outcome: a scalar ``value`` (AUC or mean), an optional curve over ``steps``,
    the per-image scores and the metric's settings. ``n_nan``: images whose score is undefined
    (skipped in the mean); ``n_degenerate``: images whose attribution map is constant (e.g. all
    zero), which carries no ranking: removal metrics remove nothing (percentile rules) or remove in
    the random tie order, correlations and entropies are NaN (see :func:`degenerate_maps`)."""

    name: str
    value: float
    higher_is_better: bool
    steps: torch.Tensor | None = None
    curve: torch.Tensor | None = None
    per_image: torch.Tensor | None = None
    step_name: str = "step"
    curve_name: str = "value"
    n_images: int = 0
    n_nan: int = 0
    n_degenerate: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self, **labels: Any):
        """A tidy table: one row for the summary (``step`` NaN) and one per curve point."""
        import pandas as pd

        base = dict(labels, metric=self.name, higher_is_better=self.higher_is_better, n_images=self.n_images,
                    n_degenerate=self.n_degenerate)
        rows = [dict(base, kind="summary", step=math.nan, value=float(self.value), n_nan=self.n_nan)]
        if self.curve is not None and self.steps is not None:
            for s, v in zip(self.steps.tolist(), self.curve.tolist()):
                rows.append(dict(base, kind="curve", step=float(s), value=float(v), n_nan=0))
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": float(self.value), "higher_is_better": self.higher_is_better,
                               "n_images": self.n_images, "n_nan": self.n_nan,
                               "n_degenerate": self.n_degenerate, "settings": _plain(self.settings)}
        if self.curve is not None and self.steps is not None:
            out.update(step_name=self.step_name, curve_name=self.curve_name, steps=self.steps.tolist(),
                       curve=self.curve.tolist())
        if self.extra:
            out["extra"] = _plain(self.extra)
        return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)


def results_frame(results: dict[str, MetricResult] | Sequence[MetricResult], **labels: Any):
    """Concatenate results into one tidy pandas table."""
    import pandas as pd

    items = results.values() if isinstance(results, dict) else results
    frames = [r.to_frame(**labels) for r in items]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------------ accumulating
class DegenerateAttributionWarning(UserWarning):
    """Some attribution maps are constant (e.g. all zero): see ``MetricResult.n_degenerate``."""


def degenerate_maps(attributions: torch.Tensor, kind: str = "constant") -> torch.Tensor:
    """B booleans: is the map of image b degenerate? ``kind="constant"``: max = min over all its
    entries (e.g. all zero: no ranking, the removal and correlation metrics' notion);
    ``"zero"``: all entries 0 (entropy and Gini undefined)."""
    check_choice("kind", kind, ("constant", "zero"))
    flat = attributions.detach().flatten(1)
    if kind == "zero":
        return (flat == 0).all(1)
    return flat.amax(1) == flat.amin(1)


#: The reductions a metric state may declare (torchmetrics' ``dist_reduce_fx``): ``"cat"`` (a list of
#: per-image rows, concatenated over batches and, under ``torch.distributed``, over ranks in data-set
#: order) and ``"sum"`` (a count summed over ranks).
STATE_REDUCTIONS = ("cat", "sum")
_CLASS_FACTS = ("name", "higher_is_better")


def _check_arguments(cls: type, signature: inspect.Signature, kwargs: dict[str, Any]) -> None:
    """A TypeError naming the metric and its settings for a keyword its constructor does not take."""
    named = [n for n, p in list(signature.parameters.items())[1:]
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    catch_all = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [] if catch_all else [k for k in kwargs if k not in named]
    if not unknown:
        return
    takes = ", ".join(named + ["validate_args"]) + (" and options of its attribution method" if catch_all else "")
    raise TypeError(f"{cls.__name__} got unexpected setting(s) {', '.join(map(repr, unknown))}; it takes "
                    f"{takes}")


class Metric:
    """Accumulating form of a metric: ``update(model, x, y, attributions)`` on each batch, then
    ``compute() -> MetricResult``. Subclasses implement ``per_image`` (the rows of one batch from a
    pure function: a B-vector or a B×S curve) and ``summarize`` (the rows of all batches → result),
    and register with ``@explainreg.metrics.METRICS.register(name)``.

    State is declared with :meth:`add_state` (name, default, reduction ``"cat"`` or ``"sum"``), so
    :meth:`reset` restores it and ``compute`` syncs it across processes (``metrics/_sync.py``).
    ``name`` and ``higher_is_better`` are read-only class facts; a setting that changes them (ROAD's
    and region perturbation's ``order``) selects a subclass (``variant_by``, ``variants``).
    :meth:`settings` is derived from the constructor's signature. ``validate_args=False`` (a keyword
    of every metric) skips the probe forward pass each batch pays to check the logits and labels.

    Calling the metric (:meth:`forward`) adds the batch to the state, as :meth:`update` does, and
    returns the batch's own result (torchmetrics' ``forward``): two calls then :meth:`compute` give
    the value of one ``update`` over both batches.

    Random draws (stochastic metrics) and tie-breaks are keyed by the metric's ``seed`` and each
    image's position in the data set, ``self.batch_index`` during ``per_image``: a running count
    over the ``update`` calls since the last ``reset``, or the ``index`` passed to ``update`` (e.g.
    the global positions of a process's share). So a value does not depend on how the images are
    batched or chunked. ``compute`` warns (:class:`DegenerateAttributionWarning`) and reports
    ``n_degenerate`` when some attribution maps are constant."""

    name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    needs_attributions: ClassVar[bool] = True
    needs_model: ClassVar[bool] = True
    #: the mask ``update`` takes and what it marks (``"evidence"`` or ``"must_not_use"``,
    #: :data:`explainreg.inputs.MASK_MEANINGS`); None: the metric reads no mask.
    mask_meaning: ClassVar[str | None] = None
    #: whether ``update`` takes a ``ground_truth`` of the attributions' shape (AUP, AUR).
    needs_ground_truth: ClassVar[bool] = False
    #: the input layouts the metric is defined for (:data:`explainreg.inputs.LAYOUTS`).
    layouts: ClassVar[tuple[str, ...]] = ("image", "series", "tabular")
    #: which maps count in ``n_degenerate`` (see :func:`degenerate_maps`).
    degenerate: ClassVar[str] = "constant"
    #: constructor arguments left out of :meth:`settings` (they do not change the values).
    unrecorded: ClassVar[tuple[str, ...]] = ("max_batch",)
    #: the constructor argument whose value picks a variant class (``variants``: value → class).
    variant_by: ClassVar[str | None] = None
    #: the values of ``convention`` the metric accepts (:data:`CONVENTIONS`; metrics without the
    #: switch have only ``"explainreg"``).
    conventions: ClassVar[tuple[str, ...]] = ("explainreg",)
    validate_args: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each constructor a subclass defines is wrapped once: it takes ``validate_args`` (keyword) and,
        when it runs as the outermost constructor, records its arguments for :meth:`settings`."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_settings", False):
            cls.__init__ = _recording(init)

    def __new__(cls, *args: Any, **kwargs: Any) -> "Metric":
        """A setting that picks a variant class with its own facts (``variant_by``, ``variants``)."""
        variants = cls.__dict__.get("variants")
        if cls.variant_by is not None and variants:
            cls = variants.get(_argument(cls.__init__, cls.variant_by, args, kwargs), cls)
        return super().__new__(cls)

    def __init__(self) -> None:
        if not hasattr(self, "_states"):
            object.__setattr__(self, "_states", {})
        self.add_state("_rows", [], "cat")
        self.add_state("_indices", [], "cat")  # each row's image index, to order rows synced across ranks
        self.add_state("_n_degenerate", 0, "sum")
        self.add_state("_batches", 0, "sum")
        self._offset = 0
        self.batch_index = torch.zeros(0, dtype=torch.long)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _CLASS_FACTS:
            raise AttributeError(f"{key} is a fact of the class {type(self).__name__} ({getattr(type(self), key)!r}) "
                                 f"and cannot be changed per instance; subclass the metric instead")
        object.__setattr__(self, key, value)

    def add_state(self, name: str, default: Any, reduction: str) -> None:
        """Declare a piece of state: ``default`` (an empty list of per-batch tensors, a number or a
        tensor), restored by :meth:`reset`, reduced across processes by ``reduction``
        (:data:`STATE_REDUCTIONS`)."""
        check_choice("reduction", reduction, STATE_REDUCTIONS)
        if reduction == "cat" and not isinstance(default, list):
            raise TypeError(f"state {name!r} with reduction 'cat' must default to a list of tensors, got "
                            f"{type(default).__name__}")
        self._states[name] = (default, reduction)
        setattr(self, name, _fresh(default))

    def state(self) -> dict[str, Any]:
        """The declared state: ``{name: (value, reduction)}`` (what a sync across processes reduces)."""
        return {n: (getattr(self, n), r) for n, (_, r) in self._states.items()}

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments (defaults filled in, ``**options`` flattened), each read back from
        the attribute of the same name when the metric keeps a checked copy; without ``unrecorded``."""
        signature = inspect.signature(type(self).__init__)
        out: dict[str, Any] = {}
        for key, value in getattr(self, "_init_arguments", {}).items():
            if key in self.unrecorded:
                continue
            if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                out.update({k: _recorded(v) for k, v in value.items()})
            else:
                out[key] = _recorded(getattr(self, key, value))
        return out

    def per_image(self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor | None,
                  attributions: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def summarize(self, rows: torch.Tensor) -> MetricResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _begin_update(self, x: torch.Tensor | None, attributions: torch.Tensor | None,
                      index: torch.Tensor | None) -> None:
        """Set ``batch_index`` for this batch and advance the running offset."""
        n = len(x) if x is not None else len(attributions)
        if index is None:
            self.batch_index = torch.arange(self._offset, self._offset + n)
        else:
            self.batch_index = as_index(index, n)
        self._offset += n
        self._indices.append(self.batch_index)

    def _count_degenerate(self, attributions: torch.Tensor | None) -> None:
        if attributions is not None and self.needs_attributions:
            self._n_degenerate += int(degenerate_maps(attributions, self.degenerate).sum())

    def update(self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor | None = None,
               attributions: torch.Tensor | None = None, *, index: torch.Tensor | None = None) -> "Metric":
        """Add one batch. ``index`` (B,): the images' positions in the data set, which key their
        random draws and tie-breaks (default: the running count of images seen since ``reset``)."""
        if self.needs_attributions and attributions is None:
            raise ValueError(f"{self.name} needs attributions: call update(model, x, y, attributions)")
        if self.needs_model and model is None:
            raise ValueError(f"{self.name} needs the model: call update(model, x, y, attributions)")
        self._begin_update(x, attributions, index)
        with eval_mode(model) if model is not None else nullcontext(), validation(self.validate_args):
            rows = self.per_image(model, x, y, attributions)
        self._count_degenerate(attributions)
        self._rows.append(rows.detach())
        self._batches += 1
        return self

    def _reset_states(self) -> None:
        for name, (default, _) in self._states.items():
            setattr(self, name, _fresh(default))

    def reset(self) -> None:
        """Every declared state back to its default, the running image count to 0."""
        self._reset_states()
        self._offset = 0

    def compute(self) -> MetricResult:
        if not self._rows:
            raise RuntimeError(f"{self.name}: call update(...) with at least one batch before compute()")
        device = self._rows[0].device
        rows = torch.cat([r.to(device) for r in self._rows])
        # under torch.distributed: every rank's rows in data-set order, degenerate counts summed (_sync.py)
        rows = sync_rows(rows, row_index(getattr(self, "_indices", []), rows.shape[0]))
        result = self.summarize(rows)
        result.settings = {**self.settings(), **result.settings}
        self._report_degenerate(result)
        return result

    def _report_degenerate(self, result: MetricResult) -> None:
        n = sync_count(self._n_degenerate)  # all ranks' maps
        result.n_degenerate = n
        if n:
            what = ("constant (e.g. all zero) and carry no ranking: their scores are NaN (skipped) or come from "
                    "removing nothing / removing in random order" if self.degenerate == "constant"
                    else "all zero: their scores are NaN (skipped)")
            warnings.warn(f"{self.name}: {n} of {result.n_images} attribution maps are {what}; "
                          f"n_nan = {result.n_nan}, n_degenerate = {n}. Check the attribution "
                          f"method (zero gradients: a saturated model, dead ReLUs, a zero baseline on a zero input).",
                          DegenerateAttributionWarning, stacklevel=3)

    def forward(self, *args: Any, **kwargs: Any) -> MetricResult:
        """Add one batch to the state (the arguments of :meth:`update`) and return that batch's own result.

        As torchmetrics' ``forward``: the batch is scored alone (its rows, keyed by their positions in
        the data set that continue the running count) and then joins the accumulated state, so after
        ``metric(b1); metric(b2)``, ``metric.compute()`` equals one ``update`` over both batches. The
        batch's result is not synchronised across processes (``compute`` is).
        """
        kept = {name: getattr(self, name) for name in self._states}
        offset = self._offset
        self._reset_states()
        self._offset = offset
        try:
            self.update(*args, **kwargs)
            with local_sync():
                batch = self.compute()
        except BaseException:
            for name, value in kept.items():
                setattr(self, name, value)
            self._offset = offset
            raise
        for name, value in kept.items():   # "cat" lists join, "sum" counts add
            setattr(self, name, value + getattr(self, name))
        return batch

    def __call__(self, *args: Any, **kwargs: Any) -> MetricResult:
        """:meth:`forward`: accumulate the batch and return its own result."""
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


def _argument(init: Any, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The value constructor ``init`` receives for parameter ``name`` from ``args``, ``kwargs`` or its default."""
    if name in kwargs:
        return kwargs[name]
    parameters = list(inspect.signature(init).parameters.values())[1:]
    position = [p.name for p in parameters].index(name)
    return args[position] if position < len(args) else parameters[position].default


def _recording(init: Any) -> Any:
    """``init`` taking ``validate_args`` and, as the outermost constructor, recording its arguments."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recorded(self: "Metric", *args: Any, validate_args: bool = True, **kwargs: Any) -> None:
        if "_init_arguments" not in self.__dict__:
            _check_arguments(type(self), signature, kwargs)
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            object.__setattr__(self, "_init_arguments", dict(list(bound.arguments.items())[1:]))
            object.__setattr__(self, "validate_args", bool(validate_args))
        init(self, *args, **kwargs)

    recorded._records_settings = True  # type: ignore[attr-defined]
    return recorded


def _fresh(default: Any) -> Any:
    """A new copy of a state's default (a new list, a cloned tensor)."""
    if isinstance(default, list):
        return list(default)
    if isinstance(default, torch.Tensor):
        return default.clone()
    return default


def _recorded(value: Any) -> Any:
    """A setting as recorded: tuples as lists, a callable by its name."""
    if isinstance(value, tuple):
        return list(value)
    if callable(value) and not isinstance(value, (torch.Tensor, nn.Module)):
        return getattr(value, "__name__", "custom")
    return value


def curve_result(metric: Metric, rows: torch.Tensor, steps: Sequence[float], *, transform=None,
                 step_name: str = "step", curve_name: str = "value", auc_x: Sequence[float] | None = None,
                 ) -> MetricResult:
    """Mean curve over images (NaN-safe), its trapezoid AUC over ``steps`` (or ``auc_x``): :func:`curve_value`.
    ``metric``: the metric or its class (``name`` and ``higher_is_better`` are class facts)."""
    n_nan = int(torch.isnan(rows).any(1).sum()) if rows.numel() else 0
    curve = nanmean(rows.double(), 0)
    steps_t = torch.as_tensor(steps, dtype=torch.float64)
    value = curve_value(rows, steps_t, transform=transform, auc_x=auc_x)
    return MetricResult(metric.name, float(value), metric.higher_is_better, steps_t, curve.cpu(), rows.cpu(),
                        step_name=step_name, curve_name=curve_name, n_images=int(rows.shape[0]), n_nan=n_nan)


def scalar_result(metric: Metric, rows: torch.Tensor) -> MetricResult:
    """Mean of per-image scores over all images, NaN-safe (the count of NaN images reported)."""
    n_nan = int(torch.isnan(rows).sum())
    return MetricResult(metric.name, float(scores_value(rows)), metric.higher_is_better, per_image=rows.cpu(),
                        n_images=int(rows.shape[0]), n_nan=n_nan)
