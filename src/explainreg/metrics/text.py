"""Token attributions and ERASER faithfulness (DeYoung et al. 2020).

:func:`token_attributions` scores each real token of a batch of token ids B×T from the gradient of
the true-class logit w.r.t. the embedding output e (B×T×E), reduced over E (A.7):

* ``"gradient"``: s = Σ_e g·e (gradient × input) of p_y's logit;
* ``"integrated_gradients"``: s = Σ_e (e − 0) · mean_α ∂z_y/∂e (α·e), ``steps`` points, zero baseline;
* ``"smoothgrad"``: s = Σ_e e · mean_n ∂z_y/∂e (e + σ·ε_n), σ = ``noise`` · (max e − min e) per sentence;
* ``"random"``: U(0, 1) scores from ``generator`` (the reference ranking).

:func:`eraser` — per sentence, the top-k% tokens by |s|, k ∈ {1, 5, 10, 20, 50} (k_b = max(1, ⌊k·L_b/100⌋)):
comprehensiveness = p_y(x) − p_y(x without the top tokens), sufficiency = p_y(x) − p_y(the top tokens
only), each averaged over k (AOPC) and over sentences. Removing a token deletes it (the sentence gets
shorter, the rest keeps its order); comprehensiveness never deletes a sentence's last token.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._random import stable_ranks
from .._validation import check_choice
from ..inputs import ExplainedInput
from ..modes import eval_mode

METHODS = ("gradient", "integrated_gradients", "smoothgrad", "random")
PERCENTS = (1, 5, 10, 20, 50)


def _grad_at(inputs: ExplainedInput, model: nn.Module, e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ Σ z_{y} / ∂e at embeddings e (R·B rows, sample-major), no graph kept."""
    e = e.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = inputs.run(model, e)
        (g,) = torch.autograd.grad(logits.gather(1, y.repeat_interleave(e.shape[0] // len(y))[:, None]).sum(), e)
    return g


def token_attributions(model: nn.Module, ids: torch.Tensor, y: torch.Tensor, method: str = "gradient", *,
                       steps: int = 16, samples: int = 16, noise: float = 0.15, lengths: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, layer=None) -> torch.Tensor:
    """Per-token attribution B×T of the true class (0 at padding); see the module docstring.

    Args:
        model: maps ids to logits through an ``nn.Embedding`` (or ``layer``). ids: B×T token ids.
        y: B labels. method: one of :data:`METHODS`. steps: integrated-gradients points.
        samples, noise: SmoothGrad's draws and relative σ. lengths: B sentence lengths.
        generator: for ``"smoothgrad"`` and ``"random"``.

    Shape:
        output B×T.

    Example:
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Embedding(9, 4, padding_idx=0), nn.Flatten(), nn.Linear(16, 2)).eval()
        >>> ids, y = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([0, 1])
        >>> s = token_attributions(net, ids, y)
        >>> s.shape, s[1, 2:].tolist()                                 # padding gets 0
        (torch.Size([2, 4]), [0.0, 0.0])
    """
    check_choice("method", method, METHODS)
    inputs = ExplainedInput.build(model, ids, {"lengths": lengths}, layer=layer)
    inputs.require(("tokens",), "token_attributions")
    real = inputs.padding
    if method == "random":
        gen = generator or torch.Generator().manual_seed(0)
        return torch.rand(ids.shape, generator=gen).to(ids.device) * real
    with torch.no_grad():
        e, _ = inputs.forward(model, requires_grad=False)
    e = e.detach()
    B = len(ids)
    if method == "gradient":
        g = _grad_at(inputs, model, e, y)
    elif method == "integrated_gradients":
        alphas = (torch.arange(steps, dtype=e.dtype, device=e.device) + 0.5) / steps
        path = (alphas.view(1, -1, 1, 1) * e[:, None]).reshape(B * steps, *e.shape[1:])
        g = _grad_at(inputs, model, path, y).view(B, steps, *e.shape[1:]).mean(1)
    else:
        gen = generator or torch.Generator().manual_seed(0)
        span = (e.amax((1, 2)) - e.amin((1, 2))).view(B, 1, 1, 1)
        eps = torch.randn((B, samples, *e.shape[1:]), generator=gen).to(e.device, e.dtype)
        noisy = (e[:, None] + noise * span * eps).reshape(B * samples, *e.shape[1:])
        g = _grad_at(inputs, model, noisy, y).view(B, samples, *e.shape[1:]).mean(1)
    return (g * e).sum(2) * real


def _compact(ids: torch.Tensor, keep: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """Delete the tokens where ``keep`` is False: the kept ones move left in their order, padding after."""
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    out = ids.gather(1, order)
    return out.masked_fill(torch.arange(ids.shape[1], device=ids.device)[None] >= keep.sum(1, keepdim=True), padding_idx)


def _p_true(model: nn.Module, ids: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(ids), 1).gather(1, y[:, None]).squeeze(1)


def _real_tokens(ids: torch.Tensor, scores: torch.Tensor, padding_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(real B×T, lengths B)`` of right-padded ids, with the checks every token metric needs."""
    if scores.shape != ids.shape:
        raise ValueError(f"scores must have the ids' shape {tuple(ids.shape)}, got {tuple(scores.shape)}")
    real = ids != padding_idx
    lengths = real.sum(1)
    if bool((lengths == 0).any()):
        raise ValueError("ids hold empty sentences (all padding); drop them")
    return real, lengths


def eraser(model: nn.Module, ids: torch.Tensor, y: torch.Tensor, scores: torch.Tensor, *,
           percents: Sequence[float] = PERCENTS, padding_idx: int = 0) -> dict[str, torch.Tensor]:
    """ERASER comprehensiveness and sufficiency (AOPC over ``percents``) per sentence, B each.

    ``ids`` right-padded with ``padding_idx``; ``scores`` B×T, ranked by |score| among real tokens
    (ties in position order).

    Shape:
        ids, scores B×T; each output B.

    Returns:
        ``{"comprehensiveness": B, "sufficiency": B}`` (probability drops; higher comprehensiveness
        and lower sufficiency are better).

    Example:
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Embedding(9, 4, padding_idx=0), nn.Flatten(), nn.Linear(16, 2)).eval()
        >>> ids, y = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([0, 1])
        >>> out = eraser(net, ids, y, token_attributions(net, ids, y))
        >>> sorted(out), out["comprehensiveness"].shape
        (['comprehensiveness', 'sufficiency'], torch.Size([2]))
    """
    real, lengths = _real_tokens(ids, scores, padding_idx)
    with eval_mode(model):
        base = _p_true(model, ids, y)
        rank = stable_ranks(scores.detach().abs().masked_fill(~real, -1.0))
        comp, suff = [], []
        for pct in percents:
            k = torch.clamp(torch.floor(lengths.to(torch.float64) * pct / 100).long(), min=1)
            top = (rank < k[:, None]) & real
            drop = top & (rank < (lengths - 1).clamp(min=0)[:, None])  # keep at least one token
            comp.append(base - _p_true(model, _compact(ids, real & ~drop, padding_idx), y))
            suff.append(base - _p_true(model, _compact(ids, top, padding_idx), y))
    return {"comprehensiveness": torch.stack(comp).mean(0), "sufficiency": torch.stack(suff).mean(0)}


def token_deletion_curve(model: nn.Module, ids: torch.Tensor, y: torch.Tensor, scores: torch.Tensor, *,
                         fractions: Sequence[float] = tuple(i / 10 for i in range(10)), order: str = "morf",
                         padding_idx: int = 0) -> dict[str, torch.Tensor]:
    """Delete each sentence's ⌊f·L_b⌋ highest- (``"morf"``) or lowest-ranked (``"lerf"``) tokens by |score|
    for each fraction f (at least one token always stays), the token analogue of MoRF / LeRF and of
    SGT's masked accuracy (A.5). Returns ``accuracy`` (F: accuracy w.r.t. ``y``), ``ratio`` (F: mean
    p_c*(deleted) / p_c*(x), c* the original prediction) and ``auc`` (trapezoid of 1 − ratio over f;
    higher is better for MoRF).

    Shape:
        ids, scores B×T; ``accuracy`` and ``ratio`` F (one per fraction); ``auc`` 0-d.

    Example:
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Embedding(9, 4, padding_idx=0), nn.Flatten(), nn.Linear(16, 2)).eval()
        >>> ids, y = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([0, 1])
        >>> out = token_deletion_curve(net, ids, y, token_attributions(net, ids, y), fractions=(0.0, 0.5))
        >>> out["ratio"][0].item(), out["accuracy"].shape                # nothing deleted at f = 0
        (1.0, torch.Size([2]))
    """
    check_choice("order", order, ("morf", "lerf"))
    real, lengths = _real_tokens(ids, scores, padding_idx)
    with eval_mode(model):
        with torch.no_grad():
            p = torch.softmax(model(ids), 1)
        c = p.argmax(1)
        p0 = p.gather(1, c[:, None]).squeeze(1)
        s = scores.detach().abs()
        rank = stable_ranks(s.masked_fill(~real, -1.0) if order == "morf" else (-s).masked_fill(~real, -float("inf")))
        accuracy, ratio = [], []
        for f in fractions:
            k = torch.minimum(torch.floor(lengths.to(torch.float64) * f).long(), lengths - 1)
            kept = _compact(ids, real & ~(rank < k[:, None]), padding_idx)
            with torch.no_grad():
                q = torch.softmax(model(kept), 1)
            accuracy.append((q.argmax(1) == y).double().mean())
            ratio.append((q.gather(1, c[:, None]).squeeze(1) / p0).double().mean())
    ratio_t = torch.stack(ratio)
    x = torch.tensor(list(fractions), dtype=torch.float64)
    return {"accuracy": torch.stack(accuracy), "ratio": ratio_t, "auc": torch.trapezoid(1 - ratio_t, x)}


__all__ = ["METHODS", "PERCENTS", "eraser", "token_attributions", "token_deletion_curve"]
