"""Differentiable input-gradient saliency (methods.md A.1).

``g = ∂T/∂x`` with ``T = Σ_b t_b`` in one backward pass for the whole batch, where ``t_b`` is
``"logit"``: z_{b,y_b} (seed 1, default); ``"log_prob"``: log p_{b,y_b} (SGT); ``"nll"``: −log p_{b,y_b}
(CDEP's RRR variant); ``"sum_log_prob"``: Σ_k log p_{b,k} (Ross et al. 2017).
Exact per-sample gradients when samples do not interact (no BatchNorm in training mode).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_batch, check_choice, check_labels, check_logits
from .inputs import ExplainedInput

TARGETS = ("logit", "log_prob", "nll", "sum_log_prob")


def saliency_target(logits: torch.Tensor, y: torch.Tensor, target: str = "logit") -> torch.Tensor:
    """The per-sample scalar t_b whose input gradient is the saliency (shape B)."""
    check_choice("target", target, TARGETS)
    if target == "logit":
        return logits.gather(1, y[:, None]).squeeze(1)
    log_p = F.log_softmax(logits, dim=1)
    if target == "sum_log_prob":
        return log_p.sum(1)
    t = log_p.gather(1, y[:, None]).squeeze(1)
    return -t if target == "nll" else t


def gradient_of(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, target: str = "logit",
                create_graph: bool = True) -> torch.Tensor:
    """``∂ Σ_b t_b / ∂x`` for logits already computed from ``x`` (which must require grad)."""
    t = saliency_target(logits, y, target).sum()
    (g,) = torch.autograd.grad(t, x, create_graph=create_graph, retain_graph=True)
    return g


def forward_with_saliency(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: str = "logit",
                          create_graph: bool = True, *, layer: str | nn.Module | None = None,
                          lengths: torch.Tensor | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the model once; return ``(explained, logits, g)`` with ``g = ∂ Σ_b t_b / ∂ explained``.

    Dense inputs: explained = a grad-enabled copy of ``x``. Token ids (B×T integers, methods.md A.7):
    explained = the output e (B×T×E) of the model's embedding (``layer``, found automatically),
    g is zero at padding positions (``lengths`` or the embedding's ``padding_idx``).
    """
    check_batch(x, y, tokens=True)
    check_choice("target", target, TARGETS)
    inputs = ExplainedInput.build(model, x, {"lengths": lengths}, layer=layer)
    explained, logits = inputs.forward(model, requires_grad=True)  # x itself when it already requires grad
    with torch.enable_grad():
        check_logits(logits, x.shape[0])
        check_labels(y, logits.shape[1])
        g = gradient_of(logits, explained, y, target, create_graph)
    return explained, logits, inputs.strip_padding(g)


def saliency(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: str = "logit",
             create_graph: bool = True, *, layer: str | nn.Module | None = None,
             lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Signed input gradient of ``target`` for each sample's label ``y``, shape of ``x``; for token
    ids the gradient w.r.t. the token embeddings, B×T×E, 0 at padding (methods.md A.7).

    With ``create_graph=True`` (default) the result is differentiable w.r.t. the model's
    parameters, so it can be penalised in a training loss (double back-propagation).
    """
    return forward_with_saliency(model, x, y, target, create_graph, layer=layer, lengths=lengths)[2]


def minmax_normalize(g: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-sample min–max normalisation ĝ_b = (g_b − min g_b) / (max g_b − min g_b + eps) over C×H×W."""
    flat = g.flatten(1)
    low = flat.min(1, keepdim=True).values
    high = flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low + eps)).view_as(g)
