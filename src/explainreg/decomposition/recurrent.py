"""Contextual decomposition for token sequences (Murdoch, Liu & Yu 2018, "Beyond word importance:
contextual decomposition to extract interactions from LSTMs"; as CDEP uses it on text, Rieger et al. 2020,
"Interpretations are useful: penalizing explanations to align neural networks with prior knowledge").

``decompose_tokens(model, ids, token_mask)`` splits each logit of a text model into ``rel`` (due
to the masked tokens) and ``irrel`` (the other tokens and the biases). The decomposition starts at
the model's ``nn.Embedding``: ``rel = m ⊙ e``, ``irrel = (1 − m) ⊙ e`` with e = Embedding(ids) and
m the B×T token mask broadcast over E; the usual engine rules carry it to the logits.

Sequence rules registered here:

* ``nn.LSTM`` (any number of layers, uni- or bidirectional, ``batch_first`` or not). Per layer and
  direction, the gate pre-activations a = W_ih x_t + W_hh h_{t−1} + b have three parts: rel
  (W_ih x_t^rel + W_hh h^rel), irrel (likewise) and the bias b. σ and tanh of a three-part sum are
  linearised by :func:`propagate_three`: L_rel = ½[φ(a+c) − φ(c) + φ(a+b+c) − φ(b+c)], L_irrel
  symmetric, φ(c) the bias share. Products of shares (:func:`share_product`) go to rel when all
  factors are rel or bias (with at least one rel), to irrel when any factor is irrel, and
  bias × bias to rel when token t is masked, else to irrel (dense inputs without a token mask:
  in proportion to the step's relevant input share ``|rel_t|₁ / (|rel_t|₁ + |irrel_t|₁)``). The cell
  c_t = f ⊙ c_{t−1} + i ⊙ g is expanded that way; h_t = o ⊙ tanh(c_t) with the two-part rule
  :func:`propagate_tanh_two` and the output gate o taken whole. Exact: h_rel + h_irrel = h.
* ``nn.GRU``: the same rules on r, z, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) and
  h' = (1 − z) ⊙ n + z ⊙ h (the r ⊙ (·) product's bias × bias share joins n's bias).
* indexing (``out[:, -1]``, ``h_n[-1]``, ``out[arange(B), lengths − 1]``), ``gather``,
  ``transpose`` / ``permute``, ``mean`` over time (linear), ``max`` / ``amax`` over time (both parts
  read at the argmax of the total), ``LayerNorm`` (affine in eval with the statistics of the
  total: ((x − μ)/σ)·γ + β, the mean subtracted from each part, β and −μγ/σ … split as a bias),
  ``GELU`` (the Shapley two-player rule, as tanh/sigmoid).

Only single-mask (N = 1) decompositions are supported for token inputs. The loop over time steps
is the only Python loop of the LSTM / GRU rules (directions run together as a batched matmul).
"""
from __future__ import annotations

import contextvars
import dataclasses
import operator
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..inputs import find_embedding, padding_mask, token_mask as _token_mask
from ..modes import unwrap_parallel
from .._validation import check_token_ids
from .engine import register_token_decomposer, run_rules, trace
from .rules import (_ROW_SHARE, UNSUPPORTED, Decomposed, UnsupportedLayerError, bias_left_out, input_share,
                    register_function_rule, register_rule, row_share, shapley, standardise)

#: B×T token mask of the running token decomposition (None outside one); the LSTM / GRU rules read it
#: to give the bias × bias share of step t to rel when token t is masked.
_STEP_MASK: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("cd_step_mask", default=None)

_FIELDS = {f.name for f in dataclasses.fields(Decomposed)}


def _make(rel: torch.Tensor, irrel: torch.Tensor, total: torch.Tensor) -> Decomposed:
    """A Decomposed from both parts and the ordinary activation."""
    if "total" in _FIELDS:
        return Decomposed(rel, irrel, total)
    return Decomposed(rel, irrel)  # pragma: no cover - total derived from the parts


# ----------------------------------------------------------------------------------------------
# pure functions on (rel, irrel, bias) shares


def propagate_three(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                    fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shares of φ(a + b + c) for rel a, irrel b and bias c (Murdoch et al. 2018):
    ``(½[φ(a+c) − φ(c) + φ(a+b+c) − φ(b+c)], ½[φ(b+c) − φ(c) + φ(a+b+c) − φ(a+c)], φ(c))``; they sum
    to φ(a + b + c).

    Args:
        a, b, c: the relevant, irrelevant and bias parts of the pre-activation (broadcastable).
        fn: the activation φ (``torch.sigmoid``, ``torch.tanh``).

    Shape:
        a, b, c: broadcastable; output: three tensors of the broadcast shape.

    Returns:
        ``(rel, irrel, bias)`` shares.

    Example::

        >>> import torch
        >>> from explainreg.decomposition.recurrent import propagate_three
        >>> a, b, c = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.3]), torch.tensor([0.2, 0.2])
        >>> rel, irrel, bias = propagate_three(a, b, c, torch.sigmoid)
        >>> bool(torch.allclose(rel + irrel + bias, torch.sigmoid(a + b + c)))
        True
        >>> propagate_three(a, torch.zeros(2), c, torch.sigmoid)[1]       # no irrelevant input, no share
        tensor([0., 0.])
    """
    f_c, f_ac, f_bc, f_abc = fn(c), fn(a + c), fn(b + c), fn(a + b + c)
    return 0.5 * (f_ac - f_c + f_abc - f_bc), 0.5 * (f_bc - f_c + f_abc - f_ac), f_c.expand_as(f_abc)


def propagate_tanh_two(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shares of tanh(a + b): ``(½[tanh(a) + tanh(a+b) − tanh(b)], ½[tanh(b) + tanh(a+b) − tanh(a)])``.

    Args:
        a, b: the relevant and irrelevant parts (broadcastable).

    Returns:
        ``(rel, irrel)``, summing to tanh(a + b).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.recurrent import propagate_tanh_two
        >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 2.0])
        >>> rel, irrel = propagate_tanh_two(a, b)
        >>> bool(torch.allclose(rel + irrel, torch.tanh(a + b))), rel[1].item()
        (True, 0.0)
    """
    t_a, t_b, t_ab = torch.tanh(a), torch.tanh(b), torch.tanh(a + b)
    return 0.5 * (t_a + t_ab - t_b), 0.5 * (t_b + t_ab - t_a)


def share_product(u: tuple, v: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expand (u_r + u_i + u_b) ⊙ (v_r + v_i + v_b) into ``(rel, irrel, bias)``:
    rel = u_r (v_r + v_b) + u_b v_r, irrel = u_i (v_r + v_i + v_b) + (u_r + u_b) v_i, bias = u_b v_b.

    Args:
        u, v: ``(rel, irrel, bias)`` shares of the two factors (tensors or numbers).

    Returns:
        ``(rel, irrel, bias)`` of the product, summing to (Σu) ⊙ (Σv).

    Example::

        >>> import torch
        >>> from explainreg.decomposition.recurrent import share_product
        >>> u = (torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0))
        >>> v = (torch.tensor(4.0), torch.tensor(5.0), torch.tensor(6.0))
        >>> [t.item() for t in share_product(u, v)], (1 + 2 + 3) * (4 + 5 + 6)
        ([22.0, 50.0, 18.0], 90)
    """
    ur, ui, ub = u
    vr, vi, vb = v
    return ur * (vr + vb) + ub * vr, ui * (vr + vi + vb) + (ur + ub) * vi, ub * vb


def _step_mask(rel: torch.Tensor, irrel: torch.Tensor) -> torch.Tensor:
    """B×T share of each step's bias × bias products that goes to rel: the token mask of the running
    token decomposition, else (dense inputs, e.g. a series) the relevant share of the step's input,
    |rel_t|₁ / (|rel_t|₁ + |irrel_t|₁) (the mask value itself for a binary mask). A step whose input
    is exactly 0 (zero padding) takes the relevant share of the sample's whole input, as a unit that
    sees neither part does in :func:`~explainreg.decomposition.rules.split_bias` (0 outside a
    decomposition)."""
    batch, steps = rel.shape[:2]
    m = _STEP_MASK.get()
    if m is not None and tuple(m.shape) == (batch, steps):
        return m.to(rel.dtype)
    r, s = rel.detach().abs().sum(-1), irrel.detach().abs().sum(-1)
    fallback = row_share(r)
    empty = torch.zeros_like(r) if fallback is None else fallback.expand_as(r)
    return torch.where(r + s > 0, r / (r + s).clamp_min(torch.finfo(rel.dtype).tiny), empty)


def lstm_layer(x_rel: torch.Tensor, x_irrel: torch.Tensor, step_mask: torch.Tensor, w_ih: torch.Tensor,
               w_hh: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """CD through one LSTM layer, all directions at once (Murdoch, Liu & Yu 2018).

    The gate pre-activations' three parts (rel, irrel, bias) are linearised with
    :func:`propagate_three`, the cell's products expanded with :func:`share_product`, and
    ``h_t = o ⊙ tanh(c_t)`` split with :func:`propagate_tanh_two` (the module docstring has the rules).

    Args:
        x_rel, x_irrel: the two parts of the layer input, B×T×I (batch first).
        step_mask: B×T in [0, 1]; the share of step t's bias × bias products that goes to rel.
        w_ih: D×4H×I, w_hh: D×4H×H, bias: D×4H (b_ih + b_hh), gates in PyTorch's order i, f, g, o;
            D = 2 for a bidirectional layer (direction 1 reads the sequence backwards).

    Returns:
        ``(out_rel, out_irrel, h_rel, h_irrel, c_rel, c_irrel)``: outputs B×T×(D·H) (directions
        concatenated as nn.LSTM), final states D×B×H, with out_rel + out_irrel = the LSTM's output.

    Shape:
        x_rel, x_irrel: (B, T, I); step_mask: (B, T); outputs (B, T, D·H); states (D, B, H).

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.recurrent import lstm_layer
        >>> lstm = nn.LSTM(3, 2, batch_first=True, bidirectional=True)
        >>> x, m = torch.randn(2, 5, 3), torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]] * 2)
        >>> w = lambda name: torch.stack([getattr(lstm, name + "_l0"), getattr(lstm, name + "_l0_reverse")])
        >>> out_rel, out_irrel, *states = lstm_layer(x * m[..., None], x * (1 - m[..., None]), m,
        ...                                          w("weight_ih"), w("weight_hh"), w("bias_ih") + w("bias_hh"))
        >>> tuple(out_rel.shape), bool(torch.allclose(out_rel + out_irrel, lstm(x)[0], atol=1e-5))
        ((2, 5, 4), True)
    """
    D, G, _ = w_ih.shape
    H = G // 4
    B, T, _ = x_rel.shape
    # tanh(a) = 2σ(2a) − 1: with the g rows of the weights doubled, one σ serves all four gates, and the
    # shares of tanh are twice those of σ(2a) (the −1 is part of the bias share)
    mult = x_rel.new_ones(G)
    mult[2 * H:3 * H] = 2
    offset = torch.zeros_like(mult)
    offset[2 * H:3 * H] = -1
    w_ih, w_hh, bias = w_ih * mult[:, None], w_hh * mult[:, None], bias * mult
    ax_rel = torch.einsum("bti,dgi->dtbg", x_rel, w_ih)  # D×T×B×4H
    ax_irrel = torch.einsum("bti,dgi->dtbg", x_irrel, w_ih)
    m = step_mask.to(x_rel.dtype).T[None].expand(D, T, B).clone()  # D×T×B
    if D == 2:
        ax_rel = torch.stack([ax_rel[0], ax_rel[1].flip(0)])
        ax_irrel = torch.stack([ax_irrel[0], ax_irrel[1].flip(0)])
        m[1] = m[1].flip(0)
    b = bias[:, None, :]  # D×1×4H
    f_c = torch.sigmoid(b)
    bias_share = f_c * mult + offset  # φ(c) of each gate: σ(b_i), σ(b_f), tanh(b_g), (σ(b_o))
    half = 0.5 * mult
    w_hh_t = w_hh.transpose(1, 2)  # D×H×4H
    h_rel = x_rel.new_zeros(D, B, H)
    h_irrel, c_rel, c_irrel = torch.zeros_like(h_rel), torch.zeros_like(h_rel), torch.zeros_like(h_rel)
    outs_rel, outs_irrel = [], []
    for t in range(T):
        a_rel = torch.baddbmm(ax_rel[:, t], h_rel, w_hh_t)  # D×B×4H
        a_irrel = torch.baddbmm(ax_irrel[:, t], h_irrel, w_hh_t)
        f_ac, f_bc, f_abc = torch.sigmoid(a_rel + b), torch.sigmoid(a_irrel + b), torch.sigmoid(a_rel + a_irrel + b)
        rel = half * (f_ac - f_c + f_abc - f_bc)  # propagate_three for every gate at once
        irrel = half * (f_bc - f_c + f_abc - f_ac)
        r_i, r_f, r_g, _ = rel.chunk(4, -1)
        s_i, s_f, s_g, _ = irrel.chunk(4, -1)
        b_i, b_f, b_g, _ = bias_share.chunk(4, -1)
        o = f_abc[..., 3 * H:]
        mt = m[:, t, :, None]
        i_bias_g = b_i * b_g
        c_rel, c_irrel = (r_i * (r_g + b_g) + b_i * r_g + mt * i_bias_g + (r_f + b_f) * c_rel,
                          s_i * (r_g + s_g + b_g) + (r_i + b_i) * s_g + (1 - mt) * i_bias_g
                          + (r_f + s_f + b_f) * c_irrel + s_f * c_rel)
        t_rel, t_irrel = propagate_tanh_two(c_rel, c_irrel)
        h_rel, h_irrel = o * t_rel, o * t_irrel
        outs_rel.append(h_rel)
        outs_irrel.append(h_irrel)
    return (*_directions_out(outs_rel, outs_irrel, D), h_rel, h_irrel, c_rel, c_irrel)


def gru_layer(x_rel: torch.Tensor, x_irrel: torch.Tensor, step_mask: torch.Tensor, w_ih: torch.Tensor,
              w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """CD through one GRU layer, all directions at once: gates r, z linearised with
    :func:`propagate_three`; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) with the product expanded by
    :func:`share_product` (its bias × bias part joins n's bias); h' = (1 − z) ⊙ n + z ⊙ h expanded the
    same way (bias × bias of step t to rel when token t is masked).

    Args:
        x_rel, x_irrel: the two parts of the layer input, B×T×I (batch first).
        step_mask: B×T in [0, 1]; the share of step t's bias × bias products that goes to rel.
        w_ih: D×3H×I, w_hh: D×3H×H, b_ih, b_hh: D×3H, gates in PyTorch's order r, z, n.

    Shape:
        As :func:`lstm_layer` with 3H gate rows.

    Returns:
        ``(out_rel, out_irrel, h_rel, h_irrel)``: outputs B×T×(D·H), final states D×B×H, with
        out_rel + out_irrel = the GRU's output.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.decomposition.recurrent import gru_layer
        >>> gru = nn.GRU(3, 2, batch_first=True)
        >>> x, m = torch.randn(2, 4, 3), torch.tensor([[0.0, 1.0, 0.0, 0.0]] * 2)
        >>> w = lambda name: getattr(gru, name + "_l0")[None]
        >>> out_rel, out_irrel, h_rel, h_irrel = gru_layer(x * m[..., None], x * (1 - m[..., None]), m,
        ...     w("weight_ih"), w("weight_hh"), w("bias_ih"), w("bias_hh"))
        >>> bool(torch.allclose(out_rel + out_irrel, gru(x)[0], atol=1e-5))
        True
    """
    D, G, _ = w_ih.shape
    H = G // 3
    B, T, _ = x_rel.shape
    ax_rel = torch.einsum("bti,dgi->dtbg", x_rel, w_ih)
    ax_irrel = torch.einsum("bti,dgi->dtbg", x_irrel, w_ih)
    m = step_mask.to(x_rel.dtype).T[None].expand(D, T, B).clone()
    if D == 2:
        ax_rel = torch.stack([ax_rel[0], ax_rel[1].flip(0)])
        ax_irrel = torch.stack([ax_irrel[0], ax_irrel[1].flip(0)])
        m[1] = m[1].flip(0)
    bi_r, bi_z, bi_n = b_ih[:, None, :].chunk(3, -1)
    bh_r, bh_z, bh_n = b_hh[:, None, :].chunk(3, -1)
    w_hh_t = w_hh.transpose(1, 2)
    h_rel = x_rel.new_zeros(D, B, H)
    h_irrel = torch.zeros_like(h_rel)
    zero = h_rel
    outs_rel, outs_irrel = [], []
    for t in range(T):
        xr_r, xr_z, xr_n = ax_rel[:, t].chunk(3, -1)
        xi_r, xi_z, xi_n = ax_irrel[:, t].chunk(3, -1)
        hr_r, hr_z, hr_n = torch.bmm(h_rel, w_hh_t).chunk(3, -1)
        hi_r, hi_z, hi_n = torch.bmm(h_irrel, w_hh_t).chunk(3, -1)
        r3 = propagate_three(xr_r + hr_r, xi_r + hi_r, bi_r + bh_r, torch.sigmoid)
        z3 = propagate_three(xr_z + hr_z, xi_z + hi_z, bi_z + bh_z, torch.sigmoid)
        ru_rel, ru_irrel, ru_bias = share_product(r3, (hr_n, hi_n, bh_n.expand_as(hr_n)))
        n3 = propagate_three(xr_n + ru_rel, xi_n + ru_irrel, bi_n + ru_bias, torch.tanh)
        one_minus_z = (-z3[0], -z3[1], 1 - z3[2])
        zn_rel, zn_irrel, zn_bias = share_product(one_minus_z, n3)
        zh_rel, zh_irrel, _ = share_product(z3, (h_rel, h_irrel, zero))
        mt = m[:, t, :, None]
        h_rel = zn_rel + zh_rel + mt * zn_bias
        h_irrel = zn_irrel + zh_irrel + (1 - mt) * zn_bias
        outs_rel.append(h_rel)
        outs_irrel.append(h_irrel)
    return (*_directions_out(outs_rel, outs_irrel, D), h_rel, h_irrel)


def _directions_out(outs_rel: list[torch.Tensor], outs_irrel: list[torch.Tensor], D: int):
    """Stack the per-step D×B×H states into B×T×(D·H), direction 1 put back in forward time."""
    rel, irrel = torch.stack(outs_rel, 2), torch.stack(outs_irrel, 2)  # D×B×T×H
    if D == 2:
        rel = torch.stack([rel[0], rel[1].flip(1)])
        irrel = torch.stack([irrel[0], irrel[1].flip(1)])
    return torch.cat(list(rel), -1), torch.cat(list(irrel), -1)


# ----------------------------------------------------------------------------------------------
# module rules


def _check_recurrent(m: nn.RNNBase, d: Decomposed) -> None:
    if getattr(m, "proj_size", 0):
        raise ValueError(f"contextual decomposition does not support {type(m).__name__}(proj_size > 0)")
    if m.training and m.dropout > 0 and m.num_layers > 1:
        raise ValueError(f"contextual decomposition of {type(m).__name__}(dropout={m.dropout}) in training mode "
                         "would need the forward pass's dropout masks; call model.eval() or use dropout=0")
    if d.n_blobs != 1:
        raise ValueError(f"contextual decomposition of {type(m).__name__} supports one mask (N = 1), got {d.n_blobs}")
    if d.rel.dim() != 3:
        raise ValueError(f"{type(m).__name__} input must be batched (B×T×I or T×B×I), got {tuple(d.rel.shape)}")


def _weights(m: nn.RNNBase, layer: int, D: int, rows: int):
    suffixes = [f"_l{layer}"] + ([f"_l{layer}_reverse"] if D == 2 else [])
    w_ih = torch.stack([getattr(m, "weight_ih" + s) for s in suffixes])
    w_hh = torch.stack([getattr(m, "weight_hh" + s) for s in suffixes])
    if m.bias:
        b_ih = torch.stack([getattr(m, "bias_ih" + s) for s in suffixes])
        b_hh = torch.stack([getattr(m, "bias_hh" + s) for s in suffixes])
    else:
        b_ih = b_hh = w_ih.new_zeros(D, rows)
    return w_ih, w_hh, b_ih, b_hh


def _recurrent(m: nn.RNNBase, d: Decomposed, kind: str):
    _check_recurrent(m, d)
    rel, irrel = d.rel, d.irrel
    if not m.batch_first:
        rel, irrel = rel.transpose(0, 1), irrel.transpose(0, 1)
    step = _step_mask(rel, irrel)
    D = 2 if m.bidirectional else 1
    finals: list[list[torch.Tensor]] = []
    for layer in range(m.num_layers):
        w_ih, w_hh, b_ih, b_hh = _weights(m, layer, D, (4 if kind == "lstm" else 3) * m.hidden_size)
        if kind == "lstm":
            rel, irrel, *states = lstm_layer(rel, irrel, step, w_ih, w_hh, b_ih + b_hh)
        else:
            rel, irrel, *states = gru_layer(rel, irrel, step, w_ih, w_hh, b_ih, b_hh)
        finals.append(states)
    if not m.batch_first:
        rel, irrel = rel.transpose(0, 1), irrel.transpose(0, 1)
    # the ordinary output is the sum of the parts (exact up to rounding, one mask): no second LSTM pass
    out = _make(rel, irrel, rel + irrel)
    # final states: (num_layers·D)×B×H, layer-major as nn.LSTM / nn.GRU
    h_rel, h_irrel = torch.cat([s[0] for s in finals]), torch.cat([s[1] for s in finals])
    h = _make(h_rel, h_irrel, h_rel + h_irrel)
    if kind == "gru":
        return out, h
    c_rel, c_irrel = torch.cat([s[2] for s in finals]), torch.cat([s[3] for s in finals])
    return out, (h, _make(c_rel, c_irrel, c_rel + c_irrel))


@register_rule(nn.LSTM)
def _lstm(m: nn.LSTM, d: Decomposed):
    return _recurrent(m, d, "lstm")


@register_rule(nn.GRU)
def _gru(m: nn.GRU, d: Decomposed):
    return _recurrent(m, d, "gru")


UNSUPPORTED[nn.RNN] = "Elman RNNs (nn.RNN) have no CD rule here; use nn.LSTM or nn.GRU"


@register_rule(nn.Embedding)
def _embedding_of_decomposed(m: nn.Embedding, d: Decomposed):
    raise ValueError("an nn.Embedding cannot take a decomposed input; token models are decomposed from their "
                     "token ids with decompose(model, ids, token_mask)")


@register_rule(nn.LayerNorm)
def _layer_norm(m: nn.LayerNorm, d: Decomposed) -> Decomposed:
    """LayerNorm as an affine map with the statistics of the total (as BatchNorm in eval mode):
    y = (x − μ(x))·s + β, s = γ/√(σ²(x)+ε); the mean over the normalised dims is subtracted from each
    part (linear), then both parts are scaled by s and β is split as a bias."""
    k = len(m.normalized_shape)
    return standardise(d, lambda t: t.reshape(*t.shape[:-k], -1), m.eps, m(d.total), m.weight, m.bias)


@register_rule(nn.GELU)
def _gelu(m: nn.GELU, d: Decomposed) -> Decomposed:
    return shapley(d, lambda t: F.gelu(t, approximate=m.approximate))


register_function_rule(F.gelu, lambda d, approximate="none": shapley(d, lambda t: F.gelu(t, approximate=approximate)))


# ----------------------------------------------------------------------------------------------
# function and method rules on sequences


def _touches_batch(index: Any) -> bool:
    first = index[0] if isinstance(index, tuple) and index else index
    return not (isinstance(first, slice) and first == slice(None)) and first is not Ellipsis


@register_function_rule(operator.getitem)
def _getitem(a: Any, index: Any):
    """``tuple[i]`` plainly; ``d[index]`` applied to both parts and the total (a tensor index built from
    the batch, e.g. ``out[arange(B), lengths − 1]``, needs one mask, N = 1)."""
    if not isinstance(a, Decomposed):
        return a[index]
    if a.n_blobs != 1 and _touches_batch(index):
        raise ValueError("contextual decomposition with several blobs cannot index the batch dimension")
    return _make(a.rel[index], a.irrel[index], a.total[index])


def _same_on_parts(name: str) -> Callable:
    def apply(d: Decomposed, *args, **kwargs):
        fn = (lambda t: getattr(t, name)(*args, **kwargs))
        out = fn(d.total)
        if d.n_blobs != 1 and (not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != d.total.shape[0]):
            raise ValueError(f"contextual decomposition with several blobs needs {name} to keep the batch dimension")
        return _make(fn(d.rel), fn(d.irrel), out)

    return apply


for _name in ("transpose", "permute", "squeeze", "unsqueeze", "select", "narrow"):
    register_function_rule(_name, _same_on_parts(_name))
for _fn, _name in ((torch.transpose, "transpose"), (torch.permute, "permute"), (torch.squeeze, "squeeze"),
                   (torch.unsqueeze, "unsqueeze"), (torch.select, "select"), (torch.narrow, "narrow")):
    register_function_rule(_fn, (lambda name: lambda d, *a, **k: _same_on_parts(name)(d, *a, **k))(_name))


def _gather(d: Decomposed, dim: int, index: torch.Tensor):
    if d.n_blobs != 1:
        index = d.tile(index)
    return _make(d.rel.gather(dim, index), d.irrel.gather(dim, index), d.total.gather(dim, index))


register_function_rule("gather", _gather)
register_function_rule(torch.gather, _gather)


def _mean(d: Decomposed, dim=None, keepdim: bool = False, **kwargs):
    if dim is None or (isinstance(dim, int) and dim == 0) or (isinstance(dim, (tuple, list)) and 0 in dim):
        raise ValueError("contextual decomposition needs mean over non-batch dimensions, e.g. x.mean(1)")
    fn = (lambda t: t.mean(dim, keepdim=keepdim, **kwargs))
    return _make(fn(d.rel), fn(d.irrel), fn(d.total))


register_function_rule("mean", _mean)
register_function_rule(torch.mean, _mean)


def _sum(d: Decomposed, dim=None, keepdim: bool = False, **kwargs):
    if dim is None or (isinstance(dim, int) and dim == 0) or (isinstance(dim, (tuple, list)) and 0 in dim):
        raise ValueError("contextual decomposition needs sums over non-batch dimensions, e.g. x.sum(1)")
    fn = (lambda t: t.sum(dim, keepdim=keepdim, **kwargs))
    return _make(fn(d.rel), fn(d.irrel), fn(d.total))


register_function_rule("sum", _sum)
register_function_rule(torch.sum, _sum)


def _amax(d: Decomposed, dim: int, keepdim: bool = False):
    """Max over a non-batch dim: both parts read at the argmax of the total (as max pooling)."""
    if not isinstance(dim, int) or dim % d.total.dim() == 0:
        raise ValueError("contextual decomposition needs max over one non-batch dimension, e.g. x.max(1)")
    index = d.total.argmax(dim, keepdim=True)
    if d.n_blobs != 1:
        index = d.tile(index)
    take = (lambda t: t.gather(dim, index) if keepdim else t.gather(dim, index).squeeze(dim))
    out = d.total.amax(dim, keepdim=keepdim)
    return _make(take(d.rel), take(d.irrel), out)


register_function_rule("amax", _amax)
register_function_rule(torch.amax, _amax)


class MaxResult(NamedTuple):
    """``x.max(dim)`` of a decomposition: the decomposed ``values`` and the argmax ``indices`` of the total."""

    values: Decomposed
    indices: torch.Tensor


def _max(d: Decomposed, dim: int | None = None, keepdim: bool = False) -> MaxResult:
    if dim is None:
        raise ValueError("contextual decomposition needs max over one non-batch dimension, e.g. x.max(1)")
    return MaxResult(_amax(d, dim, keepdim), d.total.argmax(dim, keepdim=keepdim))


register_function_rule("max", _max)
register_function_rule(torch.max, _max)


# ----------------------------------------------------------------------------------------------
# the public call


def decompose_tokens(model: nn.Module, ids: torch.Tensor, token_mask: Any, *, layer: str | nn.Module | None = None,
                     lengths: torch.Tensor | None = None, bias_mask: Any = None, detach_embeddings: bool = False,
                     output_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Contextual decomposition of a text model's logits for the tokens ``token_mask`` marks.

    ``rel = m ⊙ e`` and ``irrel = (1 − m) ⊙ e`` at the output e of the model's embedding (``layer``,
    found automatically), then the engine's rules (this module's for LSTM / GRU, indexing, pooling);
    padding (``lengths`` or the embedding's ``padding_idx``) is never relevant.

    Three options give CDEP's text code (``cd_text_irreg_scores``, documentation: guide/text):
    ``bias_mask`` moves the LSTM / GRU steps' bias × bias products to rel only at the steps it marks
    (the seed: at the decoy, not at the word after it that its window also holds);
    ``detach_embeddings`` reads the word vectors without their graph (the seed's ``.data``: no
    gradient reaches the embedding weights through this decomposition); ``output_bias=False`` leaves
    the bias of the ``nn.Linear`` that returns the logits out of rel and irrel (the seed's
    ``W_out · h``), so that rel + irrel = logits − bias.

    Args:
        model: maps token ids B×T to logits B×K.
        ids: B×T integer token ids.
        token_mask: B×T (or T, shared) in [0, 1], 1 = the token the explanation concerns.
        layer: the embedding (module or qualified name); None finds the model's ``nn.Embedding``.
        lengths: B real lengths (right padding); None reads padding from the embedding's
            ``padding_idx``.
        bias_mask: B×T (or T) in [0, 1]: the steps whose bias × bias share goes to rel; None: ``token_mask``.
        detach_embeddings: decompose the embedding's output detached from the embedding weights.
        output_bias: split the logits' bias between rel and irrel (True) or leave it out (False;
            the logits must come from an ``nn.Linear``).

    Shape:
        ids, token_mask, bias_mask: (B, T); output: two (B, K) tensors.

    Returns:
        ``(rel, irrel)``, each B×K, with rel + irrel = model(ids) (minus the output bias with
        ``output_bias=False``).

    Raises:
        TypeError: ``ids`` are not integers.
        UnsupportedLayerError: the model has no embedding, or a layer without a rule.

    Example::

        >>> import torch
        >>> from explainreg.decomposition import decompose_tokens
        >>> from explainreg.models.text import TextLSTMClassifier
        >>> model = TextLSTMClassifier(vocab_size=10, embedding_dim=4, hidden_size=3).eval()
        >>> ids = torch.tensor([[3, 5, 7, 0], [2, 4, 0, 0]])        # right-padded with 0
        >>> rel, irrel = decompose_tokens(model, ids, torch.tensor([1.0, 0.0, 0.0, 0.0]))   # the first word
        >>> bool(torch.allclose(rel + irrel, model(ids), atol=1e-5))
        True
        >>> rel_all, _ = decompose_tokens(model, ids, torch.ones(4))  # every word: rel is the logit
        >>> bool(torch.allclose(rel_all, model(ids), atol=1e-5))
        True
    """
    model = unwrap_parallel(model)
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point():
        raise TypeError("ids must be an integer tensor of token ids (B×T)")
    check_token_ids(ids)
    try:
        embedding = find_embedding(model, layer)
    except ValueError as exc:
        raise UnsupportedLayerError(str(exc)) from exc
    check_token_ids(ids, getattr(embedding, "num_embeddings", None))
    real = padding_mask(ids, lengths=lengths, padding_idx=getattr(embedding, "padding_idx", None))
    m = _token_mask(token_mask, ids, "token_mask") * real
    steps = m if bias_mask is None else _token_mask(bias_mask, ids, "bias_mask") * real
    head = None if output_bias else _output_linear(model)

    def split(module: nn.Module, args: Any, e: torch.Tensor) -> Decomposed:
        if e.shape[:2] != ids.shape:
            raise ValueError(f"the embedding output {tuple(e.shape)} does not start with the ids' B×T {tuple(ids.shape)}")
        if detach_embeddings:
            e = e.detach()
        w = m.to(e.dtype).view(*m.shape, *([1] * (e.dim() - 2)))
        rel, irrel = w * e, (1 - w) * e
        # the relevant share of the real tokens' embeddings (padding counts in neither part), for the
        # units that see neither part (rules.split_bias); a sample whose embeddings are all 0: its mask's mean
        real_w = real.to(e.dtype).view_as(w)
        empty = m.sum(1) / real.sum(1).clamp_min(1)
        shares.append(_ROW_SHARE.set(input_share(rel, (real_w - w) * e, empty)))
        return _make(rel, irrel, e)

    shares: list[contextvars.Token] = []
    handle = embedding.register_forward_hook(split)
    token = _STEP_MASK.set(steps)
    try:
        with bias_left_out(head):
            out = run_rules(model, ids)
    finally:
        for share in reversed(shares):
            _ROW_SHARE.reset(share)
        _STEP_MASK.reset(token)
        handle.remove()
    if not isinstance(out, Decomposed) or out.rel.dim() != 2:
        raise ValueError(f"the model must return logits of shape B×K, got {getattr(out, 'total', out)}")
    return out.rel, out.irrel



register_token_decomposer(decompose_tokens)  # decompose() on token ids runs it

def _output_linear(model: nn.Module) -> nn.Linear:
    """The ``nn.Linear`` whose output the model returns (for ``output_bias=False``)."""
    graph = trace(model)
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    module = model.get_submodule(out.target) if isinstance(out, torch.fx.Node) and out.op == "call_module" else None
    if not isinstance(module, nn.Linear):
        raise ValueError(f"output_bias=False leaves out the bias of the nn.Linear that returns the logits; "
                         f"{type(model).__name__} returns {getattr(out, 'name', out)!s}, not an nn.Linear's output")
    return module


__all__ = ["decompose_tokens", "gru_layer", "lstm_layer", "propagate_tanh_two", "propagate_three", "share_product"]
