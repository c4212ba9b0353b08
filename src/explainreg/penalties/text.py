"""Penalties on token batches: the CDEP text penalty (Rieger et al. 2020) and Saliency Guided
Training's token masking (Ismail et al. 2021).

* CDEP text (the seed's ``cd_penalty_for_one_decoy_all``): over the sentences S that contain a
  masked token, with (rel, irrel) the contextual decomposition of the true-class logit for the
  masked tokens,

      R = −(1/|S|) Σ_{b∈S} log softmax([rel_{b,y_b}, irrel_{b,y_b}])[irrel]
        =  (1/|S|) Σ_{b∈S} softplus(rel_{b,y_b} − irrel_{b,y_b})

  (maximise the irrelevant share of the true-class logit); 0 (connected to the weights) when no
  sentence of the batch has a masked token. Options give the seed's own settings
  (:data:`SEED_TEXT`): the word vectors read detached (``detach_embeddings``, the seed's ``.data``),
  the relevant window widened to the ``window_after`` words after each masked token (the seed:
  ``stop = start + 1``), the steps' bias × bias products counted as relevant only at the masked
  tokens (``bias_at="mask"``) and the logits' bias left out of rel and irrel (``output_bias=False``).
* Saliency Guided Training on tokens: the ⌊fraction · L_b⌋ real tokens of lowest saliency
  (per-token score s_bt, ranked by |s| or s) have their embeddings replaced by U(min e_b, max e_b)
  draws (or a constant); padding is never masked and never counts in L_b.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._random import stable_ranks
from .._validation import check_choice
from ..decomposition.rules import dropout_as_identity
from ..modes import deterministic_dropout, frozen_norm_statistics
from ..decomposition import decompose_tokens


def cdep_text_penalty(rel: torch.Tensor, irrel: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """R = −mean_b log softmax([rel_{b,y_b}, irrel_{b,y_b}])[1] = mean_b softplus(rel − irrel) at
    the true class, for B×K decompositions of the sentences that contain a masked token.

    Shape:
        rel, irrel B×K; y B; output 0-d.

    Example:
        >>> rel, irrel = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 2.0]])
        >>> bool(torch.isclose(cdep_text_penalty(rel, irrel, torch.tensor([1])), torch.log(torch.tensor(2.0))))
        True
    """
    if rel.shape != irrel.shape or rel.dim() != 2 or y.shape != rel.shape[:1]:
        raise ValueError(f"rel and irrel must be B×K with y of length B, got {tuple(rel.shape)}, "
                         f"{tuple(irrel.shape)} and {tuple(y.shape)}")
    pair = torch.stack([rel.gather(1, y[:, None]).squeeze(1), irrel.gather(1, y[:, None]).squeeze(1)], 1)
    return -F.log_softmax(pair, 1)[:, 1].mean()


#: CDEP's text code as settings of :func:`cdep_text` / :class:`~explainreg.penalties.CDEP`
SEED_TEXT = {"detach_embeddings": True, "window_after": 1, "bias_at": "mask", "output_bias": False}
#: where the LSTM / GRU steps' bias × bias products count as relevant
BIAS_AT = ("window", "mask")


def widen_window(token_mask: torch.Tensor, after: int) -> torch.Tensor:
    """The token mask with each marked token's next ``after`` positions marked too (elementwise max).

    Args:
        token_mask: B×T in [0, 1]. after: how many following positions join (0: unchanged).

    Returns:
        B×T, the widened mask.

    Example:
        >>> widen_window(torch.tensor([[0.0, 1.0, 0.0, 0.0]]), 1)
        tensor([[0., 1., 1., 0.]])
    """
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"window_after must be a whole number ≥ 0 (words after each masked token), got {after!r}")
    out = token_mask.clone()
    for j in range(1, min(after, token_mask.shape[1] - 1) + 1):
        out[:, j:] = torch.maximum(out[:, j:], token_mask[:, :-j])
    return out


def cdep_text(model: nn.Module, ids: torch.Tensor, y: torch.Tensor, token_mask: torch.Tensor, *,
              layer: Any = None, lengths: torch.Tensor | None = None, detach_embeddings: bool = False,
              window_after: int = 0, bias_at: str = "window", output_bias: bool = True) -> torch.Tensor:
    """The CDEP text penalty (see the module docstring): one batched CD pass over the sentences of
    ``ids`` (B×T) whose ``token_mask`` (B×T, padding already 0) has a non-zero entry; dropout acts as
    the identity during the pass and BatchNorm statistics are not updated.

    Args:
        model: maps ids to logits through an ``nn.Embedding`` (or ``layer``). ids: B×T token ids.
        y: B labels. token_mask: B×T in [0, 1]. lengths: B sentence lengths (padding).
        detach_embeddings: decompose the word vectors detached (no gradient to the embedding
            weights from the penalty; the cross-entropy still trains them).
        window_after: the words after each masked token that join the relevant window.
        bias_at: ``"window"`` (the steps' bias × bias to rel at every step of the window) or
            ``"mask"`` (only at the masked tokens themselves).
        output_bias: split the logits' bias between rel and irrel (False: leave it out).

    Returns:
        The 0-d penalty (0, still connected to the weights, when no sentence has a masked token).

    Example:
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Embedding(9, 4), nn.Flatten(), nn.Linear(12, 2))
        >>> ids, y = torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([0, 1])
        >>> mask = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])     # only sentence 0 has one
        >>> r = cdep_text(net, ids, y, mask)
        >>> from explainreg.decomposition import decompose
        >>> rel, irrel = decompose(net, ids[:1], mask[:1])
        >>> bool(torch.isclose(r, cdep_text_penalty(rel, irrel, y[:1])))
        True
    """
    check_choice("bias_at", bias_at, BIAS_AT)
    window = widen_window(token_mask, window_after)
    has = (token_mask != 0).any(1)
    if not bool(has.any()):
        params = [p for p in model.parameters() if p.requires_grad]
        return sum((p.sum() * 0 for p in params), token_mask.new_zeros((), dtype=torch.float32))
    rows = has.nonzero().flatten()
    # as the image CDEP: the deterministic network (dropout as identity), BatchNorm statistics untouched
    with torch.enable_grad(), deterministic_dropout(model), dropout_as_identity(), frozen_norm_statistics(model):
        rel, irrel = decompose_tokens(model, ids[rows], window[rows], layer=layer,
                                      lengths=None if lengths is None else lengths[rows],
                                      bias_mask=token_mask[rows] if bias_at == "mask" else None,
                                      detach_embeddings=detach_embeddings, output_bias=output_bias)
    return cdep_text_penalty(rel, irrel, y[rows])


def saliency_guided_tokens(e: torch.Tensor, scores: torch.Tensor, padding: torch.Tensor, fraction: float,
                           by: str = "abs", fill: str | float = "random",
                           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the embeddings of each sentence's k_b = ⌊fraction · L_b⌋ lowest-saliency real tokens.

    Args:
        e: token embeddings B×T×E (kept differentiable at the kept tokens).
        scores: per-token saliency B×T; ranked by |s| (``by="abs"``) or s (``"signed"``).
        padding: B×T bool, True at real tokens (L_b of them).
        fill: ``"random"``: U(min e_b, max e_b) per entry over sentence b's real tokens; or a constant.

    Returns:
        ``(e_masked, masked)`` with ``masked`` B×T bool (True = replaced).

    Example:
        >>> e = torch.ones(1, 4, 2)
        >>> scores = torch.tensor([[0.3, -0.1, 0.2, 0.9]])
        >>> out, masked = saliency_guided_tokens(e, scores, torch.ones(1, 4, dtype=torch.bool), 0.5, fill=0.0)
        >>> masked.tolist(), out[0, :, 0].tolist()
        ([[False, True, True, False]], [1.0, 0.0, 0.0, 1.0])
    """
    check_choice("by", by, ("abs", "signed"))
    s = scores.detach().abs() if by == "abs" else scores.detach()
    s = s.masked_fill(~padding, math.inf)
    ranks = stable_ranks(s, descending=False)  # ascending, ties in position order
    k = torch.floor(padding.sum(1).to(torch.float64) * fraction + 1e-9).long()
    masked = (ranks < k[:, None]) & padding
    if fill == "random":
        real = padding[..., None]
        low = e.detach().masked_fill(~real, math.inf).amin((1, 2), keepdim=True)
        high = e.detach().masked_fill(~real, -math.inf).amax((1, 2), keepdim=True)
        device = generator.device if generator is not None else e.device
        u = torch.rand(e.shape, generator=generator, device=device, dtype=e.dtype).to(e.device)
        values = low + (high - low) * u
    else:
        values = torch.full_like(e, float(fill))
    return torch.where(masked[..., None], values, e), masked


__all__ = ["BIAS_AT", "SEED_TEXT", "cdep_text", "cdep_text_penalty", "saliency_guided_tokens", "widen_window"]
