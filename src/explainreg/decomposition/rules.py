"""Contextual-decomposition rules per layer type (methods.md B.2 §2.1) and their registry.

A decomposition is held as :class:`Decomposed`: the relevant part ``rel`` (one copy of the batch
per blob, stacked blob-major: N·B rows) and the ``total`` activation of the ordinary forward pass
(B rows, shared by every blob). The irrelevant part is never propagated: it is
``irrel = total − rel``, so **rel + irrel equals the ordinary activation at every layer by
construction**, and one CD pass costs one extra stream per blob instead of two.

A rule maps ``(module, d_in) -> d_out``. Built-in rules:

* Conv / Linear / BatchNorm (affine ``W·+b``): ``r = W·rel``, ``s = W·irrel``,
  ``rel' = r + b·|r| / (|r| + |s| + ε)`` (ε = 1e-19), ``irrel' = total' − rel'``. When r = s = 0 the
  whole bias goes to irrel (the seed drops it there, breaking the sum).
  BatchNorm uses its running statistics in eval mode and the batch statistics of the total in
  training mode (without touching the running statistics).
* ReLU / LeakyReLU (relevant part first): ``rel' = f(rel)``, ``irrel' = f(total) − f(rel)``.
* Tanh / Sigmoid (Shapley value of the two players rel and irrel):
  ``rel' = ½[(f(rel) − f(0)) + (f(total) − f(irrel))]``, ``irrel' = f(total) − rel'``.
* MaxPool: argmax indices of the pool of the *total*; both parts read at those indices.
* AvgPool / AdaptiveAvgPool / Dropout (eval: identity; training: one mask shared by both parts) /
  Flatten / Identity: linear without bias, applied to each part.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

#: ε of the bias split, as the seed's ``10e-20``
EPS = 1e-19


@dataclass
class Decomposed:
    """One activation split in two: ``rel`` (N·B×…, blob-major) and ``total`` (B×…).

    ``irrel = total − rel`` (tiled over the N blobs); ``tile(t)`` repeats a B-row tensor N times.
    """

    rel: torch.Tensor
    total: torch.Tensor

    @property
    def n_blobs(self) -> int:
        return self.rel.shape[0] // self.total.shape[0]

    def tile(self, t: torch.Tensor) -> torch.Tensor:
        """Repeat a tensor with B rows for each of the N blobs (N·B rows, blob-major)."""
        n = self.n_blobs
        if n == 1:
            return t
        return t.unsqueeze(0).expand(n, *t.shape).reshape(n * t.shape[0], *t.shape[1:])

    @property
    def irrel(self) -> torch.Tensor:
        return self.tile(self.total) - self.rel


ModuleRule = Callable[[nn.Module, Decomposed], Decomposed]
FunctionRule = Callable[..., Any]

#: module type -> rule(module, d) -> Decomposed
RULES: dict[type, ModuleRule] = {}
#: function object or method name -> rule(*args, **kwargs) with Decomposed among the args
FUNCTION_RULES: dict[Any, FunctionRule] = {}


def register_rule(module_type: type, rule: ModuleRule | None = None):
    """Teach the engine a layer type: ``rule(module, d: Decomposed) -> Decomposed``.

    Usable as a decorator (``@register_rule(MyLayer)``). Subclasses inherit their parent's rule
    unless they have their own. A rule must return ``total`` = the module's ordinary output and
    ``rel`` = the part of it due to the relevant input, e.g. for a bias-free linear layer
    ``Decomposed(module(d.rel), module(d.total))``.
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise TypeError(f"module_type must be an nn.Module subclass, got {module_type!r}")

    def decorate(fn: ModuleRule) -> ModuleRule:
        if not callable(fn):
            raise TypeError(f"rule must be callable as rule(module, d) -> Decomposed, got {fn!r}")
        RULES[module_type] = fn
        return fn

    return decorate(rule) if rule is not None else decorate


def register_function_rule(target: Any, rule: FunctionRule | None = None):
    """Teach the engine a function (``F.gelu``) or tensor method name (``"relu"``) met in a traced
    forward: ``rule(*args, **kwargs)`` receives the call's arguments, with :class:`Decomposed`
    in place of the decomposed tensors, and returns a ``Decomposed`` (or a plain value)."""

    def decorate(fn: FunctionRule) -> FunctionRule:
        FUNCTION_RULES[target] = fn
        return fn

    return decorate(rule) if rule is not None else decorate


def find_rule(module_type: type) -> ModuleRule | None:
    for cls in module_type.__mro__:
        if cls in RULES:
            return RULES[cls]
    return None


# ----------------------------------------------------------------------------------------------
# generic building blocks


class _BiasSplit(torch.autograd.Function):
    """``rel' = r + b·|r| / (|r| + |s| + ε)`` with ``s = u − r`` (u = W·total per blob), fused: a third
    of the memory passes of the autograd graph of the same formula (the CD cost is elementwise-bound)."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, u: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        r_blobs = r.view(-1, *u.shape)
        s = u.unsqueeze(0) - r_blobs
        sign_s = s.sign()
        r_abs = r_blobs.abs()
        denominator = s.abs_().add_(r_abs).add_(eps)
        share = r_abs.div_(denominator)
        ctx.save_for_backward(r, sign_s, share, denominator, bias)
        return torch.addcmul(r, bias, share.view_as(r))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        r, sign_s, share, denominator, bias = ctx.saved_tensors
        g = grad.reshape(share.shape)
        t = (g * bias).div_(denominator)  # g·b / D
        tw = t * sign_s * share  # g·b·sgn(s)·q / D
        grad_r = torch.sign(r).view_as(share).mul(1 - share).mul_(t).add_(tw).add_(g).view_as(r)
        grad_u = -tw.sum(0) if ctx.needs_input_grad[1] else None
        grad_b = (g * share).sum_to_size(bias.shape) if ctx.needs_input_grad[2] else None
        return grad_r, grad_u, grad_b, None


def affine(d: Decomposed, linear_part: Callable[[torch.Tensor], torch.Tensor], total_out: torch.Tensor,
           bias: torch.Tensor | None, eps: float = EPS) -> Decomposed:
    """Affine layer ``total_out = linear_part(total) + bias``: bias split in proportion to |r|, |s|."""
    r = linear_part(d.rel)
    if bias is None:
        return Decomposed(r, total_out)
    return Decomposed(_BiasSplit.apply(r, total_out - bias, bias, eps), total_out)


def relevant_first(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """``rel' = f(rel)``, ``irrel' = f(total) − f(rel)`` (ReLU-type rule)."""
    return Decomposed(fn(d.rel), fn(d.total))


def shapley(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """Two-player Shapley split: ``rel' = ½[(f(rel) − f(0)) + (f(total) − f(irrel))]``."""
    total_out = fn(d.total)
    f0 = fn(torch.zeros((), dtype=d.rel.dtype, device=d.rel.device))
    rel = 0.5 * ((fn(d.rel) - f0) + (d.tile(total_out) - fn(d.irrel)))
    return Decomposed(rel, total_out)


def both(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """A linear, bias-free map applied to each part."""
    return Decomposed(fn(d.rel), fn(d.total))


def reshape_like(d: Decomposed, fn: Callable[[torch.Tensor], torch.Tensor]) -> Decomposed:
    """A per-sample reshape (view, flatten from dim 1, ...): computed on the total, copied to rel."""
    total_out = fn(d.total)
    if not isinstance(total_out, torch.Tensor) or total_out.dim() == 0 or total_out.shape[0] != d.total.shape[0]:
        raise ValueError(f"contextual decomposition needs reshapes that keep the batch dimension; "
                         f"{tuple(d.total.shape)} became {tuple(getattr(total_out, 'shape', ()))}. "
                         "Use x.view(x.size(0), -1) or torch.flatten(x, 1)")
    return Decomposed(d.rel.reshape(d.rel.shape[0], *total_out.shape[1:]), total_out)


def max_pool(d: Decomposed, pool: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Decomposed:
    """Both parts read at the argmax indices of the pool of the total (``pool`` returns indices)."""
    total_out, idx = pool(d.total)
    idx = d.tile(idx)
    rel = d.rel.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
    return Decomposed(rel, total_out)


# ----------------------------------------------------------------------------------------------
# module rules


@register_rule(nn.Linear)
def _linear(m: nn.Linear, d: Decomposed) -> Decomposed:
    return affine(d, lambda t: F.linear(t, m.weight), m(d.total), m.bias)


def _conv(m: nn.modules.conv._ConvNd, d: Decomposed) -> Decomposed:
    return affine(d, lambda t: m._conv_forward(t, m.weight, None),
                  m(d.total), None if m.bias is None else m.bias.view(-1, *([1] * (d.total.dim() - 2))))


for _cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
    register_rule(_cls, _conv)


@register_rule(nn.modules.batchnorm._BatchNorm)
def _batch_norm(m: nn.modules.batchnorm._BatchNorm, d: Decomposed) -> Decomposed:
    t = d.total
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
    scale, shift = scale.view(shape), shift.view(shape)
    return affine(d, lambda x: x * scale, t * scale + shift, shift)


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


def _max_pool_module(m: nn.modules.pooling._MaxPoolNd, d: Decomposed) -> Decomposed:
    fn = F.max_pool1d if isinstance(m, nn.MaxPool1d) else F.max_pool2d if isinstance(m, nn.MaxPool2d) else F.max_pool3d
    return max_pool(d, lambda t: fn(t, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode,
                                    return_indices=True))


for _cls in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d):
    register_rule(_cls, _max_pool_module)


def _adaptive_max_pool_module(m: nn.Module, d: Decomposed) -> Decomposed:
    fn = F.adaptive_max_pool1d if isinstance(m, nn.AdaptiveMaxPool1d) else F.adaptive_max_pool2d
    return max_pool(d, lambda t: fn(t, m.output_size, return_indices=True))


for _cls in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d):
    register_rule(_cls, _adaptive_max_pool_module)


def _linear_no_bias(m: nn.Module, d: Decomposed) -> Decomposed:
    return both(d, m)


for _cls in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
             nn.AdaptiveAvgPool3d, nn.Identity):
    register_rule(_cls, _linear_no_bias)


@register_rule(nn.modules.dropout._DropoutNd)
def _dropout(m: nn.modules.dropout._DropoutNd, d: Decomposed) -> Decomposed:
    if not m.training or m.p == 0:
        return d
    keep = F.dropout(torch.ones_like(d.total), m.p, training=True)
    return Decomposed(d.rel * d.tile(keep), d.total * keep)


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


def _first_decomposed(args) -> Decomposed:
    return next(a for a in args if isinstance(a, Decomposed))


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
        return max_pool(d, lambda t: fn(t, *args, return_indices=True, **kwargs))

    return apply


for _fn in (F.max_pool1d, F.max_pool2d, F.max_pool3d):
    register_function_rule(_fn, _functional_max_pool(_fn))


@register_function_rule(F.dropout)
def _functional_dropout(d: Decomposed, p: float = 0.5, training: bool = True, inplace: bool = False):
    if not training or p == 0:
        return d
    keep = F.dropout(torch.ones_like(d.total), p, training=True)
    return Decomposed(d.rel * d.tile(keep), d.total * keep)


@register_function_rule(F.linear)
def _functional_linear(d: Decomposed, weight: torch.Tensor, bias: torch.Tensor | None = None):
    return affine(d, lambda t: F.linear(t, weight), F.linear(d.total, weight, bias), bias)


def _add(a, b, sign: float = 1.0):
    """Sums: parts add; a plain tensor or number added to a decomposition is irrelevant context."""
    if isinstance(a, Decomposed) and isinstance(b, Decomposed):
        if a.n_blobs != b.n_blobs:
            raise ValueError("cannot add decompositions with different numbers of blobs")
        return Decomposed(a.rel + sign * b.rel, a.total + sign * b.total)
    if isinstance(a, Decomposed):
        return Decomposed(a.rel, a.total + sign * b)
    return Decomposed(sign * b.rel, a + sign * b.total)


def _scale(a, b):
    if isinstance(a, Decomposed) and isinstance(b, Decomposed):
        raise ValueError("contextual decomposition cannot multiply two decomposed tensors; "
                         "register a rule for the module that does it")
    d, c = (a, b) if isinstance(a, Decomposed) else (b, a)
    c_rel = d.tile(c) if isinstance(c, torch.Tensor) and c.dim() > 0 and c.shape[0] == d.total.shape[0] \
        and d.total.dim() == c.dim() else c
    return Decomposed(d.rel * c_rel, d.total * c)


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
register_function_rule(operator.neg, lambda a: Decomposed(-a.rel, -a.total))


@register_function_rule(torch.cat)
def _cat(tensors, dim: int = 0):
    if dim == 0 or (dim < 0 and dim + tensors[0].total.dim() == 0):
        raise ValueError("contextual decomposition cannot concatenate along the batch dimension")
    ds = [t if isinstance(t, Decomposed) else None for t in tensors]
    ref = next(d for d in ds if d is not None)
    rels = [d.rel if d is not None else torch.zeros_like(ref.tile(t)) for d, t in zip(ds, tensors)]
    totals = [d.total if d is not None else t for d, t in zip(ds, tensors)]
    return Decomposed(torch.cat(rels, dim), torch.cat(totals, dim))


# queries answered by the total (x.size(0), x.shape, x.dim())
for _name in ("size", "dim", "numel"):
    register_function_rule(_name, (lambda name: lambda d, *a, **k: getattr(d.total, name)(*a, **k))(_name))
register_function_rule(getattr, lambda d, name: getattr(d.total, name) if isinstance(d, Decomposed)
                       else getattr(d, name))
