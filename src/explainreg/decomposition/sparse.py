"""Receptive-field sparse contextual decomposition of 2-D convolutional networks.

A blob that covers a small part of an image changes the two streams only inside its receptive field
until the first layer that mixes the whole map (a Linear, an adaptive pool). Outside it the dense
engine computes ``rel = 0`` exactly and ``irrel`` = the ordinary activation: a convolution of zeros is
0, the bias split gives all of the bias to irrel where ``r = 0`` and ``s ≠ 0``, a ReLU keeps 0, a
max-pool shares 0s. This module propagates the two streams only over boxes that hold each blob's
reach, computed layer by layer from the traced graph (kernel, stride, padding, pooling windows,
residual sums), and reads every value outside them from the ordinary forward activation.

A state is :class:`Sparse`: per blob ``K`` boxes of one common size (one per connected part of the
blob, e.g. DecoyMNIST's four corners), the two parts on each box, and the total. A box is computed
exactly as the dense engine computes those units (its inputs are assembled from the boxes of the
layer below and the total), so boxes may overlap or hold units the blob does not reach. Nodes
without a sparse rule (Linear, Flatten, adaptive pooling, normalisation outside a Conv → BatchNorm
pair, ...) receive the dense :class:`~.rules.Decomposed` assembled from the boxes, and the dense rules
carry on; so does a layer whose boxes have grown to the whole map.

The one case where ``rel`` outside a blob's reach is not 0 is a unit whose two parts are both exactly
0 (every input of its window is 0): the dense engine gives it the relevant share ρ of the bias
(:func:`~.rules.split_bias`). Where a layer with a bias has such units (an input with a zero
background, a window cut off by ReLUs) the sparse pass hands over to the dense rules at that layer.
"""
from __future__ import annotations

import operator
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from .rules import (_DROPOUT_IDENTITY, FUNCTION_RULES, RULES, Decomposed, _batch_norm_affine, dead_unit_share,
                    find_rule, max_pool_shared_ties, split_bias)

#: connected parts of a blob followed as separate boxes (more are covered by one box)
MAX_BOXES = 4
#: the sparse pass is used when the blobs' boxes cover less than this share of the input map
MAX_COVER = 0.5

_ReLU_FUNCTIONS = (F.relu, torch.relu, "relu")
_ADD = (operator.add, operator.iadd, torch.add, "add")
#: the built-in rules the sparse rules reproduce (a rule a user registers in their place is run densely)
_BUILTIN = dict(RULES)
_BUILTIN_FUNCTIONS = dict(FUNCTION_RULES)


def _builtin(module: nn.Module) -> bool:
    """Whether the module is decomposed by the rule the package registered for its type."""
    own = next((_BUILTIN[c] for c in type(module).__mro__ if c in _BUILTIN), False)
    return find_rule(type(module)) is own


@dataclass
class Sparse:
    """One activation of N blobs, each held on K boxes of one common size ``h×w``.

    Args:
        rel, irrel: the parts on the boxes, (N·K·B)×C×h×w (rows blob-major, then box, then image).
        total: the ordinary activation, B×C×H×W (max-pooling's ties, BatchNorm's batch statistics).
        starts: N×K×2 integer top-left corners (row, column) of the boxes (a box may reach past the map).
        base: irrel outside every box (rel is 0 there), B×C×H×W; None: the total. It leaves the total
            where a max-pool window holds entries within the tie tolerance of its maximum that are not
            equal to it: the dense rule averages irrel over them, the total keeps the maximum.
    """

    rel: torch.Tensor
    irrel: torch.Tensor
    total: torch.Tensor
    starts: torch.Tensor
    base: torch.Tensor | None = None

    @property
    def outside(self) -> torch.Tensor:
        """irrel outside the boxes (B×C×H×W)."""
        return self.total if self.base is None else self.base

    @property
    def n(self) -> int:
        return self.starts.shape[0]

    @property
    def k(self) -> int:
        return self.starts.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        return self.rel.shape[-2], self.rel.shape[-1]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _index(starts: torch.Tensor, length: int, offset: int, device: torch.device) -> torch.Tensor:
    """N×J×length positions ``start + offset + i``."""
    return (starts[..., None] + offset + torch.arange(length)).to(device)


def _gather(t: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """t: H×W×B×C (or N×H×W×B×C, indexed per blob); rows N×J×Ly, cols N×J×Lx -> N×J×Ly×Lx×B×C.

    One ``index_select`` over the flattened positions: its backward is an ``index_add`` of whole
    B·C rows (advanced indexing's backward, an accumulating ``index_put``, is several times slower)."""
    h, w = t.shape[-4], t.shape[-3]
    flat = rows[:, :, :, None] * w + cols[:, :, None, :]  # N×J×Ly×Lx
    if t.dim() == 5:
        flat = flat + (torch.arange(t.shape[0], device=t.device) * (h * w))[:, None, None, None]
    table = t.reshape(-1, t.shape[-2] * t.shape[-1])
    return table.index_select(0, flat.reshape(-1)).view(*flat.shape, t.shape[-2], t.shape[-1])


def _rows_first(t: torch.Tensor) -> torch.Tensor:
    """N×J×Ly×Lx×B×C -> (N·J·B)×C×Ly×Lx."""
    n, j, ly, lx, b, c = t.shape
    return t.permute(0, 1, 4, 5, 2, 3).reshape(n * j * b, c, ly, lx)


def windows(s: Sparse, starts: torch.Tensor, length: tuple[int, int], pad: tuple[int, int] = (0, 0),
            total_fill: float | None = None) -> tuple[torch.Tensor, ...]:
    """The parts of each blob on windows ``[start, start + length)`` of its map padded by ``pad``
    with zeros: read from the blob's boxes where they hold the unit, else rel 0 and irrel the total.

    Args:
        s: the state.
        starts: N×J×2 window corners in map coordinates (negative inside the padding).
        length: the windows' size (Ly, Lx). pad: zero padding around the map.
        total_fill: also return the total on the windows, padded with this value (−inf for max-pooling).

    Returns:
        ``(rel, irrel)`` (or ``(rel, irrel, total)``), each (N·J·B)×C×Ly×Lx.
    """
    py, px = pad
    device = s.total.device
    rows, cols = _index(starts[..., 0], length[0], py, device), _index(starts[..., 1], length[1], px, device)
    padded = F.pad(s.outside, (px, px, py, py)) if py or px else s.outside
    inner_rows, inner_cols = rows.clamp(0, padded.shape[-2] - 1), cols.clamp(0, padded.shape[-1] - 1)
    irrel = _gather(padded.permute(2, 3, 0, 1), inner_rows, inner_cols)  # past the map: never read
    rel = torch.zeros_like(irrel)
    n, k, b = s.n, s.k, s.total.shape[0]
    h, w = s.size
    on_map = ((rows >= py) & (rows < py + s.total.shape[-2]))[:, :, :, None] \
        & ((cols >= px) & (cols < px + s.total.shape[-1]))[:, :, None, :]  # boxes may reach past the map
    parts = [p.view(n, k, b, -1, h, w).permute(0, 1, 4, 5, 2, 3) for p in (s.rel, s.irrel)]  # N×K×h×w×B×C
    for box in range(k):
        jy = rows - py - s.starts[:, box, 0].to(device)[:, None, None]
        jx = cols - px - s.starts[:, box, 1].to(device)[:, None, None]
        inside = ((jy >= 0) & (jy < h))[:, :, :, None] & ((jx >= 0) & (jx < w))[:, :, None, :] & on_map
        if not bool(inside.any()):
            continue
        jy, jx, inside = jy.clamp(0, h - 1), jx.clamp(0, w - 1), inside[..., None, None]
        rel = torch.where(inside, _gather(parts[0][:, box], jy, jx), rel)
        irrel = torch.where(inside, _gather(parts[1][:, box], jy, jx), irrel)
    out = [_rows_first(rel), _rows_first(irrel)]
    if total_fill is not None:
        padded = F.pad(s.total, (px, px, py, py), value=total_fill) if py or px else s.total
        out.append(_rows_first(_gather(padded.permute(2, 3, 0, 1), inner_rows, inner_cols)))
    return tuple(out)


def densify(s: Sparse) -> Decomposed:
    """The dense decomposition (N·B rows, blob-major) that ``s`` stands for: rel 0 and irrel the
    base, with each box's parts over them (its on-map units). Built by padding each box to the map
    (linear in N: in-place writes into one tensor would copy all of it per box in the backward pass)."""
    b, (height, width) = s.total.shape[0], s.total.shape[-2:]
    h, w = s.size
    rels, irrels = [], []
    for n in range(s.n):
        rel, irrel = None, s.outside
        for k in range(s.k):
            y, x = (int(v) for v in s.starts[n, k])
            pad = (x, width - x - w, y, height - y - h)  # negative: the part past the map is cut
            row = slice((n * s.k + k) * b, (n * s.k + k + 1) * b)
            inside = F.pad(s.rel.new_ones(1, 1, h, w), pad) != 0
            box_rel, box_irrel = F.pad(s.rel[row], pad), F.pad(s.irrel[row], pad)
            rel = box_rel if rel is None else torch.where(inside, box_rel, rel)
            irrel = torch.where(inside, box_irrel, irrel)
        rels.append(rel)
        irrels.append(irrel)
    return Decomposed(torch.cat(rels), torch.cat(irrels), s.total)


def _shared(s: Sparse, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor | None:
    """The next ``base``: ``fn`` of this one, or None while it is the total."""
    return None if s.base is None else fn(s.base)


def _grow(starts: torch.Tensor, size: int, kernel: int, stride: int, pad: int, n_out: int
          ) -> tuple[torch.Tensor, int, torch.Tensor, int]:
    """One axis of a sliding-window layer: the output boxes that hold every unit whose window meets
    the input boxes ``[start, start + size)``, their common size, and the input windows they read
    (corners and length, in unpadded map coordinates)."""
    lo = (-((-(starts + pad - (kernel - 1))) // stride)).clamp_min(0)
    hi = ((starts + size - 1 + pad) // stride).clamp_max(n_out - 1)
    out_size = max(1, int((hi - lo + 1).max()))
    if out_size >= n_out:
        lo, out_size = torch.zeros_like(lo), n_out
    else:
        lo = torch.minimum(lo, torch.full_like(lo, n_out - out_size))
    return lo, out_size, lo * stride - pad, (out_size - 1) * stride + kernel


def _too_wide(s: Sparse, length: tuple[int, int]) -> bool:
    """Whether the boxes' input windows together are as large as the map (the dense rule is cheaper)."""
    return s.k * length[0] * length[1] >= s.total.shape[-2] * s.total.shape[-1]


def _sliding(s: Sparse, kernel, stride, padding, out_hw: tuple[int, int]):
    """Output boxes and input windows of a 2-D sliding-window layer (None: it covers the whole map)."""
    kernel, stride, padding = _pair(kernel), _pair(stride), _pair(padding)
    h, w = s.size
    lo_y, oh, win_y, ly = _grow(s.starts[..., 0], h, kernel[0], stride[0], padding[0], out_hw[0])
    lo_x, ow, win_x, lx = _grow(s.starts[..., 1], w, kernel[1], stride[1], padding[1], out_hw[1])
    if s.k * oh * ow >= out_hw[0] * out_hw[1]:
        return None
    return torch.stack([lo_y, lo_x], -1), torch.stack([win_y, win_x], -1), (ly, lx), padding, stride, kernel


class SparsePass:
    """The sparse rules, called by :func:`~.engine.run_rules` for every node (``step``).

    Args:
        model: the traced network. graph: its fx graph.
        share: the dense pass's relevant input share per row (N·B), for units that see no input.
        fused: BatchNorm node -> the Conv node folded into it (:func:`~.engine._affine_bn_pairs`).
    """

    def __init__(self, model: nn.Module, share: torch.Tensor, fused: dict[fx.Node, fx.Node]) -> None:
        self.model, self.share, self.fused = model, share, fused
        self.folded = set(fused.values())
        self.dense_nodes = 0

    # -- dispatch -----------------------------------------------------------------------------

    def __call__(self, node: fx.Node, env: dict[fx.Node, Any]) -> bool:
        if node.op not in ("call_module", "call_function", "call_method", "output"):
            return False
        sparse_args = [a for a in node.all_input_nodes if isinstance(env.get(a), Sparse)]
        if not sparse_args:
            return False
        out = self._rule(node, env) if node.op != "output" else None
        if out is None:
            if node in self.fused:  # the folded Conv passed its input through
                sparse_args.append(self.fused[node].args[0])
            for a in sparse_args:  # hand over to the dense rules
                if isinstance(env[a], Sparse):
                    env[a] = densify(env[a])
            self.dense_nodes += node.op != "output"
            return False
        env[node] = out
        return True

    def _rule(self, node: fx.Node, env: dict[fx.Node, Any]) -> Sparse | None:
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node.op == "call_module":
            module = self.model.get_submodule(node.target)
            if len(args) != 1 or kwargs or not isinstance(args[0], Sparse) or not _builtin(module):
                return None
            s = args[0]
            if node in self.folded:
                return s  # decomposed with the BatchNorm that follows
            if node in self.fused:
                conv = self.model.get_submodule(self.fused[node].target)
                return self._conv(conv, s, module) if _builtin(conv) else None
            return self._module(module, s)
        if FUNCTION_RULES.get(node.target) is not _BUILTIN_FUNCTIONS.get(node.target, False):
            return None
        return self._function(node.target, args, kwargs)

    def _module(self, module: nn.Module, s: Sparse) -> Sparse | None:
        if type(module) is nn.Conv2d:
            return self._conv(module, s)
        if type(module) is nn.ReLU:
            return _elementwise(s, F.relu)
        if type(module) is nn.LeakyReLU:
            return _elementwise(s, lambda t: F.leaky_relu(t, module.negative_slope))
        if type(module) is nn.MaxPool2d and not module.ceil_mode and _pair(module.dilation) == (1, 1):
            return _max_pool(s, module.kernel_size, module.stride, module.padding)
        if type(module) is nn.AvgPool2d and not module.ceil_mode and module.count_include_pad \
                and module.divisor_override is None:
            return _avg_pool(s, module)
        if type(module) is nn.Identity or (isinstance(module, nn.modules.dropout._DropoutNd)
                                           and (not module.training or module.p == 0)):
            return s
        return None

    def _function(self, target: Any, args: tuple, kwargs: dict) -> Sparse | None:
        s = args[0] if args else None
        if target in _ReLU_FUNCTIONS and isinstance(s, Sparse) and len(args) == 1:
            return _elementwise(s, F.relu)
        if target is F.leaky_relu and isinstance(s, Sparse) and len(args) <= 2:
            slope = args[1] if len(args) == 2 else kwargs.get("negative_slope", 0.01)
            return _elementwise(s, lambda t: F.leaky_relu(t, slope))
        if target is F.dropout and isinstance(s, Sparse):
            p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
            training = args[2] if len(args) > 2 else kwargs.get("training", True)
            return s if (not training or p == 0 or _DROPOUT_IDENTITY.get()) else None
        if target == "contiguous" and isinstance(s, Sparse):
            return s
        if target in _ADD and len(args) == 2 and not kwargs and all(isinstance(a, Sparse) for a in args):
            return _residual_sum(*args)
        return None

    # -- affine layers ------------------------------------------------------------------------

    def _conv(self, conv: nn.Module, s: Sparse, bn: nn.Module | None = None) -> Sparse | None:
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str) \
                or _pair(conv.dilation) != (1, 1):
            return None
        def linear_part(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, conv.weight, None, conv.stride, conv.padding, 1, conv.groups)

        linear = linear_part(s.total)
        total = linear if conv.bias is None else linear + conv.bias.view(-1, 1, 1)
        scale, bias = None, None if conv.bias is None else conv.bias.view(-1, 1, 1)
        if bn is not None:
            scale, shift = _batch_norm_affine(bn, total)
            total = total * scale + shift
            bias = shift if bias is None else bias * scale + shift
        plan = _sliding(s, conv.kernel_size, conv.stride, conv.padding, tuple(total.shape[-2:]))
        if plan is None or (bias is not None and self._sees_no_input(conv, s.outside, bias)):
            return None
        base = None
        if s.base is not None:  # irrel outside the boxes: the dense rule's s + b there (r = 0)
            linear = linear_part(s.base)
            base = linear if scale is None else linear * scale
            base = base if bias is None else base + bias
        if _pair(conv.stride) == (1, 1) and conv.groups == 1 and _apart(s, conv.kernel_size, conv.padding) \
                and _close_to_base(s):
            starts, r, q = _scatter_conv(conv, s, linear)
        elif _too_wide(s, plan[2]):
            return None
        else:
            starts, win, length, padding, stride, _ = plan
            rel, irrel = windows(s, win, length, padding)
            r, q = F.conv2d(torch.cat([rel, irrel]), conv.weight, None, stride, 0, 1, conv.groups).chunk(2)
        if scale is not None:
            r, q = r * scale, q * scale
        if bias is not None:
            with dead_unit_share(self._box_share(s)):
                r, q = split_bias(r, q, bias)
        return Sparse(r, q, total, starts, base)

    def _sees_no_input(self, conv: nn.Conv2d, total: torch.Tensor, bias: torch.Tensor) -> bool:
        """Whether a unit with a non-zero bias has an input window that is 0 everywhere (or a filter
        that is 0): there the dense rule splits the bias by ρ, and rel is not 0 outside the boxes."""
        nonzero_bias = (bias.detach().flatten() != 0)
        zero_filter = (conv.weight.detach().flatten(1) == 0).all(1)
        if bool((zero_filter & nonzero_bias).any()):
            return True
        with torch.no_grad():
            seen = (total.detach() != 0).any(1, keepdim=True).to(total.dtype)
            ones = torch.ones(1, 1, *conv.kernel_size, dtype=total.dtype, device=total.device)
            count = F.conv2d(seen, ones, None, conv.stride, conv.padding)
        return bool((count == 0).any()) and bool(nonzero_bias.any())

    def _box_share(self, s: Sparse) -> torch.Tensor:
        b = s.total.shape[0]
        return self.share.view(s.n, 1, b).expand(s.n, s.k, b).reshape(-1)


def _reach(s: Sparse, kernel, padding) -> tuple[torch.Tensor, tuple[int, int]]:
    """Corners (N×K×2) and size of the outputs a stride-1 convolution computes from each box."""
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    h, w = s.size
    return s.starts + torch.tensor([ph - kh + 1, pw - kw + 1]), (h + kh - 1, w + kw - 1)


def _apart(s: Sparse, kernel, padding) -> bool:
    """Whether the reaches of each blob's boxes are pairwise disjoint or equal (each output unit then
    reads one box, or copies of it)."""
    if s.k == 1:
        return True
    lo, (h, w) = _reach(s, kernel, padding)
    dy = (lo[:, :, None, 0] - lo[:, None, :, 0]).abs()
    dx = (lo[:, :, None, 1] - lo[:, None, :, 1]).abs()
    overlap = (dy < h) & (dx < w) & ((dy > 0) | (dx > 0))  # a repeated box (a blob of fewer parts) holds the same
    return not bool(overlap.any())


#: the transposed-convolution path needs |irrel − base|₁ ≤ CLOSE · |base|₁ on the boxes
CLOSE = 0.25


def _close_to_base(s: Sparse) -> bool:
    """Whether irrel on the boxes is close to irrel outside them (the base), so that ``W ⋆ base +
    W ⋆ (irrel − base)`` rounds as ``W ⋆ irrel`` does; where the blob takes most of a unit's input
    (a mask that covers a patch: irrel = 0 there) the difference cancels the base, whose rounding
    the bias split then amplifies, and the layer reads its windows instead."""
    h, w = s.size
    b = s.total.shape[0]
    rows, cols = _index(s.starts[..., 0], h, 0, s.total.device), _index(s.starts[..., 1], w, 0, s.total.device)
    height, width = s.total.shape[-2:]
    with torch.no_grad():
        base = _rows_first(_gather(s.outside.permute(2, 3, 0, 1), rows.clamp(0, height - 1), cols.clamp(0, width - 1)))
        return bool((s.irrel - base).abs().sum() <= CLOSE * base.abs().sum())


def _scatter_conv(conv: nn.Conv2d, s: Sparse, linear: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A stride-1 convolution without bias from the boxes outwards: ``r = W ⋆ rel`` and
    ``s = W ⋆ base + W ⋆ (irrel − base)`` on every unit a box reaches (base: irrel outside the boxes),
    the box terms by a transposed convolution of the box alone (its cost is the box's, not its
    reach's). ``linear``: W ⋆ base.
    Returns the reach's corners (N×K×2, possibly past the map's edge) and the two parts on it."""
    starts, (oh, ow) = _reach(s, conv.kernel_size, conv.padding)
    h, w = s.size
    device = s.total.device
    rows, cols = _index(s.starts[..., 0], h, 0, device), _index(s.starts[..., 1], w, 0, device)
    height, width = s.total.shape[-2:]
    on_map = (((rows >= 0) & (rows < height))[:, :, :, None] & ((cols >= 0) & (cols < width))[:, :, None, :])
    on_map = _rows_first(on_map[..., None, None].to(s.rel.dtype))  # (N·K)×1×h×w, one row per box
    on_map = on_map.repeat_interleave(s.total.shape[0], 0)
    base = _rows_first(_gather(s.outside.permute(2, 3, 0, 1), rows.clamp(0, height - 1), cols.clamp(0, width - 1)))
    weight = conv.weight.transpose(0, 1).flip(-1, -2)
    r, q = _transposed(torch.cat([s.rel * on_map, (s.irrel - base) * on_map]), weight).chunk(2)
    rows, cols = _index(starts[..., 0], oh, 0, device), _index(starts[..., 1], ow, 0, device)
    out_h, out_w = linear.shape[-2:]
    shared = _gather(linear.permute(2, 3, 0, 1), rows.clamp(0, out_h - 1), cols.clamp(0, out_w - 1))
    return starts, r, q + _rows_first(shared)


#: largest box-to-reach matrix (entries) :func:`_transposed` builds; larger boxes use the transposed convolution
MATRIX_LIMIT = 1 << 22


def _transposed(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv_transpose2d(t, weight)`` for many rows of a small box: one matrix product with the
    box-to-reach matrix (built by the transposed convolution of the box's unit basis), which CPUs run
    several times faster than a transposed convolution of many small images, backward included."""
    rows, c, h, w = t.shape
    oh, ow = h + weight.shape[-2] - 1, w + weight.shape[-1] - 1
    if c * h * w * weight.shape[1] * oh * ow > MATRIX_LIMIT or rows < c * h * w:
        return F.conv_transpose2d(t, weight)
    basis = torch.eye(c * h * w, dtype=t.dtype, device=t.device).view(-1, c, h, w)
    matrix = F.conv_transpose2d(basis, weight).flatten(1)
    return (t.flatten(1) @ matrix).view(rows, weight.shape[1], oh, ow)


def _elementwise(s: Sparse, fn: Callable[[torch.Tensor], torch.Tensor]) -> Sparse:
    """A ReLU-type activation with f(0) = 0 (relevant part first): outside the boxes rel stays 0."""
    rel = fn(s.rel)
    return Sparse(rel, fn(s.rel + s.irrel) - rel, fn(s.total), s.starts, _shared(s, fn))


def _max_pool(s: Sparse, kernel, stride, padding) -> Sparse | None:
    stride = kernel if stride in (None, (), []) else stride
    total = F.max_pool2d(s.total, kernel, stride, padding)
    plan = _sliding(s, kernel, stride, padding, tuple(total.shape[-2:]))
    if plan is None or _too_wide(s, plan[2]):
        return None
    starts, win, length, padding, stride, kernel = plan
    rel, irrel, tot = windows(s, win, length, padding, total_fill=float("-inf"))
    pooled = max_pool_shared_ties(Decomposed(rel, irrel, tot), kernel, stride, 0, F.max_pool2d(tot, kernel, stride))
    outside = s.outside  # the dense rule averages irrel over the entries tied (within the tolerance) for the max
    base = max_pool_shared_ties(Decomposed(outside, outside, s.total), kernel, stride, padding, total).rel
    if s.base is None and torch.equal(base, total):
        base = None  # no near-ties: irrel outside the boxes is still the total
    return Sparse(pooled.rel, pooled.irrel, total, starts, base)


def _avg_pool(s: Sparse, m: nn.AvgPool2d) -> Sparse | None:
    total = m(s.total)
    stride = m.kernel_size if m.stride in (None, (), []) else m.stride
    plan = _sliding(s, m.kernel_size, stride, m.padding, tuple(total.shape[-2:]))
    if plan is None or _too_wide(s, plan[2]):
        return None
    starts, win, length, padding, stride, kernel = plan
    rel, irrel = windows(s, win, length, padding)
    r, q = F.avg_pool2d(torch.cat([rel, irrel]), kernel, stride).chunk(2)
    return Sparse(r, q, total, starts, _shared(s, m))


def _residual_sum(a: Sparse, b: Sparse) -> Sparse | None:
    """``a + b`` (a residual connection): per blob and box, the bounding box of both operands' boxes."""
    if a.k != b.k or a.total.shape != b.total.shape or a.total.dim() != 4:
        return None
    hw = a.total.shape[-2:]
    lo = torch.minimum(a.starts, b.starts)
    end = torch.maximum(a.starts + torch.tensor(a.size), b.starts + torch.tensor(b.size))
    size = (end - lo).flatten(0, 1).amax(0)
    if a.k * int(size[0]) * int(size[1]) >= hw[0] * hw[1]:
        return None
    lo = torch.minimum(lo, torch.tensor(hw) - size)
    length = (int(size[0]), int(size[1]))
    ra, ia = windows(a, lo, length)
    rb, ib = windows(b, lo, length)
    base = None if a.base is None and b.base is None else a.outside + b.outside
    return Sparse(ra + rb, ia + ib, a.total + b.total, lo, base)


# ----------------------------------------------------------------------------------------------
# the input


def _parts(support: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right; inclusive) of the 8-connected parts of an H×W bool map."""
    points = {(int(i), int(j)) for i, j in support.nonzero().tolist()}
    boxes = []
    while points:
        queue = deque([points.pop()])
        top, left = queue[0]
        bottom, right = top, left
        while queue:
            i, j = queue.popleft()
            top, bottom, left, right = min(top, i), max(bottom, i), min(left, j), max(right, j)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    p = (i + di, j + dj)
                    if p in points:
                        points.remove(p)
                        queue.append(p)
        boxes.append((top, left, bottom, right))
    return boxes


def input_boxes(m: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]] | None:
    """Boxes of one common size covering each blob's mask (one per 8-connected part, at most
    :data:`MAX_BOXES`): their N×K×2 top-left corners and their size (h, w); None where they would
    cover more than :data:`MAX_COVER` of the map (the dense pass is then about as cheap)."""
    support = (m.detach() != 0).flatten(1, 2).any(1).cpu()  # N×H×W
    per_blob = []
    for blob in support:
        parts = _parts(blob)
        if not parts:
            parts = [(0, 0, 0, 0)]
        if len(parts) > MAX_BOXES:
            parts = [(min(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts),
                      max(p[3] for p in parts))]
        per_blob.append(parts)
    k = max(len(p) for p in per_blob)
    h = max(p[2] - p[0] + 1 for parts in per_blob for p in parts)
    w = max(p[3] - p[1] + 1 for parts in per_blob for p in parts)
    if k * h * w >= MAX_COVER * hw[0] * hw[1]:
        return None
    starts = [[(min(p[0], hw[0] - h), min(p[1], hw[1] - w)) for p in parts + parts[-1:] * (k - len(parts))]
              for parts in per_blob]
    return torch.tensor(starts, dtype=torch.long).view(len(per_blob), k, 2), (h, w)


def sparse_start(x: torch.Tensor, m: torch.Tensor) -> Sparse | None:
    """The input as a :class:`Sparse` state: on each blob's boxes rel = m ⊙ x and irrel = (1 − m) ⊙ x
    (outside them m = 0: rel 0, irrel x). None where the boxes would cover most of the image.

    Args:
        x: B×C×H×W images. m: N×(B|1)×(1|C)×H×W blobs (:func:`~explainreg.inputs.normalize_mask`).
    """
    found = input_boxes(m, tuple(x.shape[-2:]))
    if found is None:
        return None
    starts, (h, w) = found
    if starts.shape[0] == 1 and starts.shape[1] > 1:
        return None  # one blob of several parts: their reaches join within a layer or two, and assembling
        # them cost more than the dense pass saves (DecoyMNIST's four corners: 1.2× slower)
    n, k, b, c = starts.shape[0], starts.shape[1], x.shape[0], x.shape[1]
    rows, cols = _index(starts[..., 0], h, 0, x.device), _index(starts[..., 1], w, 0, x.device)
    xs = _gather(x.permute(2, 3, 0, 1), rows, cols)  # N×K×h×w×B×C
    ms = _gather(m.permute(0, 3, 4, 1, 2), rows, cols).to(x.dtype)  # N×K×h×w×(B|1)×(1|C)
    rel, irrel = ms * xs, (1 - ms) * xs
    return Sparse(_rows_first(rel.expand(n, k, h, w, b, c)), _rows_first(irrel.expand(n, k, h, w, b, c)), x, starts)


def relevant_share(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The dense pass's :func:`~.rules.input_share` of each of the N·B rows, without building them:
    ρ = Σ m|x| / (Σ m|x| + Σ (1 − m)|x|), the mask's mean for an image that is 0 everywhere."""
    with torch.no_grad():
        a = x.detach().abs()
        if m.shape[2] == 1:
            a, mm = a.sum(1), m[:, :, 0]
            r = (mm * a).flatten(2).sum(-1)
            q = ((1 - mm) * a).flatten(2).sum(-1)
        else:
            r = (m * a).flatten(2).sum(-1)
            q = ((1 - m) * a).flatten(2).sum(-1)
        n, b = m.shape[0], x.shape[0]
        r, q = r.expand(n, b).reshape(-1), q.expand(n, b).reshape(-1)
        empty = m.expand(n, *x.shape).flatten(2).mean(-1).reshape(-1).to(r.dtype)
        return torch.where(r + q > 0, r / (r + q).clamp_min(torch.finfo(r.dtype).tiny), empty)


__all__ = ["MAX_BOXES", "MAX_COVER", "Sparse", "SparsePass", "densify", "input_boxes", "relevant_share",
           "sparse_start", "windows"]
