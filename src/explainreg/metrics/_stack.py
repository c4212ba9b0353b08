"""Forward passes over stacks of perturbed copies: S copies of each of B images, built chunk by chunk
so that every forward pass sees about ``max_batch`` rows and no per-image Python loop runs."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .._validation import check_choice
from ..attribution import model_device
from ._core import MAX_BATCH, rows_per_forward


def forward_copies(model: nn.Module, make: Callable[[int, int], torch.Tensor], n_images: int, n_copies: int,
                   index: torch.Tensor | None, *, max_batch: int = MAX_BATCH, output: str = "prob") -> torch.Tensor:
    """Run ``model`` on ``make(i0, i1)`` (the (i1−i0)×S×... perturbed copies of images i0..i1) for all
    images; returns B×S: the output of class ``index[b]`` for each copy (``output`` = ``"prob"`` or
    ``"logit"``), or the predicted labels (``output="label"``, ``index`` ignored).

    Images go through in groups of max(1, ⌊rows / S⌋), rows = :func:`rows_per_forward` (the
    activation budget, capped by ``max_batch``), and no forward pass sees more than ``rows`` rows. ``make`` must give each image the same copies whatever the
    group (draw randomness per image, see :mod:`explainreg._random`)."""
    check_choice("output", output, ("prob", "logit", "label"))
    device = model_device(model)
    rows = []
    with torch.no_grad():
        first = make(0, min(1, n_images)) if n_images else None
        per_forward = rows_per_forward(model, first[0, :1].to(device), max_batch) if n_images else 1
        group = max(1, per_forward // max(1, n_copies))
        for i0 in range(0, n_images, group):
            i1 = min(n_images, i0 + group)
            xs = first if (i0 == 0 and i1 == 1) else make(i0, i1)
            flat = xs.reshape((-1,) + tuple(xs.shape[2:]))
            # one image's copies may exceed the budget: then they go through in several forwards
            z = torch.cat([model(part.to(device)) for part in flat.split(per_forward)])
            if output == "label":
                rows.append(z.argmax(1).view(i1 - i0, n_copies))
                continue
            if output == "prob":
                z = z.softmax(1)
            z = z.view(i1 - i0, n_copies, -1)
            rows.append(z.gather(2, index[i0:i1, None, None].expand(-1, n_copies, 1).to(device)).squeeze(2))
    return torch.cat(rows) if rows else torch.zeros(0, n_copies, device=device)


def fill_value(x: torch.Tensor, baseline) -> torch.Tensor:
    """The replacement value per image, broadcastable to B×S×C×H×W: a number, ``"black"``/``"min"``
    (the image's minimum, Quantus's "black"), ``"white"``/``"max"``, ``"mean"``, or a tensor
    broadcastable to x (e.g. a baseline image)."""
    b = x.shape[0]
    view = (b, 1) + (1,) * (x.dim() - 1)
    if isinstance(baseline, torch.Tensor):
        return baseline.to(x.device, x.dtype).expand_as(x)[:, None]
    if isinstance(baseline, str):
        key = baseline.lower()
        flat = x.flatten(1)
        if key in ("black", "min"):
            return flat.min(1).values.view(view)
        if key in ("white", "max"):
            return flat.max(1).values.view(view)
        if key == "mean":
            return flat.mean(1).view(view)
        raise ValueError(f"baseline must be a number, a tensor or one of 'black', 'min', 'white', 'max', 'mean'; "
                         f"got {baseline!r}")
    return torch.full(view, float(baseline), dtype=x.dtype, device=x.device)


def masked_copies(x: torch.Tensor, masks: torch.Tensor, fill: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
    """``make(i0, i1)`` for :func:`forward_copies`: copies of x with ``masks`` (B×S×...) set to ``fill``."""

    def make(i0: int, i1: int) -> torch.Tensor:
        f = fill[i0:i1] if fill.shape[0] == x.shape[0] else fill
        return torch.where(masks[i0:i1], f, x[i0:i1, None])

    return make


def pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of a with the same row of b (B×S → B); NaN for a constant row."""
    a = a.double() - a.double().mean(-1, keepdim=True)
    b = b.double() - b.double().mean(-1, keepdim=True)
    den = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
    r = (a * b).sum(-1) / den
    return torch.where(den > 0, r, torch.full_like(r, float("nan")))
