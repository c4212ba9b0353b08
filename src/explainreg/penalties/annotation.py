"""Annotation-mask penalties: CDEP, RRR and Expected Gradients (documentation: methods/annotation; the CDEP code).

The mask ``m`` marks the region the model should *not* use (1 = penalised region). It comes from
the batch extras (``mask``: B×H×W, B×1×H×W, B×C×H×W or one H×W for the batch) or, when a
``blob_sampler`` is given, is drawn per batch as N blobs (ColorMNIST's single pixels). With N
blobs the penalty is summed over the blobs, as the seed does.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import SEED_CONVENTIONS, check_choice, check_convention, check_range
from ..decomposition import decompose
from ..decomposition.engine import ORDERS
from ..decomposition.rules import dropout_as_identity
from ..inputs import normalize_mask
from ..modes import deterministic_dropout, frozen_norm_statistics
from ..gradients import resolve_score
from .base import PENALTIES, Penalty, PenaltyContext
from .text import BIAS_AT, cdep_text, widen_window

#: the token options of :class:`CDEP` as it is constructed by default
_TEXT_DEFAULTS = {"detach_embeddings": True, "window_after": 0, "bias_at": "window", "output_bias": True}

#: ``sampler(generator, x) -> N×H×W`` (or N×C×H×W) blobs shared by the batch
BlobSampler = Callable[[torch.Generator, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# pure functions


def cdep_share(rel: torch.Tensor, irrel: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """CDEP's relevant share ``softmax([rel, irrel])[0] = σ(rel − irrel)``, averaged over (sample, class)
    and summed over blobs. ``rel``/``irrel``: B×K or B×N×K; ``weights`` (B or B×N, 0/1) drop
    samples without an annotated region from the mean."""
    share = torch.sigmoid(rel - irrel).mean(-1)  # B or B×N
    if weights is None:
        per_blob = share.mean(0)
    else:
        weights = weights.to(share.dtype)
        per_blob = (share * weights).sum(0) / weights.sum(0).clamp_min(1)
    return per_blob.sum()


def cdep(model: nn.Module, x: torch.Tensor, mask: Any, *, blobs: bool = False, order: str = "forward",
         blob_chunk: int | None = None) -> torch.Tensor:
    """R = Σ_blobs mean_{b,k} σ(rel_bk − irrel_bk), (rel, irrel) = CD of the logits for the blob.

    ``mask`` as :func:`explainreg.decomposition.decompose`; images whose mask is empty are left out
    of the mean (and an all-empty mask gives 0). ``order="seed"``: CDEP's conv → pool → ReLU order
    (:func:`explainreg.decomposition.decompose`). CD decomposes the deterministic network: dropout
    layers and ``F.dropout`` calls act as the identity during the pass (the cross-entropy forward
    keeps its dropout), and BatchNorm running statistics are left untouched (documentation:
    methods/decomposition). Blobs that cover a small part of an image are decomposed over their
    receptive field only (:mod:`explainreg.decomposition.sparse`; the same values and gradients up
    to rounding).

    ``blob_chunk``: decompose at most this many blobs per pass, each chunk under activation
    checkpointing (recomputed in the backward pass), so that the memory is that of one chunk; the
    value and the gradients are those of the one-pass penalty (summation order aside).
    """
    m = normalize_mask(mask, x, blobs=blobs)  # N×(B|1)×…
    weights = (m != 0).flatten(2).any(2).expand(m.shape[0], x.shape[0]).T  # B×N
    if not bool(weights.any()):
        return _zero(model, x)
    if blob_chunk is not None and blob_chunk < 1:
        raise ValueError(f"blob_chunk must be a whole number ≥ 1 (blobs per CD pass) or None, got {blob_chunk!r}")
    n = m.shape[0]
    if blob_chunk is None or blob_chunk >= n:
        return _cdep_blobs(model, x, m, None if bool(weights.all()) else weights, order)
    from torch.utils.checkpoint import checkpoint

    total = x.new_zeros(())
    for start in range(0, n, blob_chunk):
        part, w = m[start:start + blob_chunk], weights[:, start:start + blob_chunk]
        if bool(w.any()):
            total = total + checkpoint(_cdep_blobs, model, x, part, None if bool(w.all()) else w, order,
                                       use_reentrant=False)
    return total


def _cdep_blobs(model: nn.Module, x: torch.Tensor, m: torch.Tensor, weights: torch.Tensor | None,
                order: str) -> torch.Tensor:
    """Σ over the N blobs of ``m`` (N×(B|1)×…) of CDEP's share, in one CD pass."""
    with deterministic_dropout(model), dropout_as_identity(), frozen_norm_statistics(model):
        rel, irrel = decompose(model, x, m.transpose(0, 1), blobs=True, order=order, sparse=True)  # B×N×K
    return cdep_share(rel, irrel, weights)


def rrr(g: torch.Tensor, mask: torch.Tensor, *, channel_sum: bool = False, blobs: bool = False) -> torch.Tensor:
    """R = (1/B) Σ_b Σ_{c,h,w} (m ⊙ g)²; ``channel_sum``: R = (1/B) Σ_b Σ_{h,w} (m ⊙ Σ_c g)² (CDEP's
    "Grad"). ``mask`` broadcasts against g (B×{1,C}×H×W or 1×1×H×W); ``blobs=True``: a leading
    blob dimension N, R summed over blobs."""
    if channel_sum:
        g = g.sum(1, keepdim=True)
    weight = mask.pow(2)
    if blobs:
        weight = weight.sum(0)
    if channel_sum and weight.shape[1] > 1:
        weight = weight.amax(1, keepdim=True)
    return (weight * g.pow(2)).flatten(1).sum(1).mean()


def draw_references(batch_size: int, n_refs: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected Gradients' draws: reference indices (B×R, uniform over the batch, with replacement)
    and interpolation points α (B×R, U(0, 1)), on the CPU from ``generator``."""
    index = torch.randint(batch_size, (batch_size, n_refs), generator=generator)
    alpha = torch.rand(batch_size, n_refs, generator=generator)
    return index, alpha


def expected_gradient_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                            alpha: torch.Tensor, *, create_graph: bool = True, detach: bool = True,
                            chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_b − x′_br, ∂p_y(x̃_br)/∂x̃_br)``, each B×R×…, for x̃_br = x′_br + α_br (x_b − x′_br),
    x′_br = x[index_br]: every reference of the batch through one batched forward and one
    (``create_graph``) backward on the B·R inputs, or on chunks of ``chunk_size`` of them (the same
    values where the model treats rows independently; BatchNorm in training mode then normalises
    each chunk by its own statistics). ``detach=False`` keeps x's own graph (token embeddings, which
    depend on the embedding weights)."""
    B, R = index.shape
    x = x.detach() if detach else x
    index, alpha = index.to(x.device), alpha.to(x.device, x.dtype)
    refs = x[index.reshape(-1)]  # (B·R)×…
    diff = x.repeat_interleave(R, 0) - refs
    a = alpha.reshape(-1, *([1] * (x.dim() - 1)))
    x_tilde = refs + a * diff
    targets = y.repeat_interleave(R)[:, None]
    step = B * R if chunk_size is None else chunk_size
    grads = []
    with torch.enable_grad():
        for start in range(0, B * R, step):
            part = x_tilde[start:start + step]
            if not part.requires_grad:
                part = part.detach().requires_grad_(True)
            p_y = F.softmax(model(part), 1).gather(1, targets[start:start + step]).sum()
            grads += torch.autograd.grad(p_y, part, create_graph=create_graph)
    grad = grads[0] if len(grads) == 1 else torch.cat(grads)
    return diff.view(B, R, *x.shape[1:]), grad.view(B, R, *x.shape[1:])


def expected_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                       alpha: torch.Tensor, *, create_graph: bool = True) -> torch.Tensor:
    """Expected Gradients attribution of p_y, vectorised over samples × references:
    EG_b = mean_r (x_b − x′_br) ⊙ ∂p_y(x̃_br)/∂x̃_br (see :func:`expected_gradient_terms`)."""
    diff, grad = expected_gradient_terms(model, x, y, index, alpha, create_graph=create_graph)
    return (diff * grad).mean(1)


def expected_gradients_seed_penalty(diff: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, *,
                                    blobs: bool = False) -> torch.Tensor:
    """The seed's EG penalty (``eg_scores_2d``): R = Σ_b Σ_r Σ_{c,h,w} m ⊙ |∂p_y/∂x̃| ⊙ |x_b − x′_br|
    (sums, not means; absolute values inside the sum over references)."""
    weight = mask.sum(0) if blobs else mask
    return (weight.unsqueeze(1) * (grad.abs() * diff.abs())).sum()


def expected_gradients_penalty(eg: torch.Tensor, mask: torch.Tensor, *, blobs: bool = False) -> torch.Tensor:
    """R = (1/B) Σ_b Σ_{c,h,w} m ⊙ |EG_b| (the channel sum of |EG| inside the mask)."""
    weight = mask.sum(0) if blobs else mask
    return (weight * eg.abs()).flatten(1).sum(1).mean()


# ----------------------------------------------------------------------------------------------
# helpers


def _zero(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A zero that is still connected to the parameters (so backward works on it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return sum((p.sum() * 0 for p in params), x.new_zeros(()))


class _AnnotationPenalty(Penalty):
    """Shared: the mask from the batch extras, or N blobs from ``blob_sampler`` (summed). The mask
    marks what the model must not use (``mask_meaning``, documentation: guide/concepts)."""

    mask_meaning: ClassVar[str | None] = "must_not_use"
    mask_extra: ClassVar[str | None] = "mask"

    def __init__(self, blob_sampler: BlobSampler | None = None) -> None:
        super().__init__()
        if blob_sampler is not None and not callable(blob_sampler):
            raise TypeError("blob_sampler must be callable as sampler(generator, x) -> N×H×W blobs")
        self.blob_sampler = blob_sampler

    def _mask(self, ctx: PenaltyContext) -> tuple[torch.Tensor, bool]:
        """``(mask, blobs)``: the extras' mask read by :func:`explainreg.inputs.normalize_mask`, as
        (B|1)×(1|C)×S for one mask or N×(B|1)×(1|C)×S for a list of N blobs; N×1×(1|C)×S blobs from
        ``blob_sampler``; for token batches the B×T token mask as B×T×1 (padding 0), broadcast over
        E (documentation: guide/concepts)."""
        if getattr(ctx, "inputs", None) is not None and ctx.inputs.is_tokens:
            if self.blob_sampler is not None:
                raise ValueError(f"{self.name}: blob_sampler draws pixel blobs; token batches take a B×T token "
                                 "mask from the extras (mask=...)")
            return ctx.inputs.mask(ctx.extra("mask", self.name), ctx.explained, self.name), False
        if self.blob_sampler is not None:
            blobs = torch.as_tensor(self.blob_sampler(ctx.rng(), ctx.x)).to(ctx.x.device, ctx.x.dtype)
            if blobs.dim() == ctx.x.dim() - 1:
                blobs = blobs[:, None]
            if blobs.dim() != ctx.x.dim() or blobs.shape[2:] != ctx.x.shape[2:]:
                raise ValueError(f"{self.name}: blob_sampler returned shape {tuple(blobs.shape)}; it must return "
                                 f"N×H×W or N×C×H×W blobs with H×W = {tuple(ctx.x.shape[2:])}")
            return normalize_mask(blobs[None], ctx.x, blobs=True, who=self.name, name="blob_sampler's blobs"), True
        mask = ctx.extra("mask", self.name)
        m = normalize_mask(mask, ctx.x, who=self.name)
        return (m, True) if isinstance(mask, (list, tuple)) else (m[0], False)

    def settings(self) -> dict[str, Any]:
        return {"blob_sampler": repr(self.blob_sampler)} if self.blob_sampler is not None else {}


@PENALTIES.register(aliases=("cd", "contextual_decomposition"))
class CDEP(_AnnotationPenalty):
    """R = Σ_blobs mean_{b,k} softmax([rel_bk, irrel_bk])[0], (rel, irrel) = the contextual
    decomposition of the logits for the masked region (CDEP, Rieger et al. 2020; CD of Murdoch et
    al. 2018 and Singh et al. 2019). No input gradient: CD is a modified forward pass, and all
    blobs go through one batched pass. Images whose mask is empty are left out of the mean.

    Args:
        blob_sampler: ``sampler(generator, x) -> N×H×W`` blobs drawn per batch instead of the
            extras' mask (ColorMNIST's pixels, :class:`explainreg.data.PixelBlobSampler`).
        order: ``"forward"`` (the model's order) or ``"seed"`` (CDEP's conv → pool → ReLU).
        blob_chunk: decompose at most this many blobs per pass (checkpointed; same value).
        detach_embeddings: token inputs: decompose the word vectors detached from the embedding
            weights, so the penalty trains the network after the embedding and not the vectors
            (the seed's ``.data``; default True, documentation: guide/text). The cross-entropy
            still trains the embedding.
        window_after, bias_at, output_bias: token inputs: the words after each masked token that
            join the relevant window (the seed: 1), where the steps' bias × bias counts as relevant
            (``"window"`` or ``"mask"``, the seed: ``"mask"``), and whether the logits' bias is
            split into rel / irrel (the seed: False); :func:`explainreg.penalties.text.cdep_text`.
            ``CDEP(**SEED_TEXT)`` is the seed's text penalty.

    Shape:
        Called as ``penalty(model, x, y, mask=...)``: x B×C×H×W (or B×T token ids, the seed's text
        form), ``mask`` (1 = the region the model should not use) in any form of
        :func:`explainreg.inputs.normalize_mask` (H×W, B×H×W, B×1×H×W, B×C×H×W; B×C×T series;
        B×T token ids) or a list of blobs (summed); returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1                                    # the region not to use
        >>> from explainreg import decompose
        >>> rel, irrel = decompose(net, x, mask)
        >>> bool(torch.isclose(CDEP()(net, x, y, mask=mask), torch.sigmoid(rel - irrel).mean()))
        True
    """

    name = "cdep"
    needs_input_grad = False

    def __init__(self, blob_sampler: BlobSampler | None = None, order: str = "forward",
                 blob_chunk: int | None = None, *, detach_embeddings: bool = True, window_after: int = 0,
                 bias_at: str = "window", output_bias: bool = True) -> None:
        super().__init__(blob_sampler)
        check_choice("bias_at", bias_at, BIAS_AT)
        widen_window(torch.zeros(1, 1), window_after)  # refuses a window that is not a whole number ≥ 0
        self.text = {"detach_embeddings": bool(detach_embeddings), "window_after": window_after,
                     "bias_at": bias_at, "output_bias": bool(output_bias)}
        if order not in ORDERS:
            raise ValueError(f"CDEP: order must be one of {ORDERS} ('seed' = CDEP's conv → pool → ReLU), got {order!r}")
        if blob_chunk is not None and (isinstance(blob_chunk, bool) or not isinstance(blob_chunk, int) or blob_chunk < 1):
            raise ValueError(f"CDEP: blob_chunk must be a whole number ≥ 1 (blobs per CD pass) or None, got {blob_chunk!r}")
        self.order = order
        self.blob_chunk = blob_chunk

    def settings(self) -> dict[str, Any]:
        extra = {} if self.blob_chunk is None else {"blob_chunk": self.blob_chunk}
        text = {k: v for k, v in self.text.items() if v != _TEXT_DEFAULTS[k]}  # the token options set otherwise
        return {**super().settings(), "order": self.order, **extra, **text}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask, blobs = self._mask(ctx)
        if ctx.inputs.is_tokens:  # the seed's text form (documentation: methods/decomposition), on the sentences with a masked token
            return cdep_text(ctx.model, ctx.x, ctx.y, mask[..., 0], layer=ctx.inputs.layer,
                             lengths=ctx.extras.get("lengths"), **self.text)
        x = ctx.x.detach()
        if blobs:  # N×1×{1,C}×H×W -> 1×N×{1,C}×H×W: the same N blobs for every image
            return cdep(ctx.model, x, mask.transpose(0, 1), blobs=True, order=self.order, blob_chunk=self.blob_chunk)
        return cdep(ctx.model, x, mask, order=self.order, blob_chunk=self.blob_chunk)


@PENALTIES.register(aliases=("right_for_right_reasons",))
class RRR(_AnnotationPenalty):
    """R = (1/B) Σ_b Σ (m ⊙ g)² with g the input gradient of the scalar kind ``score`` (Right for the Right
    Reasons, Ross et al. 2017: ``"sum_log_prob"``, Σ_k log p_k). ``score="nll"`` sums g over channels
    before squaring (CDEP's "Grad" baseline, Rieger et al. 2020) unless ``channel_sum`` says
    otherwise. CDEP's code uses the batch-mean NLL, so its λ equals ours × B.

    Args:
        score: the scalar kind (``"sum_log_prob"`` by default; :data:`explainreg.gradients.SCORES`).
        channel_sum: square Σ_c g instead of g (default: ``score == "nll"``).
        blob_sampler: blobs drawn per batch instead of the extras' mask (see :class:`CDEP`).

    Shape:
        Called as ``penalty(model, x, y, mask=...)``: x B×C×H×W (B×C×T, B×F, B×T token ids),
        ``mask`` (1 = the region the model should not use) in any form of
        :func:`explainreg.inputs.normalize_mask` (H×W, B×H×W, B×1×H×W, B×C×H×W; B×C×T series;
        B×T token ids) or a list of blobs (summed); returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters (double back-propagation).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1                                    # the region not to use
        >>> from explainreg import input_gradient
        >>> g = input_gradient(net, x, y, score="sum_log_prob")
        >>> bool(torch.isclose(RRR()(net, x, y, mask=mask), (mask * g).pow(2).flatten(1).sum(1).mean()))
        True
    """

    name = "rrr"

    def __init__(self, score: str | None = None, channel_sum: bool | None = None,
                 blob_sampler: BlobSampler | None = None) -> None:
        super().__init__(blob_sampler)
        self.score = resolve_score(score, default="sum_log_prob")
        self.channel_sum = (self.score == "nll") if channel_sum is None else bool(channel_sum)

    def settings(self) -> dict[str, Any]:
        return {"score": self.score, "channel_sum": self.channel_sum, **super().settings()}

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask, blobs = self._mask(ctx)
        g = ctx.gradient(self.score)
        if ctx.inputs.is_tokens:  # B×T×E: the embedding dimension plays the channels' part
            g, mask = g.transpose(1, 2), mask.transpose(1, 2)
        return rrr(g, mask, channel_sum=self.channel_sum, blobs=blobs)


@PENALTIES.register(aliases=("eg", "expected_gradients"))
class ExpectedGradients(_AnnotationPenalty):
    """R = (1/B) Σ_b Σ_mask |EG_b| with EG the Expected Gradients attribution of p_y (Erion et al.
    2021) over ``n_refs`` references drawn from the batch; one vectorised double-backprop pass on
    B·n_refs interpolated inputs. ``convention="seed"``: the seed's sum Σ_b Σ_refs Σ_mask
    |∂p_y/∂x̃|·|x − x′| (its λ then matches ours for the same ``n_refs``; the seed used 200 on
    DecoyMNIST, 50 on ColorMNIST).

    Args:
        n_refs: references (and interpolation points) per sample, ≥ 1.
        convention: ``"explainreg"`` (the default) or ``"seed"`` (the seed's un-averaged form).
        blob_sampler: as :class:`CDEP`.
        chunk_size: interpolated inputs per forward and double backward. None: on the CPU, chunks
            of B (the batch size) when no layer normalises with batch statistics (BatchNorm in
            training mode), else all B·n_refs in one pass; smaller chunks bound the memory and keep
            each pass in the CPU's cache (on 28×28 images chunks of 64 ran 1.3× faster than 640 in
            one pass). The same R where the model treats rows independently (BatchNorm in training
            mode sees each chunk's statistics).

    Shape:
        Called as ``penalty(model, x, y, mask=..., generator=...)``: x B×C×H×W (B×C×T, B×F, B×T
        token ids, in embedding space), ``mask`` (1 = the region the model should not use) in any form of
        :func:`explainreg.inputs.normalize_mask` (H×W, B×H×W, B×1×H×W, B×C×H×W; B×C×T series;
        B×T token ids) or a list of blobs (summed); returns a 0-d tensor.

    Returns:
        The raw R, differentiable w.r.t. the model's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> mask = torch.zeros(4, 4)
        >>> mask[:2, :2] = 1                                    # the region not to use
        >>> from explainreg.penalties.functional import expected_gradients
        >>> from explainreg.penalties.annotation import draw_references
        >>> r = ExpectedGradients(n_refs=3)(net, x, y, mask=mask, generator=torch.Generator().manual_seed(1))
        >>> index, alpha = draw_references(4, 3, torch.Generator().manual_seed(1))
        >>> eg = expected_gradients(net, x, y, index, alpha)
        >>> bool(torch.isclose(r, (mask * eg.abs()).flatten(1).sum(1).mean()))
        True
    """

    name = "expected_gradients"
    needs_input_grad = False
    double_backprop = True  # gradients at the interpolated inputs are penalised

    def __init__(self, n_refs: int = 10, blob_sampler: BlobSampler | None = None, *,
                 convention: str = "explainreg", chunk_size: int | None = None) -> None:
        super().__init__(blob_sampler)
        self.convention = check_convention("ExpectedGradients", convention, SEED_CONVENTIONS)
        if int(n_refs) != n_refs:
            raise ValueError(f"n_refs must be a whole number of references per sample, got {n_refs}")
        check_range("n_refs", n_refs, 1)
        self.n_refs = int(n_refs)
        if chunk_size is not None:
            if int(chunk_size) != chunk_size:
                raise ValueError(f"chunk_size must be a whole number of interpolated inputs per pass (or None: "
                                 f"all in one pass), got {chunk_size}")
            check_range("chunk_size", chunk_size, 1)
            chunk_size = int(chunk_size)
        self.chunk_size = chunk_size

    def settings(self) -> dict[str, Any]:
        chunks = {} if self.chunk_size is None else {"chunk_size": self.chunk_size}
        return {"n_refs": self.n_refs, "convention": self.convention, **chunks, **super().settings()}

    def _chunk(self, ctx: PenaltyContext) -> int | None:
        """``chunk_size``, or for None the batch size on the CPU where rows are independent."""
        if self.chunk_size is not None or ctx.x.device.type != "cpu":
            return self.chunk_size
        batch_statistics = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                               for m in ctx.model.modules())
        return None if batch_statistics else ctx.x.shape[0]

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        mask, blobs = self._mask(ctx)
        index, alpha = draw_references(ctx.x.shape[0], self.n_refs, ctx.rng())
        if ctx.inputs.is_tokens:  # references and interpolation in embedding space (documentation: guide/concepts)
            diff, grad = expected_gradient_terms(lambda e: ctx.inputs.run(ctx.model, e), ctx.explained, ctx.y,
                                                 index, alpha, detach=False, chunk_size=self._chunk(ctx))
        else:
            diff, grad = expected_gradient_terms(ctx.model, ctx.x, ctx.y, index, alpha, chunk_size=self._chunk(ctx))
        if self.convention == "seed":
            return expected_gradients_seed_penalty(diff, grad, mask, blobs=blobs)
        return expected_gradients_penalty((diff * grad).mean(1), mask, blobs=blobs)


__all__ = ["BlobSampler", "CDEP", "ExpectedGradients", "RRR", "cdep", "cdep_share", "draw_references",
           "expected_gradient_terms", "expected_gradients", "expected_gradients_penalty",
           "expected_gradients_seed_penalty", "rrr"]
