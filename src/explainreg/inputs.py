"""What is explained: the input layout of a batch and the tensor its saliency is taken with respect to,
and the package's one mask parser (:func:`normalize_mask`).

Four layouts:

* ``"image"``   x B×C×H×W; the explained tensor is x; masks H×W, B×H×W, B×1×H×W, B×C×H×W or blobs.
* ``"series"``  x B×C×T (channels × time); the explained tensor is x; masks T, B×T, B×1×T, B×C×T or blobs.
* ``"tabular"`` x B×F; the explained tensor is x; masks F, B×F or blobs.
* ``"tokens"``  integer ids B×T go into the model; the explained tensor is the output
  e = Embedding(ids), B×T×E, of the model's ``nn.Embedding`` (found automatically, or the module
  named by ``layer``); masks are B×T (1 = the token the explanation concerns), broadcast over E;
  a padding mask B×T (True = a real token) excludes padding everywhere.

:class:`ExplainedInput` answers, for one batch, the layout, how to run the model and obtain the
explained tensor (one forward), how to run the model at a *replaced* explained tensor (perturbed
embeddings for expected gradients or SGT), and how a mask lines up with it. Penalties, saliency,
metrics and CD are written once against it and refuse, with :meth:`ExplainedInput.require`, the
layouts their definition does not cover.

Token saliency is reduced over E for ranking and metrics (:func:`token_scores`):
``s_bt = Σ_e g_bte · e_bte`` (gradient × input, default) or ``s_bt = ‖g_bt‖₂``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from ._validation import check_choice, check_token_ids

LAYOUTS = ("image", "series", "tabular", "tokens")
#: how :func:`token_scores` turns a B×T×E gradient into one score per token
TOKEN_SCORES = ("grad_x_input", "norm")


class NoEmbeddingError(ValueError):
    """Token ids were given, but no embedding layer could be found (or the named one is wrong)."""


def infer_layout(x: torch.Tensor, layout: str | None = None) -> str:
    """The layout of ``x``: ``layout`` when given (checked against x), else integer → ``"tokens"``,
    float with 4 dims → ``"image"``, 3 → ``"series"``, 2 → ``"tabular"``.

    Example:
        >>> infer_layout(torch.zeros(2, 1, 5, 5)), infer_layout(torch.zeros(2, 7, dtype=torch.long))
        ('image', 'tokens')
    """
    integer = not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool
    if layout is not None:
        check_choice("layout", layout, LAYOUTS)
        if (layout == "tokens") != integer:
            raise TypeError(f"layout={layout!r} needs {'integer token ids' if layout == 'tokens' else 'floats'}, "
                            f"got x of dtype {x.dtype}")
        want = {"image": 4, "series": 3, "tabular": 2, "tokens": 2}[layout]
        if x.dim() != want:
            raise ValueError(f"layout={layout!r} needs x with {want} dims, got shape {tuple(x.shape)}")
        return layout
    if integer:
        return "tokens"
    if x.dim() >= 4:
        return "image"
    return "series" if x.dim() == 3 else "tabular"


def find_embedding(model: nn.Module, layer: str | nn.Module | None = None) -> nn.Module:
    """The module whose output is the explained tensor for token inputs.

    ``layer``: a module of ``model`` or its qualified name (``"encoder.embed"``); ``None``: the
    ``nn.Embedding`` the model's ``get_input_embeddings()`` returns (HuggingFace models and
    :class:`explainreg.hf.HFClassifier`), else the one ``nn.Embedding`` of the model (an error when
    there are none or several).
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise NoEmbeddingError(f"layer {type(layer).__name__} is not a submodule of {type(model).__name__}")
        return layer
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            raise NoEmbeddingError(f"layer={layer!r} is not a submodule of {type(model).__name__}; its submodules: "
                                   f"{', '.join(names[:20])}{' …' if len(names) > 20 else ''}") from None
    if layer is not None:
        raise TypeError(f"layer must be a module, its qualified name or None, got {type(layer).__name__}")
    getter = getattr(model, "get_input_embeddings", None)  # the HuggingFace convention (word embeddings)
    if callable(getter) and isinstance(getter(), nn.Embedding):
        return getter()
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
    if not found:
        raise NoEmbeddingError(
            f"token ids were given but {type(model).__name__} has no nn.Embedding, so there is no embedding "
            "output to explain; name the explained layer (layer='name' / explained_layer='name') or pass "
            "float inputs")
    if len(found) > 1:
        raise NoEmbeddingError(f"{type(model).__name__} has several nn.Embedding modules "
                               f"({', '.join(n for n, _ in found)}); name the explained one with layer='name'")
    return found[0][1]


@contextmanager
def captured_output(module: nn.Module, requires_grad: bool = False) -> Iterator[list[torch.Tensor]]:
    """Within the block, every output of ``module`` is appended to the yielded list (made to require
    grad when ``requires_grad``, e.g. behind a frozen embedding, so that saliency can be taken)."""
    outputs: list[torch.Tensor] = []

    def hook(m: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        if requires_grad and not out.requires_grad:
            out = out.detach().requires_grad_(True)
        outputs.append(out)
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


@contextmanager
def replaced_output(module: nn.Module, value: torch.Tensor) -> Iterator[None]:
    """Within the block, ``module`` returns ``value`` instead of its own output (same shape)."""

    def hook(m: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        if tuple(out.shape) != tuple(value.shape):
            raise ValueError(f"the replacement for the output of {type(m).__name__} has shape {tuple(value.shape)}, "
                             f"the layer returns {tuple(out.shape)}")
        return value

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def padding_mask(ids: torch.Tensor, *, lengths: torch.Tensor | None = None, padding_idx: int | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """B×T bool, True at real tokens: from ``mask`` (given), ``lengths`` (the first lengths_b positions),
    ``padding_idx`` (ids ≠ padding_idx) or all True. Every sentence must keep at least one token.

    Example:
        >>> padding_mask(torch.tensor([[4, 5, 0], [6, 0, 0]]), lengths=torch.tensor([2, 1]))
        tensor([[ True,  True, False],
                [ True, False, False]])
    """
    B, T = ids.shape
    if mask is not None:
        mask = torch.as_tensor(mask, device=ids.device)
        if tuple(mask.shape) != (B, T):
            raise ValueError(f"padding_mask of shape {tuple(mask.shape)} does not match the token ids {(B, T)}; "
                             "give B×T with True (1) at real tokens")
        real = mask.bool()
    elif lengths is not None:
        lengths = torch.as_tensor(lengths, device=ids.device)
        if lengths.shape != (B,) or lengths.is_floating_point():
            raise ValueError(f"lengths must be B = {B} integers (tokens per sentence), got {tuple(lengths.shape)} "
                             f"{lengths.dtype}")
        if int(lengths.max()) > T:
            raise ValueError(f"lengths reach {int(lengths.max())} but the ids have only T = {T} positions")
        real = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]
    elif padding_idx is not None:
        real = ids != padding_idx
    else:
        real = torch.ones(B, T, dtype=torch.bool, device=ids.device)
    empty = (~real.any(1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"sentence(s) {empty[:10].tolist()} of the batch have no tokens (empty sentences); "
                         "drop them from the data set")
    return real


def token_mask(mask: Any, ids: torch.Tensor, who: str = "mask") -> torch.Tensor:
    """A per-token mask as B×T floats in [0, 1].

    Args:
        mask: B×T (one value per token of each sentence) or T (shared by the batch).
        ids: the B×T integer token ids the mask lines up with.
        who: names the caller in error messages.

    Shape:
        mask T or B×T; ids B×T; output B×T.

    Returns:
        The mask as floats (its own float dtype, else float32).

    Example:
        >>> token_mask(torch.tensor([1, 0, 0]), torch.zeros(2, 3, dtype=torch.long))
        tensor([[1., 0., 0.],
                [1., 0., 0.]])
    """
    m = torch.as_tensor(mask, device=ids.device)
    original = tuple(m.shape)
    if m.dim() == 1:
        m = m[None].expand(ids.shape[0], -1)
    if m.dim() != 2 or tuple(m.shape) != tuple(ids.shape):
        raise ValueError(f"{who}: token mask of shape {original} does not match the token ids {tuple(ids.shape)}; "
                         "give one value per token, B×T (1 = the token the explanation concerns)")
    m = m.to(torch.float32 if not m.is_floating_point() else m.dtype)
    if not torch.isfinite(m).all() or float(m.min()) < 0 or float(m.max()) > 1:
        raise ValueError(f"{who}: token mask values must lie in [0, 1]")
    return m


def _mask_forms(layout: str, x: torch.Tensor, blobs: bool) -> str:
    """The accepted mask shapes of ``layout`` in words (for the error messages)."""
    if layout == "tabular":
        return "N×F (shared) or B×N×F" if blobs else "F (shared) or B×F"
    s = "T" if layout == "series" else "H×W" if x.dim() == 4 else "S"
    if blobs:
        return f"N×{s} (shared), B×N×{s} or B×N×C×{s}"
    hint = " (a B×T×C mask needs mask.transpose(1, 2))" if layout == "series" else ""
    return f"{s} (shared), B×{s}, B×1×{s} or B×C×{s}{hint}"


def _mask_values(mask: Any, x: torch.Tensor, where: str) -> torch.Tensor:
    """``mask`` as a tensor of x's dtype on x's device: non-empty, finite, real, in [0, 1]."""
    m = torch.as_tensor(mask, device=x.device)
    if m.numel() == 0:
        raise ValueError(f"{where} is empty (shape {tuple(m.shape)}); give a mask over the input's "
                         f"{'features' if x.dim() == 2 else 'elements'} {tuple(x.shape[2:] or x.shape[1:])}")
    if m.is_complex() or not torch.isfinite(m.float()).all():
        raise ValueError(f"{where} must hold finite real values in [0, 1]")
    m = m.to(x.dtype)
    if float(m.min()) < 0 or float(m.max()) > 1:
        raise ValueError(f"{where} values must lie in [0, 1] (1 = the masked region), got the range "
                         f"[{float(m.min())}, {float(m.max())}]")
    return m


def _nested_numbers(value: Any) -> bool:
    """Whether ``value`` is a (nested) list or tuple of plain numbers only, an array written in Python."""
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_nested_numbers(v) for v in value)
    return isinstance(value, (bool, int, float))


def _nested_tensor(value: Sequence, where: str) -> torch.Tensor:
    """A nested list of numbers as a tensor; a ragged one is a ValueError naming the row lengths."""
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (ValueError, TypeError):
        lengths = sorted({len(row) for row in value if isinstance(row, (list, tuple))})
        raise ValueError(f"{where} is a nested list whose rows differ in length ({lengths}); a mask given as "
                         "nested lists must be rectangular, e.g. H lists of W numbers for an H×W mask") from None


def normalize_mask(mask: Any, x: torch.Tensor, blobs: bool = False, *, layout: str | None = None,
                   who: str | None = None, name: str = "mask") -> torch.Tensor:
    """The one mask parser of the package: any accepted mask form in its canonical shape
    N×(B|1)×(1|C)×S, N the number of blobs and S = x.shape[2:] (N×(B|1)×F for B×F inputs,
    1×B×T for token ids).

    One mask (``blobs=False``, N = 1): S (shared by the batch), B×S, B×1×S or B×C×S — for images
    H×W, B×H×W, B×1×H×W, B×C×H×W; for series T, B×T, B×1×T, B×C×T; for B×F inputs F or B×F; for
    B×T token ids T or B×T (:func:`token_mask`). Several blobs (``blobs=True``): N×S (shared),
    B×N×S or B×N×(1|C)×S (N×F or B×N×F). A nested list of plain numbers is read as the array it
    writes (an H×W mask as H lists of W numbers); a list (or tuple) of single masks (tensors or
    arrays), each in any one-mask form, is stacked as N blobs. Values must be finite and lie in [0, 1]. Contextual decomposition
    (:func:`explainreg.decompose`), CDEP, RRR, Expected Gradients, Locality, the XIL penalties and
    :func:`explainreg.data.masked_dataset` all read masks through this function, so a mask that one
    accepts, all accept (or all refuse with this message).

    Args:
        mask: a tensor (or array) in one of the forms above, or a list of single masks (blobs).
        x: the batch the mask lines up with: B×C×S floats, B×F floats or B×T integer token ids.
        blobs: read a tensor ``mask`` as N blobs rather than one mask.
        layout: the input layout (:data:`LAYOUTS`); inferred from x when None (:func:`infer_layout`).
        who: names the caller in error messages (``"CDEP: mask of shape …"``).
        name: the mask's name in error messages (e.g. ``"reward_mask"``).

    Shape:
        x B×C×S (or B×F, or B×T ids); output N×(B|1)×(1|C)×S (N×(B|1)×F; 1×B×T).

    Returns:
        The mask as a tensor of x's dtype on x's device (float32 for token ids).

    Example:
        >>> x = torch.zeros(2, 3, 4, 4)
        >>> normalize_mask(torch.ones(4, 4), x).shape
        torch.Size([1, 1, 1, 4, 4])
        >>> normalize_mask(torch.ones(2, 1, 4, 4), x).shape
        torch.Size([1, 2, 1, 4, 4])
        >>> normalize_mask([torch.ones(4, 4), torch.zeros(2, 4, 4)], x).shape   # two blobs
        torch.Size([2, 2, 1, 4, 4])
        >>> normalize_mask(torch.ones(4, 5), x)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: mask of shape (4, 5) does not match the images (2, 3, 4, 4): it does not fit their H×W (4, 4). ...
    """
    layout = infer_layout(x, layout)
    prefix = f"{who}: " if who else ""
    if isinstance(mask, (list, tuple)) and _nested_numbers(mask):  # e.g. an H×W mask as a nested list
        mask = _nested_tensor(mask, f"{prefix}{name}")
    if isinstance(mask, (list, tuple)):
        if layout == "tokens":
            raise ValueError(f"{prefix}{name} is a list of {len(mask)} masks; token ids take one T or B×T token "
                             "mask (blobs are defined for dense inputs)")
        if len(mask) == 0:
            raise ValueError(f"{prefix}{name} is an empty list; give at least one blob")
        singles = [normalize_mask(m, x, layout=layout, who=who, name=f"{name}[{i}]") for i, m in enumerate(mask)]
        shape = [max(s.shape[i] for s in singles) for i in range(1, singles[0].dim())]
        return torch.cat([s.expand(1, *shape) for s in singles], 0)
    if layout == "tokens":
        if blobs:
            raise ValueError(f"{prefix}blobs=True is defined for dense inputs; token ids take one T or B×T mask")
        return token_mask(mask, x, who or name)[None]
    m = _mask_values(mask, x, f"{prefix}{name}")
    original, B = tuple(m.shape), x.shape[0]
    spatial, channels = (tuple(x.shape[1:]), None) if layout == "tabular" else (tuple(x.shape[2:]), x.shape[1])
    k, ch = len(spatial), [1] if channels else []
    noun = {"image": "images", "series": "series", "tabular": "inputs"}[layout]
    axes = "F" if layout == "tabular" else "T" if layout == "series" else "H×W" if x.dim() == 4 else "S"
    problem = None
    if m.dim() < k or tuple(m.shape[m.dim() - k:]) != spatial:
        problem = f"it does not fit their {axes} {spatial}"
    else:
        lead = tuple(m.shape[:m.dim() - k])
        if not blobs:
            if len(lead) == 0:
                m = m.reshape(1, 1, *ch, *spatial)
            elif len(lead) == 1 and lead[0] in (1, B):
                m = m.reshape(1, lead[0], *ch, *spatial)
            elif len(lead) == 2 and channels and lead[0] in (1, B) and lead[1] in (1, channels):
                m = m.unsqueeze(0)
            else:
                problem = (f"its leading dims {lead} must be (), (B,) = ({B},)"
                           + (f" or (B, 1|C) = ({B}, 1|{channels})" if channels else ""))
        elif len(lead) == 1:
            m = m.reshape(lead[0], 1, *ch, *spatial)
        elif len(lead) == 2 and lead[0] in (1, B):
            m = m.transpose(0, 1).reshape(lead[1], lead[0], *ch, *spatial)
        elif len(lead) == 3 and channels and lead[0] in (1, B) and lead[2] in (1, channels):
            m = m.transpose(0, 1)
        else:
            problem = (f"its leading dims {lead} must be (N,), (B, N) with B = {B}"
                       + (" or (B, N, 1|C)" if channels else ""))
    if problem:
        raise ValueError(f"{prefix}{name} of shape {original} does not match the {noun} {tuple(x.shape)}: "
                         f"{problem}. Accepted shapes: {_mask_forms(layout, x, blobs)}")
    return m


def dense_mask(mask: Any, x: torch.Tensor, layout: str | None = None, who: str | None = None,
               name: str = "mask") -> torch.Tensor:
    """One mask over a dense input (image, series, tabular), read by :func:`normalize_mask`, in
    the form (B|1)×(1|C)×S (or (B|1)×F) that broadcasts against x; a list of blobs is refused.

    Args:
        mask: S, B×S, B×1×S or B×C×S (F or B×F), values in [0, 1].
        x: the B×C×S (or B×F) batch.
        layout: ``"image"``, ``"series"`` or ``"tabular"``; inferred from x when None.
        who: names the caller in error messages. name: the mask's name there.

    Shape:
        output (B|1)×(1|C)×S, or (B|1)×F.

    Returns:
        The mask as a tensor of x's dtype.

    Example:
        >>> dense_mask(torch.ones(3), torch.zeros(2, 1, 3)).shape   # a T mask over B×C×T series
        torch.Size([1, 1, 3])
    """
    if isinstance(mask, (list, tuple)):
        raise ValueError(f"{who + ': ' if who else ''}{name} is a list of {len(mask)} blobs, but {who or 'this'} takes "
                         "one mask (S, B×S, B×1×S or B×C×S); CDEP, RRR and ExpectedGradients sum over blobs")
    return normalize_mask(mask, x, layout=layout, who=who, name=name)[0]


def token_scores(g: torch.Tensor, e: torch.Tensor | None = None, by: str = "grad_x_input",
                 padding: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token saliency B×T from the embedding-space gradient g (B×T×E), ``by`` one of :data:`TOKEN_SCORES`:
    ``"grad_x_input"``: s_bt = Σ_e g_bte · e_bte (needs e); ``"norm"``: s_bt = ‖g_bt‖₂.
    Padding positions (``padding`` False) get 0.

    Example:
        >>> g = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])
        >>> token_scores(g, by="norm"), token_scores(g, torch.ones(1, 2, 2))
        (tensor([[5., 1.]]), tensor([[7., 1.]]))
    """
    check_choice("by", by, TOKEN_SCORES)
    if g.dim() != 3:
        raise ValueError(f"g must be the B×T×E gradient w.r.t. the token embeddings, got shape {tuple(g.shape)}")
    if by == "norm":
        s = g.norm(dim=2)
    else:
        if e is None or e.shape != g.shape:
            raise ValueError("by='grad_x_input' needs the embeddings e of g's shape")
        s = (g * e).sum(2)
    return s if padding is None else s * padding.to(s.dtype)


@dataclass
class ExplainedInput:
    """One batch as seen by explanations: its ``layout``, the model input ``x``, the ``padding`` mask
    (B×T bool, True at real positions: tokens, and series given ``padding_mask`` or ``lengths``; None
    elsewhere) and the ``layer`` whose output is explained (tokens). Padding never counts: saliency is
    zero there (:meth:`strip_padding`) and means run over real positions only (:meth:`real`).

    Build it with :meth:`build` (or :func:`explain_input`); :meth:`forward` runs the model once and
    returns the explained tensor (x, or the embedding output for token ids) with the logits.

    Args:
        layout: one of :data:`LAYOUTS`. x: the model input. padding: B×T bool (tokens).
        layer: the embedding module (tokens).

    Shape:
        x B×C×H×W, B×C×T, B×F or B×T ids; explained x's shape, or B×T×E for ids.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 2))
        >>> inputs = ExplainedInput.build(net, torch.tensor([[3, 4, 0], [5, 0, 0]]))
        >>> inputs.layout, inputs.padding.tolist()
        ('tokens', [[True, True, False], [True, False, False]])
        >>> explained, logits = inputs.forward(net)
        >>> explained.shape, logits.shape
        (torch.Size([2, 3, 4]), torch.Size([2, 2]))
    """

    layout: str
    x: torch.Tensor
    padding: torch.Tensor | None = None
    layer: nn.Module | None = None

    @classmethod
    def build(cls, model: nn.Module, x: torch.Tensor, extras: dict[str, Any] | None = None, *,
              layer: str | nn.Module | None = None, layout: str | None = None) -> "ExplainedInput":
        """Infer the layout of ``x``; for tokens find the embedding (``layer``), check the ids against
        its size and build the padding mask from ``extras`` (``padding_mask`` or ``lengths``) or the
        embedding's ``padding_idx``."""
        layout = infer_layout(x, layout)
        extras = extras or {}
        if layout == "series":
            return cls(layout, x, series_padding(x, extras))
        if layout != "tokens":
            return cls(layout, x)
        check_token_ids(x)
        module = find_embedding(model, layer)
        rows = getattr(module, "num_embeddings", None)
        check_token_ids(x, rows)
        extras = extras or {}
        pad = padding_mask(x, lengths=extras.get("lengths"), padding_idx=getattr(module, "padding_idx", None),
                           mask=extras.get("padding_mask"))
        return cls(layout, x, pad, module)

    @property
    def is_tokens(self) -> bool:
        return self.layout == "tokens"

    def require(self, allowed: Sequence[str], who: str, why: str = "") -> None:
        """Raise a clear error unless the layout is one of ``allowed``."""
        if self.layout not in allowed:
            raise ValueError(f"{who} is defined for {', '.join(allowed)} inputs, not {self.layout} "
                             f"(x of shape {tuple(self.x.shape)}){': ' + why if why else ''}")

    def forward(self, model: nn.Module, requires_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: ``(explained, logits)``. Dense layouts: explained = x (grad-enabled when
        ``requires_grad``); tokens: the embedding output of this very pass (part of the graph)."""
        with torch.enable_grad():
            if not self.is_tokens:
                x = self.x.detach().requires_grad_(True) if requires_grad and not self.x.requires_grad else self.x
                return x, model(x)
            with captured_output(self.layer, requires_grad=requires_grad) as outputs:
                logits = model(self.x)
        if len(outputs) != 1:
            raise ValueError(f"the explained layer {type(self.layer).__name__} ran {len(outputs)} times in one forward "
                             "pass; name a layer that runs once (layer='name')")
        return outputs[0], logits

    def run(self, model: nn.Module, explained: torch.Tensor) -> torch.Tensor:
        """The logits at a replaced explained tensor with R·B rows (R copies of each sample, sample-
        major as ``repeat_interleave``): dense layouts ``model(explained)``; tokens: the model on the ids
        (repeated R times) with the embedding output replaced by ``explained``."""
        if not self.is_tokens:
            return model(explained)
        B = self.x.shape[0]
        if explained.shape[0] % B:
            raise ValueError(f"explained tensor has {explained.shape[0]} rows, not a multiple of the batch {B}")
        repeat = explained.shape[0] // B
        ids = self.x.repeat_interleave(repeat, 0) if repeat > 1 else self.x
        with replaced_output(self.layer, explained):
            return model(ids)

    def mask(self, mask: Any, like: torch.Tensor, who: str = "mask") -> torch.Tensor:
        """``mask`` broadcastable against the explained tensor ``like``: tokens B×T×1 (padding zeroed);
        dense layouts as :func:`dense_mask`."""
        if self.is_tokens:
            return (token_mask(mask, self.x, who).to(like.dtype) * self.padding.to(like.dtype))[..., None]
        return dense_mask(mask, like, self.layout, who)

    def real(self, like: torch.Tensor) -> torch.Tensor | None:
        """The real positions as a 0/1 tensor broadcastable against ``like`` (tokens B×T×…: B×T×1…;
        series B×C×T: B×1×T), or None when the batch has no padding."""
        if self.padding is None:
            return None
        pad = self.padding.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)
        if self.is_tokens:
            return pad.view(*pad.shape, *([1] * (like.dim() - 2)))
        return pad[:, None, :]

    def strip_padding(self, t: torch.Tensor) -> torch.Tensor:
        """Zero the padding positions of a tokens B×T×… or series B×C×T tensor (identity without padding)."""
        weight = self.real(t)
        return t if weight is None else t * weight

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` (the explained tensor's shape) over its real positions only."""
        return real_mean(t, self.real(t))

    def scores(self, g: torch.Tensor, explained: torch.Tensor, by: str = "grad_x_input") -> torch.Tensor:
        """Token saliency B×T (:func:`token_scores`, padding 0); dense layouts return g unchanged."""
        if not self.is_tokens:
            return g
        return token_scores(g, explained, by, self.padding)


def series_padding(x: torch.Tensor, extras: dict[str, Any]) -> torch.Tensor | None:
    """B×T bool, True at the real steps of a padded series batch x (B×C×T), from ``extras``'
    ``padding_mask`` (B×T, True = real) or ``lengths`` (B); None when neither is given.

    Example:
        >>> series_padding(torch.zeros(2, 1, 3), {"lengths": torch.tensor([3, 1])}).tolist()
        [[True, True, True], [True, False, False]]
    """
    if extras.get("padding_mask") is None and extras.get("lengths") is None:
        return None
    B, _, T = x.shape
    try:
        return padding_mask(torch.empty(B, T, device=x.device), lengths=extras.get("lengths"),
                            mask=extras.get("padding_mask"))
    except ValueError as exc:
        raise ValueError(f"series batch x {tuple(x.shape)}: {exc} (padding_mask: B×T with True at real time "
                         "steps; lengths: the real steps of each series)") from None


def real_mean(t: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``t`` over the entries where ``real`` (0/1, broadcastable against t) is 1; ``t.mean()``
    when ``real`` is None.

    Example:
        >>> real_mean(torch.tensor([[1.0, 3.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]]))
        tensor(2.)
    """
    if real is None:
        return t.mean()
    weight = real.to(t.dtype).expand_as(t)
    return (t * weight).sum() / weight.sum()


def explain_input(model: nn.Module, x: torch.Tensor, extras: dict[str, Any] | None = None, *,
                  layer: str | nn.Module | None = None, layout: str | None = None) -> ExplainedInput:
    """Shorthand for :meth:`ExplainedInput.build`.

    Example:
        >>> from torch import nn
        >>> explain_input(nn.Linear(3, 2), torch.zeros(4, 3)).layout
        'tabular'
    """
    return ExplainedInput.build(model, x, extras, layer=layer, layout=layout)


# ------------------------------------------------------------------------------------ mask meaning
#: a mask marks what the model must not use (CDEP, RRR, expected-gradient priors, RRR-G, the
#: wrong-reason score, the behavioural shortcut metrics) ...
MUST_NOT_USE = "must_not_use"
#: ... or where the evidence is (HINT, pointing game, attribution localisation, relevance rank/mass,
#: top-k intersection, localisation AUC); documentation: guide/concepts
EVIDENCE = "evidence"
MASK_MEANINGS = (MUST_NOT_USE, EVIDENCE)
#: the penalties defined for each meaning (their ``mask_meaning``), for the messages
PENALTIES_FOR = {MUST_NOT_USE: "CDEP, RRR, ExpectedGradients, RRRGradCAM, RBR", EVIDENCE: "HINT, Locality"}
#: the one stated conversion: the evidence is the complement of a must-not-use mask (and back), only when asked
CONVERSIONS = ("complement",)


def check_mask_meaning(meaning: str | None, name: str = "mask_meaning") -> str | None:
    """``meaning`` checked against :data:`MASK_MEANINGS` (None: not stated)."""
    if meaning is None:
        return None
    value = str(meaning).lower().replace("-", "_")
    check_choice(name, value, MASK_MEANINGS)
    return value


def mask_for(mask: Any, given: str | None, wanted: str, who: str, *, convert: str | None = None,
             source: str = "the data") -> Any:
    """The mask a consumer defined for the meaning ``wanted`` may use, from a mask meaning ``given``.

    The same meaning passes unchanged; the other meaning passes only by the stated rule
    ``convert="complement"`` (1 − m); otherwise, and when the meaning is not stated, a ``ValueError``
    says what to pass.

    Args:
        mask: the mask (any form; the complement needs a tensor in [0, 1]).
        given: the meaning the mask carries (:data:`MASK_MEANINGS`), None when not stated.
        wanted: the meaning the consumer (a metric, a penalty) is defined for.
        who: the consumer's name, for the message. convert: None or ``"complement"``.
        source: where the mask came from, for the message.

    Returns:
        The mask, or its complement.

    Example::

        >>> m = torch.tensor([[1.0, 0.0]])
        >>> mask_for(m, MUST_NOT_USE, MUST_NOT_USE, "flip_rate").tolist()
        [[1.0, 0.0]]
        >>> mask_for(m, MUST_NOT_USE, EVIDENCE, "pointing_game", convert="complement").tolist()
        [[0.0, 1.0]]
        >>> mask_for(m, MUST_NOT_USE, EVIDENCE, "pointing_game")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: pointing_game scores masks that mark where the evidence is, but the mask of the data marks ...
    """
    wanted = check_mask_meaning(wanted, "wanted")
    given = check_mask_meaning(given, "given")
    if convert is not None:
        check_choice("convert", convert, CONVERSIONS)
    words = {MUST_NOT_USE: "what the model must not use", EVIDENCE: "where the evidence is"}
    if given is None:
        raise ValueError(f"{who} is defined for masks that mark {words[wanted]}, and {source} does not say what its "
                         f"mask means. State it: mask_meaning='{MUST_NOT_USE}' (a shortcut, a confounder) or "
                         f"'{EVIDENCE}' (the object, the right reason) — masked_dataset(..., meaning=...), "
                         "image_folder(..., mask_meaning=...) or `explainreg evaluate --mask-meaning ...`")
    if given == wanted:
        return mask
    if convert == "complement":
        return complement_mask(mask, who)
    other = {MUST_NOT_USE: "wrong_reason, flip_rate, shortcut_reliance, group_accuracy, decision_share; penalties "
                           + PENALTIES_FOR[MUST_NOT_USE],
             EVIDENCE: "pointing_game, attribution_localisation, top_k_intersection, relevance_rank_accuracy, "
                       "relevance_mass_accuracy, localisation_auc; penalties " + PENALTIES_FOR[EVIDENCE]}[given]
    raise ValueError(f"{who} scores masks that mark {words[wanted]}, but the mask of {source} marks {words[given]} "
                     f"({given}); a high score against it would mean the opposite. Use what is defined for "
                     f"{given} masks ({other}), pass a mask of {words[wanted]} (e.g. the object mask), or convert by "
                     "the stated rule with convert='complement' (--mask-convert complement): the complement of the "
                     "region")


def complement_mask(mask: Any, who: str = "the mask", name: str = "mask") -> torch.Tensor:
    """The stated conversion between the two meanings: 1 − m (``~m`` for a bool mask).

    Args:
        mask: one mask (a tensor or array; bool, or values in [0, 1]); a list of blobs has no single
            complement and is refused. who, name: the consumer and the mask's name, for the messages.

    Returns:
        The complement, in the mask's dtype.

    Example::

        >>> complement_mask(torch.tensor([[True, False]])).tolist(), complement_mask(torch.tensor([0.25, 1.0])).tolist()
        ([[False, True]], [0.75, 0.0])
    """
    if isinstance(mask, (list, tuple)):
        raise ValueError(f"{who}: {name} is a list of {len(mask)} blobs, which has no single complement; convert "
                         "one mask, or pass the mask of the other meaning yourself")
    m = torch.as_tensor(mask)
    if m.dtype == torch.bool:
        return ~m
    if m.numel() and (bool(m.min() < 0) or bool(m.max() > 1)):
        raise ValueError(f"{who}: the complement 1 − m needs {name} in [0, 1] (or bool), got values in "
                         f"[{float(m.min()):g}, {float(m.max()):g}]; scale it to [0, 1] first")
    return 1 - m


def stated_mask_meanings(data: Any) -> dict[str, str]:
    """``{extra: meaning}`` a data set states for its masks: its ``mask_meanings`` (an
    :class:`~explainreg.data.ArrayDataset`), else an image folder's ``mask_meaning`` for ``mask``;
    ``{}`` when it states none.

    Example::

        >>> from explainreg.data import ArrayDataset
        >>> stated_mask_meanings(ArrayDataset(torch.zeros(2, 1), torch.tensor([0, 1]), {"mask": torch.ones(2, 1)},
        ...                                   mask_meanings={"mask": "must_not_use"}))
        {'mask': 'must_not_use'}
    """
    meanings = getattr(data, "mask_meanings", None)
    if meanings is None:
        single = getattr(data, "mask_meaning", None)
        meanings = {"mask": single} if single is not None else {}
    return {k: check_mask_meaning(v, f"mask_meanings[{k!r}]") for k, v in dict(meanings).items() if v is not None}


@dataclass(frozen=True)
class MaskRoute:
    """Where a mask consumer reads its mask: extra ``read`` of the batch, complemented when ``complement``,
    handed over as extra ``to`` (:func:`mask_route`)."""

    read: str
    to: str
    complement: bool

    @property
    def as_is(self) -> bool:
        """The consumer reads its own extra unchanged."""
        return self.read == self.to and not self.complement

    def apply(self, extras: dict[str, Any], who: str) -> Any:
        """The mask this route hands over, from the batch's ``extras`` (None when ``read`` is absent; a
        batch that carries ``to`` itself keeps it)."""
        if self.read != self.to and extras.get(self.to) is not None:
            return extras[self.to]
        mask = extras.get(self.read)
        if mask is None or not self.complement:
            return mask
        return complement_mask(mask, who, self.read)


def mask_route(who: str, extra: str, wanted: str, meanings: dict[str, str], convert: str | None = None,
               source: str = "the data") -> MaskRoute:
    """How a consumer (a penalty) that reads extra ``extra`` as a mask of meaning ``wanted`` gets its
    mask from data whose masks are stated as ``meanings``.

    ``extra`` stated with the consumer's meaning, or not stated: read as it is. Stated with the other
    meaning: its complement when ``convert="complement"``, else a ``ValueError`` that says what to pass.
    ``extra`` not stated: the one extra stated with the consumer's meaning, as it is (HINT's
    ``reward_mask`` from ``masked_dataset(..., meaning="evidence")``'s ``mask``); else the one extra
    stated with the other meaning, complemented when ``convert="complement"`` (HINT on data whose
    ``mask`` marks a shortcut); batches that carry ``extra`` themselves keep it.

    Args:
        who: the consumer's name. extra: the extra it reads. wanted: its meaning (:data:`MASK_MEANINGS`).
        meanings: ``{extra: meaning}`` stated by the data (:func:`stated_mask_meanings`).
        convert: None or ``"complement"``. source: where the masks come from, for the message.

    Returns:
        A :class:`MaskRoute`.

    Example::

        >>> mask_route("rrr", "mask", MUST_NOT_USE, {"mask": MUST_NOT_USE})
        MaskRoute(read='mask', to='mask', complement=False)
        >>> mask_route("hint", "reward_mask", EVIDENCE, {"mask": MUST_NOT_USE}, "complement")
        MaskRoute(read='mask', to='reward_mask', complement=True)
        >>> mask_route("rrr", "mask", MUST_NOT_USE, {"mask": EVIDENCE})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: rrr is defined for masks that mark what the model must not use, but `mask` of the data marks ...
    """
    wanted = check_mask_meaning(wanted, "wanted")
    if convert is not None:
        check_choice("convert", convert, CONVERSIONS)
    stated = meanings.get(extra)
    fits = [k for k, v in meanings.items() if v == wanted]
    if stated is None:
        others = [k for k, v in meanings.items() if v != wanted]
        if len(fits) == 1:
            return MaskRoute(fits[0], extra, False)
        if convert == "complement" and len(others) == 1 and not fits:
            return MaskRoute(others[0], extra, True)
        return MaskRoute(extra, extra, False)
    if stated == wanted:
        return MaskRoute(extra, extra, False)
    if convert == "complement":
        return MaskRoute(extra, extra, True)
    words = {MUST_NOT_USE: "what the model must not use", EVIDENCE: "where the evidence is"}
    instead = (f"pass the mask {fits[0]!r} the data carries as `{extra}`, " if fits else
               f"pass a mask of {words[wanted]} as `{extra}` (stated with mask_meanings={{{extra!r}: {wanted!r}}}), ")
    raise ValueError(f"{who} is defined for masks that mark {words[wanted]}, but `{extra}` of {source} marks "
                     f"{words[stated]} ({stated}): trained on it, {who} would push the model towards the opposite. "
                     f"Use a penalty defined for {stated} masks ({PENALTIES_FOR[stated]}), {instead}or convert by "
                     "the stated rule: "
                     f"mask_convert='complement' (Objective(..., mask_convert='complement'); `explainreg train "
                     f"--mask-convert complement`) trains on the complement 1 − m")


__all__ = ["CONVERSIONS", "EVIDENCE", "ExplainedInput", "LAYOUTS", "MASK_MEANINGS", "MUST_NOT_USE", "NoEmbeddingError",
           "TOKEN_SCORES", "captured_output", "dense_mask",
           "explain_input", "find_embedding", "infer_layout", "normalize_mask", "padding_mask", "real_mean",
           "replaced_output", "series_padding",
           "token_mask", "token_scores", "check_mask_meaning", "complement_mask", "mask_for", "MaskRoute", "mask_route",
           "stated_mask_meanings"]
