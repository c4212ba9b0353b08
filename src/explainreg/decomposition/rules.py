"""Contextual-decomposition rules per layer type and their registry.

Contextual decomposition (CD) is due to Murdoch, Liu & Yu (2018), "Beyond word importance: contextual
decomposition to extract interactions from LSTMs"; its rules for convolutional networks (the bias split
in proportion to the parts' magnitudes, max-pooling at the total's argmax) to Singh, Murdoch & Yu (2019),
"Hierarchical interpretations for neural network predictions", as used by CDEP (Rieger, Singh, Murdoch &
Yu 2020, "Interpretations are useful: penalizing explanations to align neural networks with prior
knowledge").

A decomposition is held as :class:`Decomposed`: the relevant part ``rel`` and the irrelevant part
``irrel`` (one copy of the batch per blob each, stacked blob-major: N·B rows), **both propagated
by every rule**, and the ``total`` activation of the ordinary forward pass (B rows, shared by
every blob). ``total`` is a reference, not a stream: it gives max-pooling its indices and
training-mode BatchNorm its batch statistics. ``rel + irrel`` equals ``total`` up to rounding at
every layer; it is never used to *derive* irrel (``irrel = total − rel`` cancels catastrophically in
float32 and the bias split then amplifies the error layer after layer).

A rule maps ``(module, d_in) -> d_out``. Built-in rules:

* Conv / Linear / BatchNorm (affine ``W·+b``): ``r = W·rel``, ``s = W·irrel``,
  ``rel' = r + b·|r| / (|r| + |s| + ε)``, ``irrel' = s + b·(|s| + ε) / (|r| + |s| + ε)``
  (ε = 1e-19). Where r = s = 0 exactly (a unit that sees no input) the bias is split by the share ρ
  of the sample's input that is relevant, ``|m ⊙ x|₁ / |x|₁``, so an all-ones mask leaves irrel = 0 and
  an all-zeros mask rel = 0 at any depth (:func:`split_bias` gives the reason; the seed drops the
  bias there, breaking the sum, and ``order="seed"`` gives it to irrel). BatchNorm uses its running
  statistics in eval mode and the batch statistics of the total in training mode (without touching
  the running statistics).
* ReLU / LeakyReLU (relevant part first): ``rel' = f(rel)``, ``irrel' = f(rel + irrel) − f(rel)``.
* Tanh / Sigmoid / SiLU (Shapley value of the two players rel and irrel, f(0) split as a bias):
  ``rel' = ½[(f(rel) − f(0)) + (f(rel + irrel) − f(irrel))]``,
  ``irrel' = ½[(f(irrel) − f(0)) + (f(rel + irrel) − f(rel))]``, then f(0) added as a bias
  (:func:`split_bias`).
* MaxPool: the window's maximum of the *total* selects the entry both parts are read at; entries
  tied for the maximum (within a relative 1e-6) share the output equally, so the rule does not
  depend on how a kernel or rounding breaks ties (argmax indices for dilated and adaptive pools).
* AvgPool / AdaptiveAvgPool / Dropout (eval: identity; training: one mask shared by all parts) /
  Flatten / Identity: linear without bias, applied to each part.
* A constant tensor added in a custom forward (``fc(x) + b``) is a bias: it is split like
  ``nn.Linear``'s.
"""
from __future__ import annotations

import contextvars
import operator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

#: ε of the bias split, as the seed's ``10e-20``
EPS = 1e-19


class UnsupportedLayerError(TypeError):
    """A module or function in the forward pass has no decomposition rule (a ``TypeError``).

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition import UnsupportedLayerError, decompose
        >>> class Flip(nn.Module):
        ...     def forward(self, x):
        ...         return x.flip(-1)
        >>> try:
        ...     decompose(nn.Sequential(Flip(), nn.Linear(2, 2)), torch.ones(1, 2), torch.tensor([1.0, 0.0]))
        ... except UnsupportedLayerError:
        ...     print("no rule for flip")
        no rule for flip
    """


@dataclass
class Decomposed:
    """One activation split in two streams: ``rel`` and ``irrel`` (N·B×…, blob-major), and the
    ordinary forward activation ``total`` (B×…), with ``rel + irrel ≈ tile(total)``.

    ``tile(t)`` repeats a B-row tensor for each of the N blobs. This is what every rule receives and
    returns.

    Args:
        rel: the part due to the masked region, N·B×… (the N blobs' copies of the batch, blob-major).
        irrel: the rest (other inputs and the biases), the same shape as ``rel``.
        total: the ordinary activation, B×… (shared by all blobs).

    Shape:
        rel, irrel: (N·B, ...); total: (B, ...). ``n_blobs`` is N.

    Raises:
        TypeError: a part is not a tensor.
        ValueError: rel and irrel differ in shape, or rel is not N copies of total's shape.

    Example::

        >>> import torch
        >>> from explainreg.decomposition import Decomposed
        >>> x = torch.tensor([[1.0, 2.0]])
        >>> d = Decomposed(x * torch.tensor([1.0, 0.0]), x * torch.tensor([0.0, 1.0]), x)
        >>> d.n_blobs, d.sum
        (1, tensor([[1., 2.]]))
        >>> d.map(lambda t: 2 * t).rel                     # a linear, bias-free map on every part
        tensor([[2., 0.]])
        >>> two = Decomposed(torch.zeros(2, 2), torch.zeros(2, 2), x)   # N = 2 blobs of a 1-image batch
        >>> two.n_blobs, tuple(two.tile(x).shape)
        (2, (2, 2))
    """

    rel: torch.Tensor
    irrel: torch.Tensor
    total: torch.Tensor

    def __post_init__(self) -> None:
        if not (isinstance(self.rel, torch.Tensor) and isinstance(self.irrel, torch.Tensor)
                and isinstance(self.total, torch.Tensor)):
            raise TypeError("Decomposed(rel, irrel, total) takes three tensors; a rule returns "
                            "Decomposed(f(d.rel), f(d.irrel), f(d.total)) for a linear, bias-free f")
        if self.rel.shape != self.irrel.shape:
            raise ValueError(f"Decomposed: rel {tuple(self.rel.shape)} and irrel {tuple(self.irrel.shape)} "
                             "must have the same shape")
        if self.total.dim() == 0 or self.rel.shape[0] % max(self.total.shape[0], 1) \
                or self.rel.shape[1:] != self.total.shape[1:]:
            raise ValueError(f"Decomposed: rel {tuple(self.rel.shape)} must be N copies of total "
                             f"{tuple(self.total.shape)} stacked in the batch dimension")

    @property
    def n_blobs(self) -> int:
        return self.rel.shape[0] // self.total.shape[0]

    def tile(self, t: torch.Tensor) -> torch.Tensor:
        """Repeat a tensor with B rows for each of the N blobs (N·B rows, blob-major)."""
        n = self.n_blobs
        if n == 1:
            return t
        return t.unsqueeze(0).expand(n, *t.shape).reshape(n * t.shape[0], *t.shape[1:])

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Decomposed":
        """A linear, bias-free map applied to each part and to the total."""
        return Decomposed(fn(self.rel), fn(self.irrel), fn(self.total))

    @property
    def sum(self) -> torch.Tensor:
        """``rel + irrel`` per blob (N·B rows)."""
        return self.rel + self.irrel


ModuleRule = Callable[[nn.Module, Decomposed], Decomposed]
FunctionRule = Callable[..., Any]

#: module type -> rule(module, d) -> Decomposed (a :class:`~explainreg.registry.Registry` keyed by type)
RULES: Registry[ModuleRule] = Registry("contextual decomposition rule for module type")
#: function object or method name -> ``rule(*args, **kwargs)`` with Decomposed among the args
FUNCTION_RULES: Registry[FunctionRule] = Registry("contextual decomposition rule for function")
#: module types known to have no rule -> why, and what to use instead (named in the engine's error;
#: left out of :func:`~explainreg.decomposition.supported_layers`)
UNSUPPORTED: dict[type, str] = {}


def register_rule(module_type: type, rule: ModuleRule | None = None, *, replace: bool = False):
    """Teach the engine a layer type: ``rule(module, d: Decomposed) -> Decomposed``.

    Usable as a decorator (``@register_rule(MyLayer)``). A subclass inherits its parent's rule only
    when it does not override ``forward``; one that does is traced through its own forward (or
    refused with :class:`~explainreg.decomposition.UnsupportedLayerError`) unless it has a rule of its
    own. A rule returns both parts and the module's ordinary output, e.g. for a bias-free linear layer
    ``Decomposed(module(d.rel), module(d.irrel), module(d.total))`` (or ``d.map(module)``); the
    building blocks :func:`affine`, :func:`relevant_first`, :func:`shapley`, :func:`both` and
    :func:`reshape_like` cover the usual layer kinds. A type that has a rule is refused a second, different
    one unless ``replace=True``.

    Args:
        module_type: the ``nn.Module`` subclass the rule decomposes.
        rule: ``rule(module, d) -> Decomposed``; omitted, ``register_rule`` returns a decorator.
        replace: replace the rule ``module_type`` has (default: refuse, naming it).

    Returns:
        The rule (or the decorator), unchanged.

    Raises:
        TypeError: ``module_type`` is not an ``nn.Module`` subclass, or ``rule`` is not callable.
        ValueError: ``module_type`` has another rule and ``replace`` is False.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition import RULES, UnsupportedLayerError, decompose, register_rule
        >>> class Reverse(nn.Module):                      # a custom layer: 2·x with the features reversed
        ...     def forward(self, x):
        ...         return 2 * x.flip(-1)
        >>> net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), Reverse(), nn.Linear(3, 2))
        >>> x, mask = torch.randn(4, 3), torch.tensor([1.0, 1.0, 0.0])
        >>> try:
        ...     decompose(net, x, mask)                    # x.flip has no rule
        ... except UnsupportedLayerError:
        ...     print("no rule")
        no rule
        >>> @register_rule(Reverse)
        ... def reverse_rule(module, d):
        ...     return d.map(module)                       # linear, bias-free: the same map on each part
        >>> rel, irrel = decompose(net, x, mask)
        >>> bool(torch.allclose(rel + irrel, net(x), atol=1e-5))
        True
        >>> register_rule(Reverse, lambda module, d: d.map(module))
        Traceback (most recent call last):
        ...
        ValueError: contextual decomposition rule for module type Reverse is already registered to ...
        >>> _ = register_rule(Reverse, reverse_rule, replace=True)   # the same rule again: accepted
        >>> del RULES[Reverse]                             # (undo, for this example only)
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise TypeError(f"module_type must be an nn.Module subclass, got {module_type!r}")

    def decorate(fn: ModuleRule) -> ModuleRule:
        if not callable(fn):
            raise TypeError(f"rule must be callable as rule(module, d) -> Decomposed, got {fn!r}")
        RULES.register(module_type, fn, replace=replace)
        return fn

    return decorate(rule) if rule is not None else decorate


def call_rule(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a module rule as taking the module's whole call, ``rule(module, *args, **kwargs)``, instead
    of one decomposed input: attention takes query, key, value and masks (the engine passes the
    arguments as the forward received them, :class:`Decomposed` where they carry the decomposition).

    Example::

        >>> @call_rule
        ... def rule(module, query, key, value, **masks): ...
        >>> rule.takes_call
        True
    """
    fn.takes_call = True  # type: ignore[attr-defined]
    return fn


def register_function_rule(target: Any, rule: FunctionRule | None = None, *, replace: bool = False):
    """Teach the engine a function (``F.gelu``) or tensor method name (``"relu"``) met in a traced
    forward: ``rule(*args, **kwargs)`` receives the call's arguments, with :class:`Decomposed`
    in place of the decomposed tensors, and returns a ``Decomposed`` (or a plain value).

    Args:
        target: the function object (``F.softplus``, ``operator.add``) or the tensor method's name
            (``"softplus"``) as torch.fx records it.
        rule: the rule; omitted, ``register_function_rule`` returns a decorator.
        replace: replace the rule ``target`` has (default: refuse a second, different one, naming it).

    Returns:
        The rule (or the decorator), unchanged.

    Example::

        >>> import torch; import torch.nn.functional as F; from torch import nn
        >>> from explainreg.decomposition import FUNCTION_RULES, decompose, register_function_rule
        >>> from explainreg.decomposition.rules import shapley
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc2(F.softplus(self.fc1(x)))
        >>> @register_function_rule(F.softplus)           # smooth like tanh: the two-player Shapley split
        ... def softplus_rule(d, *args, **kwargs):
        ...     return shapley(d, lambda t: F.softplus(t, *args, **kwargs))
        >>> net, x = Net(), torch.randn(4, 3)
        >>> rel, irrel = decompose(net, x, torch.tensor([1.0, 0.0, 0.0]))
        >>> bool(torch.allclose(rel + irrel, net(x), atol=1e-5))
        True
        >>> del FUNCTION_RULES[F.softplus]                 # (undo, for this example only)
    """

    def decorate(fn: FunctionRule) -> FunctionRule:
        FUNCTION_RULES.register(target, fn, replace=replace)
        return fn

    return decorate(rule) if rule is not None else decorate


def find_rule(module_type: type) -> ModuleRule | None:
    """The rule registered for ``module_type`` or the nearest parent whose ``forward`` it keeps.

    A subclass that overrides ``forward`` (a weight-standardised conv, a LoRA-style linear) computes
    something else than its parent, so it does not inherit the parent's rule.

    Args:
        module_type: a module class.

    Returns:
        The rule, or None (the engine then traces the module's own forward).

    Example::

        >>> from torch import nn
        >>> from explainreg.decomposition import RULES, find_rule
        >>> class Plain(nn.Linear): pass
        >>> class Custom(nn.Linear):
        ...     def forward(self, x): return super().forward(x) * 2
        >>> find_rule(Plain) is RULES[nn.Linear], find_rule(Custom)
        (True, None)
    """
    for cls in module_type.__mro__:
        if cls in RULES:
            return RULES[cls]
        if "forward" in vars(cls) and not cls.__module__.startswith("torch."):
            return None  # a forward of its own (torch's own subclasses share their base's rule)
    return None


# ----------------------------------------------------------------------------------------------
# generic building blocks


#: N·B relevant shares of the rows of the running decomposition's input (None outside one, and under
#: ``order="seed"``): the share of the bias that a unit receiving neither part gives to rel
_ROW_SHARE: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("cd_row_share", default=None)


def input_share(rel: torch.Tensor, irrel: torch.Tensor, empty: torch.Tensor | None = None) -> torch.Tensor:
    """The relevant share of each row of a decomposition's input: ``ρ = |rel|₁ / (|rel|₁ + |irrel|₁)``.

    A row with no input at all (every value 0) takes ``empty`` instead: the mean of its mask, so
    that an all-ones mask gives 1 and an all-zeros mask 0 on every row (0 when not given).

    Args:
        rel, irrel: the two parts of the input, N·B×… (blob-major rows).
        empty: N·B values for rows that are 0 everywhere, or None.

    Shape:
        rel, irrel: (N·B, ...); empty and output: (N·B,).

    Returns:
        ρ ∈ [0, 1] per row, without gradient.

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import input_share
        >>> x = torch.tensor([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
        >>> m = torch.tensor([1.0, 1.0, 0.0])
        >>> input_share(m * x, (1 - m) * x, m.mean().expand(2))   # 1 of 4; the empty row: the mask's mean
        tensor([0.2500, 0.6667])
    """
    r = rel.detach().abs().flatten(1).sum(1)
    s = irrel.detach().abs().flatten(1).sum(1)
    fill = torch.zeros_like(r) if empty is None else empty.detach().to(r.dtype).expand_as(r)
    return torch.where(r + s > 0, r / (r + s).clamp_min(torch.finfo(r.dtype).tiny), fill)


@contextmanager
def dead_unit_share(share: torch.Tensor | None) -> Iterator[None]:
    """Within the block, :func:`split_bias` gives the bias of a unit whose two parts are both exactly 0
    to rel and irrel in the proportion ``share`` (N·B, one per row), instead of all to irrel.

    ``decompose`` and ``decompose_tokens`` run the rules inside it with :func:`input_share` of their
    input (see :func:`split_bias` for why).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import dead_unit_share, split_bias
        >>> zero = torch.zeros(2, 1)
        >>> with dead_unit_share(torch.tensor([1.0, 0.25])):
        ...     split_bias(zero, zero, 4.0)
        (tensor([[4.],
                [1.]]), tensor([[0.],
                [3.]]))
    """
    token = _ROW_SHARE.set(share)
    try:
        yield
    finally:
        _ROW_SHARE.reset(token)


def row_share(t: torch.Tensor) -> torch.Tensor | None:
    """The running :func:`dead_unit_share` shaped to broadcast against ``t`` (rows first), a number
    when every row has the same share, or None (outside a decomposition, or rows that do not match).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import dead_unit_share, row_share
        >>> with dead_unit_share(torch.tensor([1.0, 0.5])):
        ...     tuple(row_share(torch.zeros(2, 3, 4)).shape)
        (2, 1, 1)
        >>> row_share(torch.zeros(2, 3)) is None
        True
    """
    share = _ROW_SHARE.get()
    if share is None:
        return None
    if t.dim() >= 1 and t.shape[0] == share.numel():
        return share.to(t.dtype).view(-1, *([1] * (t.dim() - 1)))
    if bool((share == share[0]).all()):
        return share[:1].to(t.dtype).reshape(())
    return None  # batch not in the first dimension, per-row shares differ: the bias goes to irrel


class _BiasSplit(torch.autograd.Function):
    """``rel' = r + b·q``, ``irrel' = s + b·(1 − q)`` with ``q = |r| / (|r| + |s| + ε)`` (``q = ρ``
    where r = s = 0, when a fallback ρ is given), fused (the CD cost is elementwise-bound; the autograd
    graph of the same formula makes 3× the passes)."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, s: torch.Tensor, bias: torch.Tensor, eps: float,
                fallback: torch.Tensor | None = None):
        denominator = s.abs().add_(r.abs()).add_(eps)
        share = r.abs().div_(denominator)
        if fallback is not None:
            share = torch.where((r == 0) & (s == 0), fallback, share)
        ctx.save_for_backward(r, s, share, denominator, bias)
        rel = torch.addcmul(r, bias, share)
        irrel = s + bias - bias * share
        return rel, irrel

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rel: torch.Tensor, grad_irrel: torch.Tensor):
        r, s, share, denominator, bias = ctx.saved_tensors
        diff = grad_rel - grad_irrel
        t = (diff * bias).div_(denominator)  # (g_rel − g_irrel)·b / D
        grad_r = grad_rel + t * r.sign() * (1 - share) if ctx.needs_input_grad[0] else None
        grad_s = grad_irrel - t * s.sign() * share if ctx.needs_input_grad[1] else None
        grad_b = (grad_irrel + diff * share).sum_to_size(bias.shape) if ctx.needs_input_grad[2] else None
        return grad_r, grad_s, grad_b, None, None


def split_bias(r: torch.Tensor, s: torch.Tensor, bias: torch.Tensor | float | None,
               eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Add a bias to the two parts in proportion to their magnitudes (CD's affine rule).

    ``rel' = r + b·|r| / (|r| + |s| + ε)``, ``irrel' = s + b·(|s| + ε) / (|r| + |s| + ε)``, and
    ``rel' + irrel' = r + s + b`` always.

    A unit whose two parts are both exactly 0 (its receptive field is exactly 0, as MNIST's
    background or a zero-padded series, or every input to it was cut by a ReLU) carries no evidence
    about the mask: the ratio is 0/0. Inside a decomposition (:func:`dead_unit_share`) such a unit
    gives its bias to rel in the share ρ of its sample's input that is relevant,
    ``ρ = |m ⊙ x|₁ / |x|₁`` (the mask's mean for an input that is 0 everywhere): the bias is split
    as it would be if the unit saw the whole input, so that an all-ones mask gives irrel = 0 and an
    all-zeros mask rel = 0 exactly at any depth; ρ treats the parts alike (the mask 1 − m gives
    1 − ρ), as the magnitude rule does; and the decomposition depends on the mask only through
    m ⊙ x and (1 − m) ⊙ x (a mask value on an input that is 0 changes nothing). Outside a
    decomposition (and under ``order="seed"``), where r = s = 0 the whole bias goes to irrel; CDEP's
    code drops it there, breaking the sum.

    Args:
        r, s: the relevant and irrelevant parts before the bias.
        bias: a tensor broadcastable to r, a number, or None (parts returned unchanged).
        eps: ε (default :data:`EPS` = 1e-19).

    Shape:
        r, s: any shape (the same); output: two tensors of that shape.

    Returns:
        ``(rel, irrel)``. The backward pass is fused (differentiable once).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import split_bias
        >>> split_bias(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]), 3.0)
        (tensor([2., 0.]), tensor([4., 3.]))
    """
    if bias is None:
        return r, s
    if not isinstance(bias, torch.Tensor):
        bias = torch.tensor(bias, dtype=r.dtype, device=r.device)
    return _BiasSplit.apply(r, s, bias.to(r.dtype), eps, row_share(r))


def affine(d: Decomposed, linear_part: Callable[[torch.Tensor], torch.Tensor], total_out: torch.Tensor,
           bias: torch.Tensor | None, eps: float = EPS) -> Decomposed:
    """Affine layer ``total_out = linear_part(total) + bias``: bias split in proportion to |r|, |s|.

    ``r = W·rel``, ``s = W·irrel``, then :func:`split_bias`: ``rel' = r + b·|r| / (|r| + |s| + ε)``,
    ``irrel' = s + b·(|s| + ε) / (|r| + |s| + ε)``.

    Args:
        d: the layer input.
        linear_part: the layer without its bias, applied to both streams in one call.
        total_out: the layer's ordinary output (becomes the result's ``total``).
        bias: broadcastable to the output, or None.
        eps: ε of the split.

    Returns:
        The layer output as a :class:`Decomposed`.

    Example::

        >>> import torch; import torch.nn.functional as F
        >>> from explainreg.decomposition.rules import Decomposed, affine
        >>> w, b = torch.tensor([[1.0, 1.0]]), torch.tensor([3.0])
        >>> x = torch.tensor([[1.0, 2.0]])
        >>> d = Decomposed(x * torch.tensor([1.0, 0.0]), x * torch.tensor([0.0, 1.0]), x)
        >>> out = affine(d, lambda t: F.linear(t, w), F.linear(x, w, b), b)
        >>> out.rel, out.irrel, out.total                  # r = 1, s = 2: the bias 3 splits 1 : 2
        (tensor([[2.]]), tensor([[4.]]), tensor([[6.]]))
    """
    r, s = linear_part(torch.cat([d.rel, d.irrel])).chunk(2)  # one call for both streams
    rel, irrel = split_bias(r, s, bias, eps)
    return Decomposed(rel, irrel, total_out)


#: True while a decomposition runs under ``order="seed"``: affine layers and max-pools compute as
#: CDEP's ``cd()`` does (:func:`seed_arithmetic`)
_SEED_ARITHMETIC: contextvars.ContextVar[bool] = contextvars.ContextVar("cd_seed_arithmetic", default=False)


@contextmanager
def seed_arithmetic(on: bool = True) -> Iterator[None]:
    """Within the block (``on``), Linear and Conv layers follow :func:`seed_affine` and max-pools read
    both parts at the argmax of ``rel + irrel`` (:func:`max_pool` with ``pick="sum"``): CDEP's
    ``cd()`` operation for operation, so that where a pooling window's entries tie exactly, rounding
    picks the entry the seed's code picks. ``run_rules(..., order="seed")`` runs inside it.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.rules import Decomposed, RULES, seed_arithmetic
        >>> pool = nn.MaxPool1d(2)
        >>> total = torch.tensor([[[1.0, 1.0]]])            # an exact tie in the total
        >>> d = Decomposed(torch.tensor([[[0.25, 0.75]]]), torch.tensor([[[0.75, 0.2500001]]]), total)
        >>> RULES[nn.MaxPool1d](pool, d).rel                # shared: the mean of the tied entries
        tensor([[[0.5000]]])
        >>> with seed_arithmetic():
        ...     RULES[nn.MaxPool1d](pool, d).rel            # rel + irrel is largest at the second entry
        tensor([[[0.7500]]])
    """
    token = _SEED_ARITHMETIC.set(bool(on))
    try:
        yield
    finally:
        _SEED_ARITHMETIC.reset(token)


def seed_affine(d: Decomposed, layer: Callable[[torch.Tensor], torch.Tensor], total_out: torch.Tensor,
                bias: torch.Tensor | None) -> Decomposed:
    """CDEP's affine rule as its code computes it (``propagate_conv_linear``): ``r = layer(rel) − b``,
    ``s = layer(irrel) − b`` (each part through the whole layer, bias included, on its own),
    ``rel' = r + (|r| / (|r| + |s| + ε))·b``, ``irrel' = s + (|s| / (|r| + |s| + ε))·b``.

    The values are those of :func:`affine` up to rounding; the rounding is the seed's, which decides
    the seed's max-pool picks where a window's entries tie exactly. A unit with r = s = 0 gives its
    bias to irrel (the seed's code drops it there, breaking the sum rel + irrel = output).

    Args:
        d: the layer input.
        layer: the whole layer (``module``, bias included), applied to each part separately.
        total_out: the layer's ordinary output. bias: broadcastable to the output, or None.

    Returns:
        The layer output as a :class:`Decomposed`.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.rules import Decomposed, seed_affine
        >>> fc = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = fc.weight.copy_(torch.tensor([[1.0, 1.0]])), fc.bias.fill_(3.0)
        >>> x = torch.tensor([[1.0, 2.0]])
        >>> out = seed_affine(Decomposed(x * torch.tensor([1.0, 0.0]), x * torch.tensor([0.0, 1.0]), x),
        ...                   fc, fc(x), fc.bias)
        >>> out.rel, out.irrel                              # r = 1, s = 2: the bias 3 splits 1 : 2
        (tensor([[2.]], grad_fn=<AddBackward0>), tensor([[4.]], grad_fn=<AddBackward0>))
    """
    if bias is None:
        return Decomposed(layer(d.rel), layer(d.irrel), total_out)
    r, s = layer(d.rel) - bias, layer(d.irrel) - bias
    size_r, size_s = r.abs(), s.abs()
    denominator = size_r + size_s + EPS
    share_s = torch.where((r == 0) & (s == 0), torch.ones_like(size_s), size_s / denominator)
    return Decomposed(r + (size_r / denominator) * bias, s + share_s * bias, total_out)


def relevant_first(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """``rel' = f(rel)``, ``irrel' = f(rel + irrel) − f(rel)`` (ReLU-type rule).

    Args:
        d: the input.
        fn: the elementwise activation (ReLU, LeakyReLU, ReLU6, ...).

    Returns:
        The activation's output as a :class:`Decomposed` (``total = fn(d.total)``).

    Example::

        >>> import torch; import torch.nn.functional as F
        >>> from explainreg.decomposition.rules import Decomposed, relevant_first
        >>> rel, irrel = torch.tensor([[-1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
        >>> out = relevant_first(Decomposed(rel, irrel, rel + irrel), F.relu)
        >>> out.rel, out.irrel
        (tensor([[0., 2.]]), tensor([[ 2., -1.]]))
    """
    rel = fn(d.rel)
    return Decomposed(rel, fn(d.sum) - rel, fn(d.total))


def shapley(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor], eps: float = EPS) -> Decomposed:
    """Two-player Shapley split of ``f(rel + irrel) − f(0)``; the constant ``f(0)`` is a bias, split
    like the affine rule's (all of it to rel for an all-ones mask, to irrel for an all-zeros one):
    ``a_rel = ½[(f(rel) − f(0)) + (f(rel + irrel) − f(irrel))]``, ``a_irrel`` symmetric.

    Args:
        d: the input.
        fn: a smooth elementwise activation (tanh, sigmoid, GELU, ...).
        eps: ε of the split of ``f(0)``.

    Returns:
        The output as a :class:`Decomposed` with ``rel + irrel = f(rel + irrel)``.

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import Decomposed, shapley
        >>> rel, irrel = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 2.0]])
        >>> out = shapley(Decomposed(rel, irrel, rel + irrel), torch.sigmoid)   # f(0) = ½ is split too
        >>> bool(torch.allclose(out.sum, torch.sigmoid(rel + irrel)))
        True
        >>> out.rel                              # ½[(σ(½) − ½) + (σ(3/2) − σ(1))] + its share of ½
        tensor([[ 0.2690, -0.0348]])
    """
    f0 = fn(torch.zeros((), dtype=d.rel.dtype, device=d.rel.device))
    f_rel, f_irrel, f_sum = fn(d.rel), fn(d.irrel), fn(d.sum)
    a_rel = 0.5 * ((f_rel - f0) + (f_sum - f_irrel))
    a_irrel = 0.5 * ((f_irrel - f0) + (f_sum - f_rel))
    rel, irrel = split_bias(a_rel, a_irrel, f0 if bool(f0 != 0) else None, eps)
    return Decomposed(rel, irrel, fn(d.total))


def both(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """A linear, bias-free map applied to each part (and the total): ``d.map(fn)``.

    Args:
        d: the input.
        fn: a linear map without bias (average pooling, identity, a fixed scaling, ...).

    Returns:
        ``Decomposed(fn(d.rel), fn(d.irrel), fn(d.total))``.

    Example::

        >>> import torch; import torch.nn.functional as F
        >>> from explainreg.decomposition.rules import Decomposed, both
        >>> x = torch.arange(4.0).view(1, 1, 4)
        >>> out = both(Decomposed(x, torch.zeros_like(x), x), lambda t: F.avg_pool1d(t, 2))
        >>> out.rel, out.irrel
        (tensor([[[0.5000, 2.5000]]]), tensor([[[0., 0.]]]))
    """
    return d.map(fn)


def reshape_like(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """A per-sample reshape (view, flatten from dim 1, ...): computed on the total, copied to the parts.

    Args:
        d: the input.
        fn: the reshape, applied to the total; the parts take its per-sample shape.

    Returns:
        The reshaped :class:`Decomposed`.

    Raises:
        ValueError: the reshape does not keep the batch dimension (``x.view(-1)``).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import Decomposed, reshape_like
        >>> x = torch.ones(2, 3, 4)
        >>> d = Decomposed(x, torch.zeros_like(x), x)
        >>> tuple(reshape_like(d, lambda t: t.flatten(1)).rel.shape)
        (2, 12)
        >>> reshape_like(d, lambda t: t.view(-1))
        Traceback (most recent call last):
        ...
        ValueError: contextual decomposition needs reshapes that keep the batch dimension; ...
    """
    total_out = fn(d.total)
    if not isinstance(total_out, torch.Tensor) or total_out.dim() == 0 or total_out.shape[0] != d.total.shape[0]:
        raise ValueError(f"contextual decomposition needs reshapes that keep the batch dimension; "
                         f"{tuple(d.total.shape)} became {tuple(getattr(total_out, 'shape', ()))}. "
                         "Use x.view(x.size(0), -1) or torch.flatten(x, 1)")
    shape = (d.rel.shape[0], *total_out.shape[1:])
    return Decomposed(d.rel.reshape(shape), d.irrel.reshape(shape), total_out)




#: entries of a max-pool window within a relative TIE_RTOL of its maximum are tied for it (the same
#: threshold in every precision, and never below 8 units of rounding of the dtype)
TIE_RTOL = 1e-6


def tie_tolerance(dtype: torch.dtype) -> float:
    """The relative tolerance within which max-pool entries tie: ``max(TIE_RTOL, 8·eps(dtype))``.

    Args:
        dtype: a floating-point dtype.

    Returns:
        The tolerance (1e-6 for float32 and float64).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import tie_tolerance
        >>> tie_tolerance(torch.float32), tie_tolerance(torch.float16)
        (1e-06, 0.0078125)
    """
    return max(TIE_RTOL, 8 * torch.finfo(dtype).eps)


def _windows(t: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
             out_shape: tuple[int, ...], fill: float) -> torch.Tensor:
    """B×C×O₁×…×O_k×(K₁·…·K_k): the pooling windows of ``t`` (padding filled with ``fill``)."""
    k = len(kernel)
    pads: list[int] = []
    for i in reversed(range(k)):
        need = (out_shape[i] - 1) * stride[i] + kernel[i]
        right = max(0, need - (t.shape[2 + i] + padding[i]))
        pads += [padding[i], right]
    t = F.pad(t, pads, value=fill)
    for i in range(k):
        t = t.unfold(2 + i, kernel[i], stride[i]).narrow(2 + i, 0, out_shape[i])
    return t.flatten(2 + k)


_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _tiled_max_pool(d: Decomposed, kernel: tuple[int, ...], total_out: torch.Tensor) -> Decomposed:
    """Non-overlapping windows (stride = kernel, no padding): every entry belongs to one window, so
    the tie mask lives at the input's resolution and the shares are two average pools."""
    k = len(kernel)
    t = d.total
    crop = tuple(o * s for o, s in zip(total_out.shape[2:], kernel))  # floor mode drops the remainder
    t = t[(..., *[slice(0, c) for c in crop])]
    top = total_out
    for i, s in enumerate(kernel):
        top = top.repeat_interleave(s, dim=2 + i)
    tied = (t >= top - tie_tolerance(t.dtype) * top.abs()).to(d.rel.dtype)
    pool = lambda v: _AVG_POOL[k](v, kernel)  # noqa: E731
    count = d.tile(pool(tied))
    tied = d.tile(tied)
    share = lambda v: pool(v[(..., *[slice(0, c) for c in crop])] * tied) / count  # noqa: E731
    return Decomposed(share(d.rel), share(d.irrel), total_out)


def max_pool_shared_ties(d: Decomposed, kernel, stride, padding, total_out: torch.Tensor) -> Decomposed:
    """Max-pooling in which the entries tied for the window's maximum of the total (within a relative
    ``TIE_RTOL`` = 1e-6) share its output equally: ``rel' = Σ_{j tied} rel_j / n_tied``, irrel likewise.

    Ties are common (zeros after a ReLU, equal activations over a constant background). Among exact
    ties the index a pooling kernel returns differs between float32 and float64 kernels, and
    rounding breaks ties that are exact in exact arithmetic differently in each precision; either
    moved rel by up to a third of the logit scale on deep nets. Sharing makes the rule independent
    of both. A window whose two largest entries differ by about the threshold can still be decided
    differently by rounding: CD's max-pool rule is discontinuous there.

    Args:
        d: the input, B×C×L (1-D), B×C×H×W (2-D) or B×C×D×H×W (3-D).
        kernel, stride, padding: as ``F.max_pool*d`` (an int or one value per spatial dim; stride
            None = kernel).
        total_out: the pool's ordinary output (its shape fixes the output size, ceil mode included).

    Returns:
        The pooled :class:`Decomposed`.

    Example::

        >>> import torch; import torch.nn.functional as F
        >>> from explainreg.decomposition.rules import Decomposed, max_pool_shared_ties
        >>> total = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])        # two entries tie for the max
        >>> rel = torch.tensor([[[[0.2, 0.6], [0.0, 0.0]]]])
        >>> d = Decomposed(rel, total - rel, total)
        >>> out = max_pool_shared_ties(d, 2, None, 0, F.max_pool2d(total, 2))
        >>> out.rel, out.irrel                              # the mean of the tied entries' parts
        (tensor([[[[0.4000]]]]), tensor([[[[0.6000]]]]))
    """
    k = total_out.dim() - 2
    as_tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * k  # noqa: E731
    kernel, padding = as_tuple(kernel), as_tuple(padding)
    stride = as_tuple(stride) if stride not in (None, (), []) else kernel
    out_shape = tuple(total_out.shape[2:])
    fits = all(o * kk <= n for o, kk, n in zip(out_shape, kernel, d.total.shape[2:]))  # no ceil-mode overhang
    if stride == kernel and not any(padding) and fits and k in (1, 2, 3):
        return _tiled_max_pool(d, kernel, total_out)
    win = _windows(d.total, kernel, stride, padding, out_shape, float("-inf"))
    top = win.amax(-1, keepdim=True)
    tied = (win >= top - tie_tolerance(win.dtype) * top.abs()).to(d.rel.dtype)
    weights = d.tile(tied / tied.sum(-1, keepdim=True))
    share = lambda t: (_windows(t, kernel, stride, padding, out_shape, 0.0) * weights).sum(-1)  # noqa: E731
    return Decomposed(share(d.rel), share(d.irrel), total_out)


def max_pool(d: Decomposed, pool: Callable[..., tuple[torch.Tensor, torch.Tensor]], *,
             pick: str = "total") -> Decomposed:
    """Both parts read at one entry of each window: the argmax of the total (``pick="total"``, where
    windows cannot be unfolded: dilation, adaptive pooling) or of ``rel + irrel`` per blob
    (``pick="sum"``, CDEP's ``propagate_pooling``, used under ``order="seed"``). The two differ only
    where a window's entries tie in the total and rounding makes ``rel + irrel`` differ among them.

    Args:
        d: the input, B×C×….
        pool: ``pool(t) -> (output, indices)``, e.g. ``F.max_pool2d(..., return_indices=True)``.
        pick: ``"total"`` or ``"sum"``: the tensor whose argmax selects the entry.

    Returns:
        The pooled :class:`Decomposed` (ties go to the one index the kernel returns).

    Raises:
        ValueError: ``pick`` is not ``"total"`` or ``"sum"``.

    Example::

        >>> import torch; import torch.nn.functional as F
        >>> from explainreg.decomposition.rules import Decomposed, max_pool
        >>> total = torch.tensor([[[[1.0, 3.0], [2.0, 0.0]]]])
        >>> rel = torch.tensor([[[[1.0, 0.5], [2.0, 0.0]]]])
        >>> out = max_pool(Decomposed(rel, total - rel, total), lambda t: F.max_pool2d(t, 2, return_indices=True))
        >>> out.rel, out.irrel                              # read where the total is largest (3)
        (tensor([[[[0.5000]]]]), tensor([[[[2.5000]]]]))
    """
    if pick not in ("total", "sum"):
        raise ValueError(f"max_pool: pick must be 'total' (the total's argmax) or 'sum' (rel + irrel's, "
                         f"CDEP's code), got {pick!r}")
    total_out, idx = pool(d.total)
    idx = d.tile(idx).flatten(2) if pick == "total" else pool(d.rel + d.irrel)[1].flatten(2)
    shape = (d.rel.shape[0], *total_out.shape[1:])
    take = lambda t: t.flatten(2).gather(2, idx).view(shape)  # noqa: E731
    return Decomposed(take(d.rel), take(d.irrel), total_out)


def _tiled(d: Decomposed, c: Any) -> Any:
    """A plain tensor with the batch's B rows, repeated for the N blobs (other values unchanged)."""
    if isinstance(c, torch.Tensor) and c.dim() == d.total.dim() and c.dim() > 0 and c.shape[0] == d.total.shape[0]:
        return d.tile(c)
    return c


# ----------------------------------------------------------------------------------------------
# module rules


#: the layer whose bias :func:`bias_left_out` keeps out of both parts (None: every bias is split)
_BIAS_LEFT_OUT: contextvars.ContextVar[nn.Module | None] = contextvars.ContextVar("cd_bias_left_out", default=None)


@contextmanager
def bias_left_out(module: nn.Module | None) -> Iterator[None]:
    """Within the block, the ``nn.Linear`` ``module`` adds its bias to neither part (CDEP's text code
    leaves the output layer's bias out of rel and irrel, ``W_out · h``): rel + irrel then equals
    the layer's output minus the bias. None changes nothing.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.rules import Decomposed, RULES, bias_left_out
        >>> fc = nn.Linear(2, 1)
        >>> x = torch.tensor([[1.0, 2.0]])
        >>> d = Decomposed(x * torch.tensor([1.0, 0.0]), x * torch.tensor([0.0, 1.0]), x)
        >>> with bias_left_out(fc):
        ...     out = RULES[nn.Linear](fc, d)
        >>> bool(torch.allclose(out.rel + out.irrel, fc(x) - fc.bias))
        True
    """
    token = _BIAS_LEFT_OUT.set(module)
    try:
        yield
    finally:
        _BIAS_LEFT_OUT.reset(token)


@register_rule(nn.Linear)
def _linear(m: nn.Linear, d: Decomposed) -> Decomposed:
    if m is _BIAS_LEFT_OUT.get():
        return Decomposed(F.linear(d.rel, m.weight), F.linear(d.irrel, m.weight), m(d.total))
    if _SEED_ARITHMETIC.get():
        return seed_affine(d, m, m(d.total), m.bias)
    return affine(d, lambda t: F.linear(t, m.weight), m(d.total), m.bias)


def _conv(m: nn.modules.conv._ConvNd, d: Decomposed) -> Decomposed:
    bias = None if m.bias is None else m.bias.view(-1, *([1] * (d.total.dim() - 2)))
    if _SEED_ARITHMETIC.get():
        return seed_affine(d, m, m(d.total), bias)
    return affine(d, lambda t: m._conv_forward(t, m.weight, None), m(d.total), bias)


for _cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
    register_rule(_cls, _conv)


def _batch_norm_affine(m: nn.modules.batchnorm._BatchNorm, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm as ``t·scale + shift``: running statistics in eval mode, the batch statistics of the
    total ``t`` in training mode (running statistics untouched)."""
    dims = [0] + list(range(2, t.dim()))
    if m.training or m.running_mean is None:
        mean, var = t.mean(dims), t.var(dims, unbiased=False)
    else:
        mean, var = m.running_mean, m.running_var
    scale = torch.rsqrt(var + m.eps)
    if m.weight is not None:
        scale = scale * m.weight
    shift = -mean * scale + (m.bias if m.bias is not None else 0)
    shape = (-1,) + (1,) * (t.dim() - 2)
    return scale.view(shape), shift.view(shape)


@register_rule(nn.modules.batchnorm._BatchNorm)
def _batch_norm(m: nn.modules.batchnorm._BatchNorm, d: Decomposed) -> Decomposed:
    scale, shift = _batch_norm_affine(m, d.total)
    return affine(d, lambda x: x * scale, d.total * scale + shift, shift)


def affine_batch_norm(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm, d: Decomposed) -> Decomposed:
    """A Linear / Conv layer directly followed by BatchNorm, decomposed as the one affine map they
    are: ``rel' = scale·W·rel + b'·q`` with the folded bias ``b' = scale·b + shift``.

    Splitting the layer's bias and then BatchNorm's shift separately would hand out two large,
    nearly opposite bias shares (BatchNorm subtracts the mean the layer's bias created), whose
    rounding the next layers amplify; folded, they cancel before the split.

    Args:
        layer: an ``nn.Linear`` or convolution.
        bn: the BatchNorm after it (running statistics in eval mode, the batch's in training mode).
        d: the layer's input.

    Returns:
        The BatchNorm's output as a :class:`Decomposed`.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.rules import Decomposed, affine_batch_norm
        >>> layer, bn = nn.Linear(3, 2), nn.BatchNorm1d(2).eval()
        >>> x = torch.randn(4, 3)
        >>> out = affine_batch_norm(layer, bn, Decomposed(x * torch.tensor([1.0, 0.0, 0.0]),
        ...                                               x * torch.tensor([0.0, 1.0, 1.0]), x))
        >>> bool(torch.allclose(out.sum, bn(layer(x)), atol=1e-6))
        True
    """
    pre = layer(d.total)
    scale, shift = _batch_norm_affine(bn, pre)
    if isinstance(layer, nn.Linear):
        linear_part = lambda t: F.linear(t, layer.weight)  # noqa: E731
        bias = layer.bias
    else:
        linear_part = lambda t: layer._conv_forward(t, layer.weight, None)  # noqa: E731
        bias = None if layer.bias is None else layer.bias.view(-1, *([1] * (d.total.dim() - 2)))
    folded = shift if bias is None else bias * scale + shift
    return affine(d, lambda t: linear_part(t) * scale, pre * scale + shift, folded)


@register_rule(nn.ReLU)
def _relu(m: nn.Module, d: Decomposed) -> Decomposed:
    return relevant_first(d, F.relu)


@register_rule(nn.LeakyReLU)
def _leaky_relu(m: nn.LeakyReLU, d: Decomposed) -> Decomposed:
    return relevant_first(d, lambda t: F.leaky_relu(t, m.negative_slope))


@register_rule(nn.Tanh)
def _tanh(m: nn.Module, d: Decomposed) -> Decomposed:
    return shapley(d, torch.tanh)


@register_rule(nn.Sigmoid)
def _sigmoid(m: nn.Module, d: Decomposed) -> Decomposed:
    return shapley(d, torch.sigmoid)


@register_rule(nn.SiLU)
def _silu(m: nn.Module, d: Decomposed) -> Decomposed:
    """SiLU x·σ(x), smooth: the Shapley two-player rule, as tanh, sigmoid and GELU."""
    return shapley(d, F.silu)


@register_rule(nn.GroupNorm)
def _group_norm(m: nn.GroupNorm, d: Decomposed) -> Decomposed:
    """GroupNorm as the affine map it is for fixed statistics, those of the total (as LayerNorm, and
    BatchNorm in eval mode): per sample and group g, y = (x − μ_g(x))·γ/√(σ²_g(x)+ε) + β. Each part
    has its own group mean subtracted (a linear map), both are scaled alike, and β is split as a bias,
    so rel + irrel = y and an all-ones mask leaves irrel = 0.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> gn = nn.GroupNorm(2, 4)
        >>> with torch.no_grad():
        ...     _ = gn.bias.uniform_(-1, 1)
        >>> x = torch.randn(3, 4, 5)
        >>> out = _group_norm(gn, Decomposed(0.3 * x, 0.7 * x, x))
        >>> torch.allclose(out.rel + out.irrel, gn(x), atol=1e-6)
        True
    """
    shape = (1, -1) + (1,) * (d.total.dim() - 2)
    return standardise(d, lambda t: t.reshape(t.shape[0], m.num_groups, -1), m.eps, m(d.total),
                       m.weight.view(shape) if m.affine else None, m.bias.view(shape) if m.affine else None)


def standardise(d: Decomposed, grouped: Callable[[torch.Tensor], torch.Tensor], eps: float, total_out: torch.Tensor,
                weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> Decomposed:
    """A normalisation layer (GroupNorm, LayerNorm) as the affine map it is for the statistics of the
    total: y = (x − μ(x))·γ/√(σ²(x)+ε) + β with μ, σ² over the last dim of ``grouped(x)``. Each part has
    its own mean subtracted (linear), both are scaled by the total's 1/√(σ²+ε) and γ, and β is split as
    a bias (:func:`split_bias`), so rel + irrel = y.

    Args:
        d: the layer input.
        grouped: a view of a tensor whose last dim holds each group's values (B×G×n for GroupNorm).
        eps: the layer's ε.
        total_out: the layer's ordinary output (the result's ``total``).
        weight, bias: γ and β broadcastable to the input, or None.

    Example:
        >>> ln = nn.LayerNorm(4)
        >>> x = torch.randn(3, 4)
        >>> out = standardise(Decomposed(0.3 * x, 0.7 * x, x), lambda t: t, ln.eps, ln(x), ln.weight, ln.bias)
        >>> torch.allclose(out.rel + out.irrel, ln(x), atol=1e-6)
        True
    """
    scale = torch.rsqrt(grouped(d.total).var(-1, unbiased=False, keepdim=True) + eps)

    def normalised(part: torch.Tensor) -> torch.Tensor:
        g = grouped(part)
        g = ((g - g.mean(-1, keepdim=True)) * d.tile(scale)).reshape(part.shape)
        return g if weight is None else g * weight

    rel, irrel = split_bias(normalised(d.rel), normalised(d.irrel), bias, EPS)
    return Decomposed(rel, irrel, total_out)


def _pool_with_ties(fn: Callable, d: Decomposed, kernel_size, stride=None, padding=0, dilation=1,
                    ceil_mode: bool = False) -> Decomposed:
    if stride in (None, (), []):
        stride = kernel_size
    dilated = dilation not in (1, (1,), (1, 1), (1, 1, 1))
    if dilated or _SEED_ARITHMETIC.get():
        return max_pool(d, lambda t: fn(t, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode,
                                        return_indices=True), pick="sum" if _SEED_ARITHMETIC.get() else "total")
    total_out = fn(d.total, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    return max_pool_shared_ties(d, kernel_size, stride, padding, total_out)




def max_pool_function(m: nn.modules.pooling._MaxPoolNd) -> Callable:
    """The functional form (F.max_pool1d/2d/3d) of a max-pool module.

    Args:
        m: an ``nn.MaxPool1d``, ``nn.MaxPool2d`` or ``nn.MaxPool3d``.

    Returns:
        The matching function of ``torch.nn.functional``.

    Example::

        >>> import torch.nn.functional as F; from torch import nn
        >>> from explainreg.decomposition.rules import max_pool_function
        >>> max_pool_function(nn.MaxPool1d(2)) is F.max_pool1d
        True
    """
    return F.max_pool1d if isinstance(m, nn.MaxPool1d) else F.max_pool2d if isinstance(m, nn.MaxPool2d) else F.max_pool3d


def _max_pool_module(m: nn.modules.pooling._MaxPoolNd, d: Decomposed) -> Decomposed:
    return _pool_with_ties(max_pool_function(m), d, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


for _cls in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d):
    register_rule(_cls, _max_pool_module)


def _adaptive_max_pool_module(m: nn.Module, d: Decomposed) -> Decomposed:
    fn = F.adaptive_max_pool1d if isinstance(m, nn.AdaptiveMaxPool1d) else F.adaptive_max_pool2d
    return max_pool(d, lambda t: fn(t, m.output_size, return_indices=True),
                    pick="sum" if _SEED_ARITHMETIC.get() else "total")


for _cls in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d):
    register_rule(_cls, _adaptive_max_pool_module)


def _linear_no_bias(m: nn.Module, d: Decomposed) -> Decomposed:
    return both(d, m)


for _cls in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
             nn.AdaptiveAvgPool3d, nn.Identity):
    register_rule(_cls, _linear_no_bias)


def _shared_dropout(d: Decomposed, p: float) -> Decomposed:
    keep = F.dropout(torch.ones_like(d.total), p, training=True)
    tiled = d.tile(keep)
    return Decomposed(d.rel * tiled, d.irrel * tiled, d.total * keep)


@register_rule(nn.modules.dropout._DropoutNd)
def _dropout(m: nn.modules.dropout._DropoutNd, d: Decomposed) -> Decomposed:
    """Eval mode (or p = 0): the identity. Training mode: one draw of the layer's own mask (elementwise
    for Dropout, per channel for Dropout1d/2d/3d) multiplies both parts; alpha dropout, which also
    shifts the dropped entries, is refused in training mode."""
    if not m.training or m.p == 0:
        return d
    if isinstance(m, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
        raise ValueError(f"contextual decomposition of {type(m).__name__} in training mode is not a mask shared by "
                         "the parts (it shifts the dropped entries); call model.eval() before decomposing")
    keep = m(torch.ones_like(d.total))
    tiled = d.tile(keep)
    return Decomposed(d.rel * tiled, d.irrel * tiled, d.total * keep)


@register_rule(nn.Flatten)
def _flatten(m: nn.Flatten, d: Decomposed) -> Decomposed:
    if m.start_dim == 0:
        raise ValueError("contextual decomposition needs Flatten(start_dim >= 1) to keep the batch dimension")
    return reshape_like(d, m)


@register_rule(nn.Unflatten)
def _unflatten(m: nn.Unflatten, d: Decomposed) -> Decomposed:
    return reshape_like(d, m)


# ----------------------------------------------------------------------------------------------
# function and method rules (functional calls in a custom forward, seen through torch.fx)


def _unary(rule: Callable[[Decomposed, Callable], Decomposed], fn: Callable) -> FunctionRule:
    def apply(d: Decomposed, *args, **kwargs):
        return rule(d, lambda t: fn(t, *args, **kwargs))

    return apply


def _method(name: str) -> Callable:
    return lambda t, *args, **kwargs: getattr(t, name)(*args, **kwargs)


for _fn in (F.relu, torch.relu, F.leaky_relu, F.relu6, torch.nn.functional.hardtanh):
    register_function_rule(_fn, _unary(relevant_first, _fn))
register_function_rule("relu", _unary(relevant_first, _method("relu")))
for _fn in (torch.tanh, torch.sigmoid, F.tanh, F.sigmoid):
    register_function_rule(_fn, _unary(shapley, _fn))
for _name in ("tanh", "sigmoid"):
    register_function_rule(_name, _unary(shapley, _method(_name)))
for _fn in (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
            F.adaptive_avg_pool3d):
    register_function_rule(_fn, _unary(both, _fn))
for _fn in (torch.flatten, torch.reshape):
    register_function_rule(_fn, _unary(reshape_like, _fn))
for _name in ("view", "reshape", "flatten", "view_as", "reshape_as"):
    register_function_rule(_name, _unary(reshape_like, _method(_name)))
register_function_rule("contiguous", lambda d, *a, **k: d)


def _functional_max_pool(fn: Callable) -> FunctionRule:
    def apply(d: Decomposed, *args, return_indices: bool = False, **kwargs):
        if return_indices:
            raise ValueError("contextual decomposition does not support max pooling with return_indices=True")
        return _pool_with_ties(fn, d, *args, **kwargs)

    return apply


for _fn in (F.max_pool1d, F.max_pool2d, F.max_pool3d):
    register_function_rule(_fn, _functional_max_pool(_fn))


#: True while :func:`dropout_as_identity` runs: functional dropout is the identity in the rules
_DROPOUT_IDENTITY: contextvars.ContextVar[bool] = contextvars.ContextVar("cd_dropout_identity", default=False)


@contextmanager
def dropout_as_identity() -> Iterator[None]:
    """Decompositions run inside treat ``F.dropout(..., training=True)`` in a traced forward as the
    identity, as ``nn.Dropout`` layers in eval mode (:func:`explainreg.modes.deterministic_dropout`):
    the CDEP penalty decomposes the deterministic network of a model in training mode.

    Example::

        >>> import torch
        >>> from explainreg.decomposition.rules import Decomposed, FUNCTION_RULES, dropout_as_identity
        >>> x = torch.ones(1, 4)
        >>> with dropout_as_identity():
        ...     out = FUNCTION_RULES[torch.nn.functional.dropout](Decomposed(x, 0 * x, x), 0.5, True)
        >>> out.rel
        tensor([[1., 1., 1., 1.]])
    """
    token = _DROPOUT_IDENTITY.set(True)
    try:
        yield
    finally:
        _DROPOUT_IDENTITY.reset(token)


@register_function_rule(F.dropout)
def _functional_dropout(d: Decomposed, p: float = 0.5, training: bool = True, inplace: bool = False):
    if not training or p == 0 or _DROPOUT_IDENTITY.get():
        return d
    return _shared_dropout(d, p)


@register_function_rule(F.linear)
def _functional_linear(d: Decomposed, weight: torch.Tensor, bias: torch.Tensor | None = None):
    if _SEED_ARITHMETIC.get():
        return seed_affine(d, lambda t: F.linear(t, weight, bias), F.linear(d.total, weight, bias), bias)
    return affine(d, lambda t: F.linear(t, weight), F.linear(d.total, weight, bias), bias)


def _functional_conv(fn: Callable) -> FunctionRule:
    def apply(d: Decomposed, weight: torch.Tensor, bias: torch.Tensor | None = None, *args, **kwargs):
        b = None if bias is None else bias.view(-1, *([1] * (d.total.dim() - 2)))
        if _SEED_ARITHMETIC.get():
            return seed_affine(d, lambda t: fn(t, weight, bias, *args, **kwargs),
                               fn(d.total, weight, bias, *args, **kwargs), b)
        return affine(d, lambda t: fn(t, weight, None, *args, **kwargs), fn(d.total, weight, bias, *args, **kwargs), b)

    return apply


for _fn in (F.conv1d, F.conv2d, F.conv3d):
    register_function_rule(_fn, _functional_conv(_fn))


def _add(a, b, sign: float = 1.0):
    """Sums: parts add; a plain tensor or number added to a decomposition is a bias, split between
    the parts like ``nn.Linear``'s bias (so ``fc(x) + b`` decomposes as ``nn.Linear`` would)."""
    if isinstance(a, Decomposed) and isinstance(b, Decomposed):
        if a.n_blobs != b.n_blobs:
            raise ValueError("cannot add decompositions with different numbers of blobs")
        return Decomposed(a.rel + sign * b.rel, a.irrel + sign * b.irrel, a.total + sign * b.total)
    if isinstance(a, Decomposed):
        rel, irrel = split_bias(a.rel, a.irrel, _tiled(a, sign * b))
        return Decomposed(rel, irrel, a.total + sign * b)
    rel, irrel = split_bias(sign * b.rel, sign * b.irrel, _tiled(b, a))
    return Decomposed(rel, irrel, a + sign * b.total)


def _scale(a, b):
    if isinstance(a, Decomposed) and isinstance(b, Decomposed):
        raise ValueError("contextual decomposition cannot multiply two decomposed tensors; "
                         "register a rule for the module that does it")
    d, c = (a, b) if isinstance(a, Decomposed) else (b, a)
    c_parts = _tiled(d, c)
    return Decomposed(d.rel * c_parts, d.irrel * c_parts, d.total * c)


def _plus(a, b, alpha: float = 1):
    if alpha != 1:
        b = _scale(b, alpha) if isinstance(b, Decomposed) else b * alpha
    return _add(a, b)


def _divide(a, b):
    if isinstance(b, Decomposed):
        raise ValueError("contextual decomposition cannot divide by a decomposed tensor")
    return _scale(a, 1.0 / b)


for _fn in (operator.add, operator.iadd, torch.add, "add"):
    register_function_rule(_fn, _plus)
for _fn in (operator.sub, operator.isub, torch.sub, "sub"):
    register_function_rule(_fn, lambda a, b: _add(a, b, -1.0))
for _fn in (operator.mul, operator.imul, torch.mul, "mul"):
    register_function_rule(_fn, _scale)
for _fn in (operator.truediv, operator.itruediv, "div"):
    register_function_rule(_fn, _divide)
register_function_rule(operator.neg, lambda a: a.map(torch.neg))


@register_function_rule(torch.cat)
def _cat(tensors, dim: int = 0):
    if dim == 0 or (dim < 0 and dim + tensors[0].total.dim() == 0):
        raise ValueError("contextual decomposition cannot concatenate along the batch dimension")
    ref = next(t for t in tensors if isinstance(t, Decomposed))
    rels = [t.rel if isinstance(t, Decomposed) else torch.zeros_like(ref.tile(t)) for t in tensors]
    irrels = [t.irrel if isinstance(t, Decomposed) else ref.tile(t) for t in tensors]
    totals = [t.total if isinstance(t, Decomposed) else t for t in tensors]
    return Decomposed(torch.cat(rels, dim), torch.cat(irrels, dim), torch.cat(totals, dim))


# queries answered by the total (x.size(0), x.shape, x.dim())
for _name in ("size", "dim", "numel"):
    register_function_rule(_name, (lambda name: lambda d, *a, **k: getattr(d.total, name)(*a, **k))(_name))
register_function_rule(getattr, lambda d, name: getattr(d.total, name) if isinstance(d, Decomposed)
                       else getattr(d, name))


__all__ = ["UnsupportedLayerError", "bias_left_out", "call_rule", "Decomposed", "EPS", "FUNCTION_RULES", "RULES", "TIE_RTOL", "UNSUPPORTED", "affine", "affine_batch_norm",
           "both", "dead_unit_share", "dropout_as_identity", "find_rule", "input_share", "max_pool", "max_pool_function",
           "max_pool_shared_ties", "register_function_rule", "register_rule", "relevant_first", "reshape_like",
           "row_share", "seed_affine", "seed_arithmetic", "shapley", "split_bias", "standardise",
           "tie_tolerance"]
