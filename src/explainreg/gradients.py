"""Differentiable input gradients: the signed gradient the penalties constrain.

``g = ∂T/∂x`` with ``T = Σ_b t_b`` in one backward pass for the whole batch, where the scalar
kind ``score`` chooses ``t_b``: ``"logit"``: z_{b,y_b} (the default, as the constrained-losses
seed); ``"log_prob"``: log p_{b,y_b} (Saliency Guided Training, Ismail et al. 2021); ``"nll"``:
−log p_{b,y_b} (CDEP's RRR variant, Rieger et al. 2020); ``"sum_log_prob"``: Σ_k log p_{b,k}
(Right for the Right Reasons, Ross et al. 2017). Exact per-sample gradients when samples do not
interact (no BatchNorm in training mode). ``y`` is the class (the target) whose scalar is
differentiated; ``score`` says which scalar of that class.

:func:`input_gradient` (``explainreg.input_gradient``) gives the signed g; its magnitude |g| (with
``score="logit"``) is the saliency map of Simonyan et al. (2014), attribution method ``"saliency"`` of
:func:`explainreg.attribution.attribute`, whose method ``"gradient"`` is the signed g, detached.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._validation import check_batch, check_labels, check_logits, check_model_input
from .inputs import ExplainedInput

#: the scalar kinds t_b whose input gradient g is taken
SCORES = ("logit", "log_prob", "nll", "sum_log_prob")
#: the floating-point types autocast computes in, whose penalties' reductions run in float32
LOW_PRECISION = (torch.float16, torch.bfloat16)


def float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when autocast (or the model) gave it in float16 / bfloat16; otherwise ``t`` itself.

    Example:
        >>> float32(torch.ones(2, dtype=torch.bfloat16)).dtype, float32(torch.ones(2, dtype=torch.float64)).dtype
        (torch.float32, torch.float64)
    """
    return t.float() if t.dtype in LOW_PRECISION else t


@contextmanager
def full_precision(device: torch.device | str) -> Iterator[None]:
    """Autocast switched off on ``device``'s type inside: the penalties' softmaxes and reductions run in
    float32 under ``torch.autocast`` (bfloat16 log-probabilities made SGT's KL negative at initialisation).

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16), full_precision("cpu"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind):
        yield
        return
    with torch.autocast(kind, enabled=False):
        yield


@contextmanager
def twice_differentiable(enabled: bool = True) -> Iterator[None]:
    """Forward passes whose graph is differentiated twice (an input gradient kept with ``create_graph=True``
    and penalised): ``scaled_dot_product_attention`` runs on its math kernel, the one whose backward
    has a derivative (the fused CPU flash kernel has none, so a user's ``nn.TransformerEncoder``
    failed in every double-backprop penalty). ``enabled=False``: no change.

    Example:
        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        >>> x = torch.randn(2, 3, 8, requires_grad=True)
        >>> with twice_differentiable():
        ...     (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
        >>> g.pow(2).sum().backward()              # the second derivative exists
    """
    if not enabled:
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


def refuse_function_transforms(who: str) -> None:
    """A clear error when called inside a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``, …):
    input_gradient and the penalties take input gradients with ``torch.autograd.grad`` on a grad-enabled
    input (double back-propagation), which those transforms do not support.

    Example:
        >>> from torch.func import grad
        >>> grad(lambda x: refuse_function_transforms("GradientL1") or x.sum())(torch.ones(2))
        Traceback (most recent call last):
        ...
        RuntimeError: GradientL1 cannot run inside torch.func.grad / vmap / jacrev ... in a loop.
    """
    level = getattr(torch._C._functorch, "maybe_current_level", lambda: None)()
    if level is not None:
        raise RuntimeError(
            f"{who} cannot run inside torch.func.grad / vmap / jacrev (or another torch.func transform): it takes "
            "input gradients with torch.autograd.grad on a grad-enabled input (double back-propagation), which "
            "those transforms do not support. Use torch.autograd instead: r = penalty(model, x, y); r.backward() "
            "(or torch.autograd.grad(r, list(model.parameters()))); for per-sample values call the penalty on "
            "one-sample batches x[i:i+1], y[i:i+1] in a loop.")


def check_score(score: Any, name: str = "score") -> str:
    """``score`` must be one of :data:`SCORES`; the message names the keyword ``name`` the caller used."""
    if not isinstance(score, str) or score not in SCORES:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, SCORES))}; got {score!r} (the scalar whose "
                         "input gradient is taken)")
    return score


def resolve_score(score: str | None, default: str = "logit") -> str:
    """The checked scalar kind ``score`` (one of :data:`SCORES`); ``score=None`` means ``default``.

    Example:
        >>> resolve_score(None), resolve_score("nll")
        ('logit', 'nll')
    """
    return check_score(default if score is None else score)


def gradient_score(logits: torch.Tensor, y: torch.Tensor, score: str = "logit") -> torch.Tensor:
    """The per-sample scalar t_b whose input gradient is g.

    Args:
        logits: B×K model outputs. y: B class indices. score: the scalar kind (:data:`SCORES`).

    Shape:
        logits B×K, y B; output B.

    Returns:
        t_b for each sample.

    Example:
        >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> gradient_score(z, torch.tensor([0, 1]))
        tensor([2., 1.])
    """
    check_score(score)
    logits = float32(logits)
    if score == "logit":
        return logits.gather(1, y[:, None]).squeeze(1)
    with full_precision(logits.device):
        log_p = F.log_softmax(logits, dim=1)
    if score == "sum_log_prob":
        return log_p.sum(1)
    t = log_p.gather(1, y[:, None]).squeeze(1)
    return -t if score == "nll" else t


def gradient_of(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, score: str = "logit",
                create_graph: bool = True) -> torch.Tensor:
    """``∂ Σ_b t_b / ∂x`` for logits already computed from ``x`` (which must require grad).

    Args:
        logits: B×K computed from x. x: the explained tensor. y: B labels. score: the scalar kind.
        create_graph: keep the graph (double back-propagation).

    Shape:
        output: the shape of x.

    Returns:
        The signed input gradient g.

    Example:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> gradient_of(x * torch.tensor([3.0, 4.0]), x, torch.tensor([1]))
        tensor([[0., 4.]])
    """
    t = gradient_score(logits, y, score).sum()
    (g,) = torch.autograd.grad(t, x, create_graph=create_graph, retain_graph=True)
    return g


def forward_with_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, score: str | None = None,
                          create_graph: bool = True, *, layer: str | nn.Module | None = None,
                          lengths: torch.Tensor | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the model once; return ``(explained, logits, g)`` with ``g = ∂ Σ_b t_b / ∂ explained``.

    Dense inputs: explained = a grad-enabled copy of ``x``. Token ids (B×T integers): explained =
    the output e (B×T×E) of the model's embedding (``layer``, found automatically), g is zero at
    padding positions (``lengths`` or the embedding's ``padding_idx``). Arguments as :func:`input_gradient`.

    Shape:
        explained and g: x's shape (B×T×E for token ids); logits B×K.

    Returns:
        ``(explained, logits, g)``.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> e, z, g = forward_with_gradient(net, torch.ones(4, 3), torch.zeros(4, dtype=torch.long))
        >>> bool(torch.allclose(g, net.weight[0].expand(4, 3)))
        True
    """
    score = resolve_score(score)
    refuse_function_transforms("input_gradient")
    check_batch(x, y, tokens=True)
    check_model_input(model, x)
    inputs = ExplainedInput.build(model, x, {"lengths": lengths}, layer=layer)
    with twice_differentiable(create_graph):
        explained, logits = inputs.forward(model, requires_grad=True)  # x itself when it already requires grad
    with torch.enable_grad():
        check_logits(logits, x.shape[0])
        check_labels(y, logits.shape[1])
        g = gradient_of(logits, explained, y, score, create_graph)
    return explained, logits, inputs.strip_padding(float32(g))


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, score: str | None = None,
             create_graph: bool = True, *, layer: str | nn.Module | None = None,
             lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Signed input gradient g = ∂ Σ_b t_b / ∂x of the scalar kind ``score`` for each sample's label.

    With ``create_graph=True`` (default) the result is differentiable w.r.t. the model's
    parameters, so it can be penalised in a training loss (double back-propagation, as in Ross et
    al. 2017). One backward pass serves the whole batch.

    Args:
        model: maps x to logits B×K.
        x: B×C×H×W images, B×C×T series, B×F features, or B×T integer token ids.
        y: B class labels.
        score: ``"logit"`` (default), ``"log_prob"``, ``"nll"`` or ``"sum_log_prob"`` (see the module).
        create_graph: keep the graph of the gradient (needed to train on it).
        layer: for token ids, the embedding module (or its name) whose output is explained.
        lengths: for token ids, the B sentence lengths (padding gets g = 0).

    Shape:
        output: the shape of x; for token ids B×T×E (the embedding output's shape).

    Returns:
        The signed input gradient g.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.randn(2, 1, 2, 2), torch.tensor([0, 2])
        >>> g = input_gradient(net, x, y)
        >>> g.shape, bool(torch.allclose(g[1].flatten(), net[1].weight[2]))
        (torch.Size([2, 1, 2, 2]), True)
    """
    score = resolve_score(score)
    return forward_with_gradient(model, x, y, score, create_graph, layer=layer, lengths=lengths)[2]


def minmax_normalize(g: torch.Tensor, eps: float = 1e-12, real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample min–max normalisation ĝ_b = (g_b − min g_b) / (max g_b − min g_b + eps) over C×H×W.

    ``real`` (0/1, broadcastable against g: the real positions of a padded batch) takes the minimum
    and maximum over the real entries only and gives 0 at padding.

    Shape:
        g B×…; output the same.

    Example:
        >>> minmax_normalize(torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([[0.0000, 1.0000, 0.5000]])
        >>> minmax_normalize(torch.tensor([[1.0, 3.0, 0.0]]), real=torch.tensor([[1, 1, 0]]))
        tensor([[0., 1., 0.]])
    """
    flat = g.flatten(1)
    if real is None:
        low = flat.min(1, keepdim=True).values
        high = flat.max(1, keepdim=True).values
        return ((flat - low) / (high - low + eps)).view_as(g)
    keep = real.to(g.device).expand_as(g).flatten(1) > 0
    low = flat.masked_fill(~keep, float("inf")).min(1, keepdim=True).values
    high = flat.masked_fill(~keep, float("-inf")).max(1, keepdim=True).values
    return torch.where(keep, (flat - low) / (high - low + eps), torch.zeros_like(flat)).view_as(g)


__all__ = ["LOW_PRECISION", "SCORES", "check_score", "float32", "forward_with_gradient", "full_precision",
           "gradient_of", "gradient_score", "input_gradient", "minmax_normalize", "refuse_function_transforms",
           "resolve_score", "twice_differentiable"]
