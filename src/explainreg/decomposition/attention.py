"""Contextual decomposition through attention (documentation: transformers; CD-T, Hsu et al. 2024, "Mechanistic
interpretation through contextual decomposition in transformers").

Scaled dot-product attention ``out = softmax(q·kᵀ·s + M)·v`` is decomposed with the attention weights
computed from the **total** input (rel + irrel) and held fixed as coefficients, and the values split
linearly: with ``A = softmax(q_total·k_totalᵀ·s + M)`` (M the additive padding / causal mask, the
dropout on A drawn once and shared by every part),

    rel_out = A·rel_v,    irrel_out = A·irrel_v,

where ``v = W_v·x + b_v`` is decomposed by the affine rule (``b_v`` split in proportion to
|W_v·rel| and |W_v·irrel|, :func:`~explainreg.decomposition.rules.split_bias`). Since the rows of A
sum to 1, rel_out + irrel_out = A·v exactly, an all-ones mask keeps irrel = 0 and an all-zeros mask
rel = 0 (given the linear rule's bias split). This is CD-T's treatment of BERT's self-attention (its
``prop_self_attention``: ``att_probs`` from ``rel + irrel``, ``prop_linear`` on the values, the
same probabilities multiplied into each part). Around attention the existing rules apply: linear maps
and their biases (affine rule), residual adds (part by part), LayerNorm (the total's statistics, each
part's own mean, β split as a bias), GELU and tanh (two-player Shapley rule), ReLU (relevant first).

Where explainreg departs from CD-T's code (docs/transformers.md gives the comparison):

* CD-T splits the embedding *output* (word + position + token type, after its LayerNorm) by token;
  explainreg starts from the word embeddings (the explained tensor, documentation: guide/concepts) and adds the
  position and token-type embeddings as biases (split by the affine rule; all to rel under an
  all-ones mask, all to irrel under an all-zeros one), then decomposes the embedding LayerNorm.
* CD-T's ``prop_act`` gives irrel = f(irrel) and rel the remainder (ACD's rule) for GELU and the
  pooler's tanh; explainreg uses the symmetric two-player Shapley rule for smooth activations
  (documentation: methods/decomposition), ReLU relevant first.
* CD-T splits LayerNorm's β by the input parts' magnitudes |rel|, |irrel|; explainreg by the
  normalised parts' (the affine rule applied after the fixed scaling).
* CD-T re-signs the parts after every operation (``normalize_rel_irrel``: where rel and irrel have
  opposite signs the larger takes the sum, the other 0); explainreg keeps both streams as the rules
  give them (A.6: no step derives one part from the other).
* A product of two decomposed tensors met outside a registered attention (``q @ k.transpose(-1, -2)``
  in a hand-written attention) is expanded bilinearly: rel·rel to rel, every product with an irrel
  factor to irrel (as the LSTM rule's products, A.8); ``softmax`` of a decomposed tensor is taken of
  the total and returned as fixed coefficients, so that a hand-written ``softmax(q·kᵀ)·v`` is
  decomposed as the registered attention is.

Rules registered here: ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``,
``nn.TransformerEncoder``, ``F.scaled_dot_product_attention``, ``torch.matmul`` / ``@`` / ``bmm``,
``softmax``; :func:`register_transformers_rules` adds HuggingFace's ``BertForSequenceClassification``,
``DistilBertForSequenceClassification`` and ``ViTForImageClassification`` (called by
:mod:`explainreg.hf`).
"""
from __future__ import annotations

import math
import operator
from types import SimpleNamespace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .rules import (RULES, Decomposed, UnsupportedLayerError, affine, call_rule, find_rule, register_function_rule,
                    register_rule, relevant_first, shapley, split_bias)

_RELU = (F.relu, torch.relu)


# ----------------------------------------------------------------------------------------------
# building blocks


def total_of(a: Any) -> Any:
    """The ordinary value of an argument: ``a.total`` for a :class:`Decomposed`, else ``a``."""
    return a.total if isinstance(a, Decomposed) else a


def apply(module: nn.Module, d: Decomposed) -> Decomposed:
    """``module`` applied to a decomposition by its registered rule (Linear, LayerNorm, Dropout, Tanh, …)."""
    rule = find_rule(type(module))
    if rule is None:
        raise UnsupportedLayerError(f"contextual decomposition has no rule for {type(module).__name__} inside an "
                                    "attention block; register one with explainreg.decomposition.register_rule")
    return rule(module, d)


def linear(d: Decomposed, weight: torch.Tensor, bias: torch.Tensor | None) -> Decomposed:
    """The affine rule for ``F.linear(x, weight, bias)`` (bias split by the parts' magnitudes)."""
    return affine(d, lambda t: F.linear(t, weight), F.linear(d.total, weight, bias), bias)


def residual(a: Decomposed, b: Decomposed) -> Decomposed:
    """``a + b`` part by part (a residual connection)."""
    return Decomposed(a.rel + b.rel, a.irrel + b.irrel, a.total + b.total)


def add_constant(d: Decomposed, c: torch.Tensor) -> Decomposed:
    """``d + c`` for a constant c (position / token-type embeddings, a class token): c is a bias,
    split by the parts' magnitudes (:func:`~explainreg.decomposition.rules.split_bias`)."""
    c = c.to(d.rel.dtype)
    tiled = d.tile(c) if c.dim() == d.total.dim() and c.shape[0] == d.total.shape[0] > 1 else c
    rel, irrel = split_bias(d.rel, d.irrel, tiled.expand_as(d.rel))
    return Decomposed(rel, irrel, d.total + c)


def activate(fn: Callable[[torch.Tensor], torch.Tensor], d: Decomposed) -> Decomposed:
    """An elementwise activation (a module or a function): ReLU relevant first, a smooth one (GELU, tanh,
    SiLU, …) by the two-player Shapley rule; a module with a registered rule uses that rule."""
    if isinstance(fn, nn.Module):
        rule = find_rule(type(fn))
        if rule is not None:
            return rule(fn, d)
    if fn in _RELU or isinstance(fn, nn.ReLU):
        return relevant_first(d, fn)
    return shapley(d, fn)


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """B×T×(H·D) → B×H×T×D."""
    B, T, E = t.shape
    return t.view(B, T, heads, E // heads).transpose(1, 2)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    """B×H×T×D → B×T×(H·D)."""
    B, H, T, D = t.shape
    return t.transpose(1, 2).reshape(B, T, H * D)


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True = may attend, as ``F.scaled_dot_product_attention`` reads it) as 0 / −inf,
    a float mask unchanged (it is added to the scores)."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, -math.inf)
    return mask.to(dtype)


def attention_weights(q: torch.Tensor, k: torch.Tensor, scale: float, mask: torch.Tensor | None = None,
                      dropout: float = 0.0, causal: bool = False) -> torch.Tensor:
    """``A = dropout(softmax(q·kᵀ·scale + mask))``, q B×H×T×D, k B×H×S×D, ``mask`` additive
    (broadcastable to B×H×T×S); the one dropout draw is shared by every part (the coefficients are fixed).

    Example::

        >>> q = k = torch.zeros(1, 1, 3, 2)
        >>> attention_weights(q, k, 1.0, causal=True)[0, 0]          # equal scores: uniform over the past
        tensor([[1.0000, 0.0000, 0.0000],
                [0.5000, 0.5000, 0.0000],
                [0.3333, 0.3333, 0.3333]])
    """
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if causal:
        T, S = scores.shape[-2:]
        keep = torch.ones(T, S, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, -math.inf)
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    probs = torch.softmax(scores, -1)
    return F.dropout(probs, dropout) if dropout > 0 else probs


def attend(probs: torch.Tensor, v: Decomposed) -> Decomposed:
    """``A·v`` on each part with the fixed weights A (B×H×T×S) and values v (B×H×S×D per part):
    rel_out = A·rel_v, irrel_out = A·irrel_v, total = A·v_total.

    Example::

        >>> A = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])            # B = H = 1, T = S = 2
        >>> v = torch.tensor([[[[2.0], [4.0]]]])
        >>> m = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1)            # the first position is relevant
        >>> out = attend(A, Decomposed(m * v, (1 - m) * v, v))
        >>> out.rel.flatten().tolist(), out.irrel.flatten().tolist(), out.total.flatten().tolist()
        ([1.0, 2.0], [2.0, 0.0], [3.0, 2.0])
    """
    tiled = v.tile(probs)
    return Decomposed(torch.matmul(tiled, v.rel), torch.matmul(tiled, v.irrel), torch.matmul(probs, v.total))


def self_attention(d: Decomposed, query: nn.Linear, key: nn.Linear, value: nn.Linear, heads: int, scale: float,
                   mask: torch.Tensor | None = None, dropout: float = 0.0) -> Decomposed:
    """Multi-head self-attention of a B×T×E decomposition before the output projection: the weights
    from the total's queries and keys, the values by the affine rule, then :func:`attend`.

    Example::

        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> q, k, v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        >>> x = torch.randn(2, 3, 4)
        >>> out = self_attention(Decomposed(x, torch.zeros_like(x), x), q, k, v, heads=2, scale=2 ** -0.5)
        >>> bool(out.irrel.abs().max() == 0), bool(torch.allclose(out.rel + out.irrel, out.total, atol=1e-6))
        (True, True)
    """
    q = split_heads(query(d.total), heads)
    k = split_heads(key(d.total), heads)
    probs = attention_weights(q, k, scale, mask, dropout)
    v = apply(value, d)
    out = attend(probs, v.map(lambda t: split_heads(t, heads)))
    return out.map(merge_heads)


# ----------------------------------------------------------------------------------------------
# torch.nn


def _refuse(why: str) -> None:
    raise UnsupportedLayerError(why)


def _mha_projections(m: nn.MultiheadAttention) -> tuple[torch.Tensor, ...]:
    E = m.embed_dim
    if m._qkv_same_embed_dim:
        wq, wk, wv = m.in_proj_weight.split(E)
    else:
        wq, wk, wv = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
    bq = bk = bv = None
    if m.in_proj_bias is not None:
        bq, bk, bv = m.in_proj_bias.split(E)
    return wq, wk, wv, bq, bk, bv


def _mha_mask(attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, B: int, heads: int,
              dtype: torch.dtype) -> torch.Tensor | None:
    """nn.MultiheadAttention's masks (bool True = may NOT attend; float added) as one additive B×H×T×S mask."""
    def additive(m: torch.Tensor | None) -> torch.Tensor | None:
        if m is None:
            return None
        if m.dtype == torch.bool:
            return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, -math.inf)
        return m.to(dtype)

    mask = None
    a = additive(attn_mask)
    if a is not None:
        mask = a.view(B, heads, *a.shape[-2:]) if a.dim() == 3 else a
    p = additive(key_padding_mask)
    if p is not None:
        p = p[:, None, None, :]
        mask = p if mask is None else mask + p
    return mask


@register_rule(nn.MultiheadAttention)
@call_rule
def _multihead_attention(m: nn.MultiheadAttention, query: Any, key: Any, value: Any,
                         key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                         attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                         is_causal: bool = False) -> tuple[Decomposed, torch.Tensor | None]:
    """``nn.MultiheadAttention``: A from the total queries and keys (masks as the module reads them),
    values by the affine rule, ``A·v`` per part, the output projection by the affine rule; returns
    ``(out, weights)`` as the module does (the weights of the total)."""
    if not isinstance(value, Decomposed):
        _refuse("contextual decomposition of nn.MultiheadAttention needs the decomposed input among the values "
                "(self-attention, or cross-attention whose keys and values carry the masked input)")
    if m.bias_k is not None or m.add_zero_attn:
        _refuse("contextual decomposition of nn.MultiheadAttention does not cover add_bias_kv / add_zero_attn")
    if not m.batch_first:
        if value.n_blobs != 1:
            _refuse("nn.MultiheadAttention with batch_first=False decomposes one mask at a time (N = 1)")
        query, key, value = (a.map(lambda t: t.transpose(0, 1)) if isinstance(a, Decomposed) else a.transpose(0, 1)
                             for a in (query, key, value))
    wq, wk, wv, bq, bk, bv = _mha_projections(m)
    B, H = total_of(value).shape[0], m.num_heads
    q = split_heads(F.linear(total_of(query), wq, bq), H)
    k = split_heads(F.linear(total_of(key), wk, bk), H)
    mask = _mha_mask(attn_mask, key_padding_mask, B, H, q.dtype)
    causal = is_causal and attn_mask is None
    probs = attention_weights(q, k, q.shape[-1] ** -0.5, mask, m.dropout if m.training else 0.0, causal)
    v = linear(value, wv, bv).map(lambda t: split_heads(t, H))
    out = linear(attend(probs, v).map(merge_heads), m.out_proj.weight, m.out_proj.bias)
    if not m.batch_first:
        out = out.map(lambda t: t.transpose(0, 1))
    weights = None
    if need_weights:
        weights = probs.mean(1) if average_attn_weights else probs
    return out, weights


def _encoder_layer(m: nn.TransformerEncoderLayer, x: Decomposed, src_mask: torch.Tensor | None,
                   src_key_padding_mask: torch.Tensor | None, is_causal: bool) -> Decomposed:
    def attention_block(t: Decomposed) -> Decomposed:
        out, _ = _multihead_attention(m.self_attn, t, t, t, key_padding_mask=src_key_padding_mask,
                                      need_weights=False, attn_mask=src_mask, is_causal=is_causal)
        return apply(m.dropout1, out)

    def feed_forward(t: Decomposed) -> Decomposed:
        h = apply(m.dropout, activate(m.activation, apply(m.linear1, t)))
        return apply(m.dropout2, apply(m.linear2, h))

    if m.norm_first:
        x = residual(x, attention_block(apply(m.norm1, x)))
        return residual(x, feed_forward(apply(m.norm2, x)))
    x = apply(m.norm1, residual(x, attention_block(x)))
    return apply(m.norm2, residual(x, feed_forward(x)))


@register_rule(nn.TransformerEncoderLayer)
@call_rule
def _transformer_encoder_layer(m: nn.TransformerEncoderLayer, src: Decomposed, src_mask: torch.Tensor | None = None,
                               src_key_padding_mask: torch.Tensor | None = None, is_causal: bool = False) -> Decomposed:
    """``nn.TransformerEncoderLayer`` (post- or pre-norm): the attention rule, dropouts (one mask per part
    in training mode), residual adds part by part, LayerNorm and the feed-forward's activation rules."""
    return _encoder_layer(m, src, src_mask, src_key_padding_mask, is_causal)


@register_rule(nn.TransformerEncoder)
@call_rule
def _transformer_encoder(m: nn.TransformerEncoder, src: Decomposed, mask: torch.Tensor | None = None,
                         src_key_padding_mask: torch.Tensor | None = None, is_causal: bool | None = None) -> Decomposed:
    """``nn.TransformerEncoder``: its layers in turn, then its final norm. The nested-tensor fast path
    (eval mode, ``enable_nested_tensor=True``) returns 0 at padded positions; the rule does too."""
    x = src
    for layer in m.layers:
        x = _encoder_layer(layer, x, mask, src_key_padding_mask, bool(is_causal))
    if m.norm is not None:
        x = apply(m.norm, x)
    if getattr(m, "use_nested_tensor", False) and not m.training and src_key_padding_mask is not None \
            and src_key_padding_mask.dtype == torch.bool:
        keep = (~src_key_padding_mask).to(x.rel.dtype)[..., None]
        x = Decomposed(x.rel * x.tile(keep), x.irrel * x.tile(keep), x.total * keep)
    return x


# ----------------------------------------------------------------------------------------------
# functions met in a hand-written attention


@register_function_rule(F.scaled_dot_product_attention)
def _sdpa(query: Any, key: Any, value: Any, attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
          is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False) -> Any:
    """``F.scaled_dot_product_attention``: A from the total query and key (bool ``attn_mask`` True = may
    attend, a float one added), ``dropout_p`` drawn once for all parts, ``A·v`` on each part of v."""
    q, k = total_of(query), total_of(key)
    if enable_gqa and q.shape[-3] != k.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], -3)
        value = value.map(lambda t: t.repeat_interleave(q.shape[-3] // t.shape[-3], -3)) \
            if isinstance(value, Decomposed) else value.repeat_interleave(q.shape[-3] // value.shape[-3], -3)
    probs = attention_weights(q, k, q.shape[-1] ** -0.5 if scale is None else scale,
                              additive_mask(attn_mask, q.dtype), dropout_p, is_causal)
    if not isinstance(value, Decomposed):
        return torch.matmul(probs, value)  # the values hold none of the input: a constant
    return attend(probs, value)


def _matmul(a: Any, b: Any) -> Any:
    """``a @ b``: linear when one factor is constant; two decomposed factors are expanded bilinearly,
    rel·rel to rel and every product with an irrel factor to irrel."""
    if isinstance(a, Decomposed) and isinstance(b, Decomposed):
        if a.n_blobs != b.n_blobs:
            _refuse("a product of two decompositions needs both to hold the same blobs")
        rel = torch.matmul(a.rel, b.rel)
        irrel = torch.matmul(a.rel, b.irrel) + torch.matmul(a.irrel, b.sum)
        return Decomposed(rel, irrel, torch.matmul(a.total, b.total))
    if isinstance(a, Decomposed):
        return Decomposed(torch.matmul(a.rel, b), torch.matmul(a.irrel, b), torch.matmul(a.total, b))
    tiled = b.tile(a) if a.dim() == b.total.dim() and a.shape[0] == b.total.shape[0] > 1 else a
    return Decomposed(torch.matmul(tiled, b.rel), torch.matmul(tiled, b.irrel), torch.matmul(a, b.total))


for _fn in (operator.matmul, torch.matmul, torch.bmm, "matmul", "bmm"):
    register_function_rule(_fn, _matmul)


def _softmax(d: Any, dim: int | None = None, *args: Any, **kwargs: Any) -> torch.Tensor:
    """softmax of a decomposed tensor (attention scores): of the total, returned as fixed coefficients."""
    return F.softmax(total_of(d), dim, *args, **kwargs)


for _fn in (F.softmax, torch.softmax, "softmax"):
    register_function_rule(_fn, _softmax)


# ----------------------------------------------------------------------------------------------
# HuggingFace blocks (duck-typed on the modules' attributes; registered by register_transformers_rules)


def _extended_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """HF's B×T attention_mask (1 = attend) as an additive B×1×1×T mask."""
    if attention_mask is None:
        return None
    return additive_mask(attention_mask.bool()[:, None, None, :], dtype)


def _dropout_p(module: nn.Module, p: float) -> float:
    return p if module.training else 0.0


def _bert_layer(layer: nn.Module, x: Decomposed, mask: torch.Tensor | None) -> Decomposed:
    sa = layer.attention.self
    context = self_attention(x, sa.query, sa.key, sa.value, sa.num_attention_heads, sa.scaling, mask,
                             _dropout_p(sa, sa.dropout.p))
    out = layer.attention.output
    h = apply(out.LayerNorm, residual(apply(out.dropout, apply(out.dense, context)), x))
    inner = activate(layer.intermediate.intermediate_act_fn, apply(layer.intermediate.dense, h))
    o = layer.output
    return apply(o.LayerNorm, residual(apply(o.dropout, apply(o.dense, inner)), h))


def _position_ids(embeddings: nn.Module, T: int) -> torch.Tensor:
    return embeddings.position_ids[:, :T]


def bert_classifier(model: nn.Module, inputs_embeds: Decomposed, attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None, **unused: Any) -> SimpleNamespace:
    """``BertForSequenceClassification`` from decomposed word embeddings: position and token-type
    embeddings added as biases, the embedding LayerNorm, every layer (:func:`self_attention`, residual
    adds, LayerNorm, GELU), the pooler (the [CLS] state, linear, tanh) and the classifier."""
    _refuse_unused("BertForSequenceClassification", unused)
    bert, emb = model.bert, model.bert.embeddings
    B, T = inputs_embeds.total.shape[:2]
    if token_type_ids is None:
        token_type_ids = torch.zeros(B, T, dtype=torch.long, device=inputs_embeds.total.device)
    constant = emb.token_type_embeddings(token_type_ids) + emb.position_embeddings(_position_ids(emb, T))
    x = apply(emb.dropout, apply(emb.LayerNorm, add_constant(inputs_embeds, constant)))
    mask = _extended_mask(attention_mask, x.total.dtype)
    for layer in bert.encoder.layer:
        x = _bert_layer(layer, x, mask)
    first = x.map(lambda t: t[:, 0])
    pooled = activate(bert.pooler.activation, apply(bert.pooler.dense, first))
    return SimpleNamespace(logits=apply(model.classifier, apply(model.dropout, pooled)))


def distilbert_classifier(model: nn.Module, inputs_embeds: Decomposed, attention_mask: torch.Tensor | None = None,
                          **unused: Any) -> SimpleNamespace:
    """``DistilBertForSequenceClassification``: position embeddings as biases, LayerNorm, the blocks
    (attention, residual, LayerNorm, FFN with GELU), then [CLS] → pre_classifier → ReLU → classifier."""
    _refuse_unused("DistilBertForSequenceClassification", unused)
    emb = model.distilbert.embeddings
    T = inputs_embeds.total.shape[1]
    x = add_constant(inputs_embeds, emb.position_embeddings(_position_ids(emb, T)))
    x = apply(emb.dropout, apply(emb.LayerNorm, x))
    mask = _extended_mask(attention_mask, x.total.dtype)
    for block in model.distilbert.transformer.layer:
        sa = block.attention
        context = self_attention(x, sa.q_lin, sa.k_lin, sa.v_lin, sa.n_heads, sa.scaling, mask,
                                 _dropout_p(sa, sa.dropout.p))
        x = apply(block.sa_layer_norm, residual(apply(sa.out_lin, context), x))
        ffn = block.ffn
        h = apply(ffn.dropout, apply(ffn.lin2, activate(ffn.activation, apply(ffn.lin1, x))))
        x = apply(block.output_layer_norm, residual(h, x))
    first = x.map(lambda t: t[:, 0])
    pooled = relevant_first(apply(model.pre_classifier, first), F.relu)
    return SimpleNamespace(logits=apply(model.classifier, apply(model.dropout, pooled)))


def vit_classifier(model: nn.Module, pixel_values: Decomposed, **unused: Any) -> SimpleNamespace:
    """``ViTForImageClassification`` from decomposed pixels: the patch projection (conv rule), the
    class token and position embeddings as biases, the pre-norm layers (LayerNorm, attention, residual,
    LayerNorm, MLP with GELU, residual), the final LayerNorm and the classifier on the class token."""
    _refuse_unused("ViTForImageClassification", unused)
    vit, emb = model.vit, model.vit.embeddings
    if tuple(pixel_values.total.shape[-2:]) != tuple(emb.patch_embeddings.image_size):
        raise ValueError(f"ViT: images of size {tuple(pixel_values.total.shape[-2:])}, the model takes "
                         f"{tuple(emb.patch_embeddings.image_size)}")
    patches = apply(emb.patch_embeddings.projection, pixel_values).map(lambda t: t.flatten(2).transpose(1, 2))
    B, E = patches.total.shape[0], patches.total.shape[2]
    zero = (lambda t: torch.cat([t.new_zeros(t.shape[0], 1, E), t], 1))  # the class token's row: no input
    x = patches.map(zero)
    cls = torch.cat([emb.cls_token, torch.zeros_like(emb.position_embeddings[:, 1:])], 1)
    x = apply(emb.dropout, add_constant(x, (cls + emb.position_embeddings).expand(B, -1, -1)))
    for layer in vit.layers if hasattr(vit, "layers") else vit.encoder.layer:
        sa = layer.attention
        heads = model.config.num_attention_heads
        context = self_attention(apply(layer.layernorm_before, x), sa.q_proj, sa.k_proj, sa.v_proj, heads, sa.scaling,
                                 None, _dropout_p(sa, sa.attention_dropout))
        x = residual(apply(layer.dropout, apply(sa.o_proj, context)), x)
        mlp = layer.mlp
        h = apply(mlp.fc2, activate(mlp.activation_fn, apply(mlp.fc1, apply(layer.layernorm_after, x))))
        x = residual(apply(layer.dropout, h), x)
    x = apply(vit.layernorm, x)
    return SimpleNamespace(logits=apply(model.classifier, x.map(lambda t: t[:, 0])))


def _refuse_unused(name: str, unused: dict[str, Any]) -> None:
    given = sorted(k for k, v in unused.items() if v is not None and k not in ("return_dict",))
    if given:
        _refuse(f"contextual decomposition of {name} takes inputs_embeds / pixel_values and attention_mask "
                f"(token_type_ids for BERT); it does not cover {', '.join(given)}")


def register_transformers_rules() -> None:
    """Register the HuggingFace classifiers' rules in :data:`~explainreg.decomposition.RULES` (needs
    ``transformers``; :mod:`explainreg.hf` calls it; calling it again registers the same rules again)."""
    from transformers import (BertForSequenceClassification, DistilBertForSequenceClassification,
                              ViTForImageClassification)

    for cls, fn in ((BertForSequenceClassification, bert_classifier),
                    (DistilBertForSequenceClassification, distilbert_classifier),
                    (ViTForImageClassification, vit_classifier)):
        RULES.register(cls, call_rule(_with_kwargs(fn)))


def _with_kwargs(fn: Callable[..., Any]) -> Callable[..., Any]:
    def rule(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        if args:
            _refuse(f"contextual decomposition of {type(module).__name__} takes its inputs by keyword "
                    "(inputs_embeds= / pixel_values=, attention_mask=), as explainreg.hf.HFClassifier calls it")
        first = kwargs.pop("inputs_embeds", None)
        if first is None:
            first = kwargs.pop("pixel_values", None)
        if not isinstance(first, Decomposed):
            _refuse(f"contextual decomposition of {type(module).__name__} needs the decomposed inputs_embeds or "
                    "pixel_values")
        return fn(module, first, **kwargs)

    rule.__doc__ = fn.__doc__
    return rule


__all__ = ["activate", "add_constant", "additive_mask", "apply", "attend", "attention_weights", "bert_classifier",
           "distilbert_classifier", "linear", "merge_heads", "register_transformers_rules", "residual",
           "self_attention", "split_heads", "total_of", "vit_classifier"]
