"""ROAD: RemOve And Debias (Rong et al. 2022, "A consistent and efficient evaluation
strategy for attribution methods") with noisy linear imputation.

The removed pixels are imputed by the weighted mean of their 8 neighbours (edge neighbours 1/6,
diagonal ones 1/12, weights renormalised at the image border), which couples removed neighbours
into one sparse linear system per image: for every removed pixel i,
``W_i x_i − Σ_{n ∈ N(i)} w_n x_n = 0`` with ``W_i = Σ_{n ∈ N(i)} w_n``, the kept pixels fixed.
The system is symmetric positive definite (a weighted graph Laplacian with Dirichlet data from the
kept pixels), so all systems of a batch are solved together by Jacobi-preconditioned conjugate
gradients in torch on the device, the stencil applied by shifted slices; converged systems are
dropped from the active set as they finish. Small Gaussian noise (``noise`` · N(0, 1)) is then
added to the imputed pixels. Same equations as ``quantus.functions.noisy_linear_imputation``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..._random import as_index, descending_ranks, keyed_draw
from ..._validation import check_choice
from .._core import (MAX_BATCH, QUANTUS_CONVENTIONS, check_convention, check_fractions, curve_value, prepare)
from .._stack import forward_copies
from ._settings import checked_rows, checked_value

Tensor = torch.Tensor


def neighbour_sum(u: torch.Tensor) -> torch.Tensor:
    """Σ_n w_n u_n over the 8 neighbours (1/6 edges, 1/12 diagonals), zero outside the image.

    Args:
        u: N×H×W images.

    Shape:
        u: (N, H, W); output: (N, H, W).

    Returns:
        The weighted neighbour sums (the separable form [1,2,1]ᵀ[1,2,1]/12 minus the centre term).

    Example::

    >>> import torch; from explainreg.metrics.functional.imputation import neighbour_sum
    >>> round(float(neighbour_sum(torch.ones(1, 3, 3))[0, 1, 1]), 4)        # 4/6 + 4/12
    1.0
    """
    p = F.pad(u, (1, 1, 1, 1))
    rows = p[:, :-2, :] + 2.0 * p[:, 1:-1, :] + p[:, 2:, :]
    both = rows[:, :, :-2] + 2.0 * rows[:, :, 1:-1] + rows[:, :, 2:]
    return (both - 4.0 * u) / 12.0


def solve_imputation(x: torch.Tensor, removed: torch.Tensor, *, tol: float = 1e-5, max_iter: int = 1000,
                     check_every: int = 8, compact: float = 0.1) -> torch.Tensor:
    """Noise-free linear imputation of the ``removed`` pixels: the solution of the neighbour-mean system, kept pixels
        unchanged.

        Batched Jacobi-preconditioned conjugate gradients (see the module doc).

        Args:
            x: N×H×W images.
            removed: N×H×W bool, the pixels to impute.
            tol: stop at ‖r‖ ≤ tol·‖b‖ per system.
            max_iter, check_every, compact: iteration cap, convergence check period, and the share of
                finished systems at which they leave the batch.

        Shape:
            x, removed: (N, H, W); output: (N, H, W).

        Returns:
            The imputed images. A system without any kept pixel is singular: its removed pixels are set to 0.

        Example::

        >>> import torch; from explainreg.metrics.functional.imputation import solve_imputation
        >>> x = torch.ones(1, 3, 3); hole = torch.zeros(1, 3, 3, dtype=torch.bool); hole[0, 1, 1] = True
        >>> float(solve_imputation(x * (~hole), hole)[0, 1, 1])     # the mean of its neighbours
        1.0
    """
    removed = removed.to(torch.bool)
    maskf = removed.to(x.dtype)
    known = x * (1.0 - maskf)
    weight = neighbour_sum(torch.ones_like(x[:1])).expand_as(x)           # Σ of valid weights
    rhs = neighbour_sum(known) * maskf
    n, h, w = x.shape
    u = torch.zeros_like(x)
    bnorm = rhs.flatten(1).norm(dim=1)
    active = torch.nonzero(bnorm > 0).flatten()
    if not active.numel():
        return known
    c1 = maskf[active] * (weight[active] + 1.0 / 3.0)
    c2 = maskf[active] / 12.0
    inv_d = torch.where(removed[active], 1.0 / weight[active], torch.ones_like(c1))
    r = rhs[active]
    ua = torch.zeros_like(r)
    buffer = torch.zeros(len(active), h + 2, w + 2, dtype=x.dtype, device=x.device)
    p = buffer[:, 1:-1, 1:-1]
    z = r * inv_d
    p.copy_(z)
    rz = _dot(r, z)
    thresh = (tol * bnorm[active]) ** 2
    for it in range(1, int(max_iter) + 1):
        rows = buffer[:, :-2, :] + buffer[:, 2:, :]
        rows.add_(buffer[:, 1:-1, :], alpha=2.0)
        ap = rows[:, :, :-2] + rows[:, :, 2:]
        ap.add_(rows[:, :, 1:-1], alpha=2.0)
        ap.mul_(-c2).addcmul_(c1, p)                                        # A p
        pap = _dot(p, ap)
        alpha = (rz / torch.where(pap > 0, pap, torch.ones_like(pap)))[:, None, None]
        ua.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1.0)
        torch.mul(r, inv_d, out=z)
        rz_new = _dot(r, z)
        beta = (rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)))[:, None, None]
        p.mul_(beta).add_(z)
        rz = rz_new
        if it % check_every and it != max_iter:
            continue
        done = _dot(r, r) <= thresh
        n_done = int(done.sum())
        if n_done == len(done):
            break
        if n_done >= compact * len(done):
            u[active[done]] = ua[done]
            keep = ~done
            active, ua, r, z, rz, thresh = active[keep], ua[keep], r[keep], z[keep], rz[keep], thresh[keep]
            c1, c2, inv_d, buffer = c1[keep], c2[keep], inv_d[keep], buffer[keep]
            p = buffer[:, 1:-1, 1:-1]
    u[active] = ua
    return known + u * maskf


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise inner products of two N×H×W tensors (N)."""
    return torch.linalg.vecdot(a.flatten(1), b.flatten(1))


def noisy_linear_imputation(x: torch.Tensor, removed: torch.Tensor, *, noise: float = 0.01,
                            generator: torch.Generator | None = None, tol: float = 1e-5,
                            max_iter: int = 1000, eps: torch.Tensor | None = None) -> torch.Tensor:
    """ROAD's noisy linear imputation: :func:`solve_imputation` plus ``noise``·ε on the imputed pixels.

        Rong et al. (2022), "A consistent and efficient evaluation strategy for attribution methods".

        Args:
            x: images B×C×H×W or B×H×W.
            removed: B×H×W bool (shared by the channels).
            noise: the standard deviation of ε ~ N(0, 1) added to the imputed pixels.
            generator, eps: the random source, or ε itself (the shape of x).
            tol, max_iter: as in :func:`solve_imputation`.

        Shape:
            x: (B, C, H, W) or (B, H, W); removed: (B, H, W); output: the shape of x.

        Returns:
            The imputed images.

        Example::

        >>> import torch; from explainreg.metrics.functional.imputation import noisy_linear_imputation
        >>> hole = torch.zeros(1, 4, 4, dtype=torch.bool); hole[0, 1:3, 1:3] = True
        >>> out = noisy_linear_imputation(torch.ones(1, 1, 4, 4), hole, noise=0.0)
        >>> torch.allclose(out, torch.ones(1, 1, 4, 4), atol=1e-4)
        True
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    squeeze = x.dim() == 3
    xs = x[:, None] if squeeze else x
    if xs.dim() != 4 or removed.shape != (xs.shape[0],) + tuple(xs.shape[2:]):
        raise ValueError(f"removed must have shape B×H×W = {(xs.shape[0],) + tuple(xs.shape[2:])} for x of shape "
                         f"{tuple(x.shape)}, got {tuple(removed.shape)}")
    b, c, h, w = xs.shape
    rem = removed[:, None].expand(b, c, h, w).reshape(b * c, h, w)
    out = solve_imputation(xs.reshape(b * c, h, w), rem, tol=tol, max_iter=max_iter).view(b, c, h, w)
    if noise > 0:
        if eps is None:
            eps = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        out = out + noise * eps.reshape(out.shape).to(out.device, out.dtype) * rem.view(b, c, h, w).to(out.dtype)
    return out[:, 0] if squeeze else out


ROAD_PERCENTAGES = tuple(range(10, 100, 10))


QUANTUS_PERCENTAGES = tuple(range(1, 100, 2))


def road_percentages(percentages: Sequence[float] | None, convention: str = "explainreg",
                     owner: str = "ROAD") -> tuple[float, ...]:
    """The checked percentages removed by ROAD: ``percentages``, or by default 10, 20, …, 90
    (``convention="quantus"``: 1, 3, …, 99, as ``quantus.ROAD``); ``convention`` checked for ``owner``."""
    check_convention(owner, convention, QUANTUS_CONVENTIONS)
    if percentages is None:
        percentages = QUANTUS_PERCENTAGES if convention == "quantus" else ROAD_PERCENTAGES
    return check_fractions("percentages", percentages, 0.0, 100.0)


def road_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
              percentages: Sequence[float] = ROAD_PERCENTAGES, order: str = "morf", noise: float = 0.01,
              seed: int = 0, index: torch.Tensor | None = None, tol: float = 1e-5,
              max_batch: int = MAX_BATCH) -> torch.Tensor:
    """correct[b, s]: is argmax f(x̃) = y after removing ``percentages[s]`` % of the pixels and imputing them by noisy
        linear imputation?

        Rong et al. (2022), "A consistent and efficient evaluation strategy for attribution methods".

        Args:
            model, x, y, attributions: the classifier, images B×C×H×W, labels and maps.
            percentages: the percentages p removed (k = ⌊H·W·p/100⌋ pixels, top by the channel-summed
                attribution for ``morf``, bottom for ``lerf``; ties in a seeded random order per image).
            order: ``"morf"`` or ``"lerf"``.
            noise: the imputation noise.
            seed, index: key image b's tie order and noise (S×C×H×W).
            tol, max_batch: the solver tolerance and the cap on rows per forward pass.

        Shape:
            x: (B, C, H, W); output: (B, len(percentages)).

        Returns:
            0/1 float64 correctness.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import ROAD
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.imputation import road_rows
        >>> road_rows(model, x, y, a, percentages=(25, 50)).shape
        torch.Size([4, 2])
    """
    check_choice("order", order, ("morf", "lerf"))
    ps = check_fractions("percentages", percentages, 0.0, 100.0)
    x, y, a = prepare(model, x, y, attributions)
    if x.dim() != 4:
        raise ValueError(f"ROAD needs images B×C×H×W, got x of shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    score = a.sum(1).flatten(1).double()
    idx = as_index(index, b)
    ranks = descending_ranks(score if order == "morf" else -score, seed, idx)
    ks = torch.tensor([int(h * w * p / 100.0) for p in ps], device=x.device)
    s = len(ps)

    def make(i0, i1):
        removed = (ranks[i0:i1, None, :] < ks[None, :, None]).view((i1 - i0) * s, h, w)
        xs = x[i0:i1, None].expand(-1, s, -1, -1, -1).reshape((i1 - i0) * s, c, h, w)
        eps = keyed_draw("normal", seed, idx[i0:i1], (s, c, h, w), "noise", device=x.device,
                         dtype=x.dtype) if noise > 0 else None
        return noisy_linear_imputation(xs, removed, noise=noise, tol=tol, eps=eps).view(i1 - i0, s, c, h, w)

    labels = forward_copies(model, make, b, s, None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


def road_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
               percentages: Sequence[float] | None = None, convention: str = "explainreg", validate_args: bool = True,
               **settings: Any) -> Tensor:
    """ROAD's correct[b, s] after removing ``percentages[s]`` % and imputing them (Rong et al. 2022, "A consistent and
    efficient evaluation strategy for attribution methods").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentages: the percentages removed (default 10, 20, …, 90; ``convention="quantus"``: 1, 3, …, 99).
        convention: ``"explainreg"`` or ``"quantus"`` (the default percentages of ``quantus.ROAD``), as
            :class:`~explainreg.metrics.ROAD`.
        validate_args: ``False`` skips the probe forward pass.
        settings: ``order``, ``noise``, ``seed``, ``index``, ``tol``, ``max_batch`` of
            :func:`explainreg.metrics.functional.imputation.road_rows`.

    Shape:
        x: (B, C, H, W); output: (B, S), S = len(percentages).

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.road_curve(model, x, y, a, percentages=(25, 50)).shape
    torch.Size([4, 2])
    """
    percentages = road_percentages(percentages, convention, "road_curve")
    return checked_rows(road_rows, validate_args, model, x, y, attributions, percentages=percentages, **settings)


def road(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
         percentages: Sequence[float] | None = None, convention: str = "explainreg", reduction: str = "mean",
         validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean ROAD accuracy curve over the fraction removed (lower is better for ``morf``).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentages: the percentages removed (default 10, 20, …, 90; ``convention="quantus"``: 1, 3, …, 99).
        convention: ``"explainreg"`` or ``"quantus"``, as :func:`road_curve`.
        settings: as in :func:`road_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the per-image 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.road(model, x, y, a, percentages=(25, 50)).shape
    torch.Size([])
    """
    percentages = road_percentages(percentages, convention, "road")
    return checked_value(road_rows, lambda r: curve_value(r, [p / 100.0 for p in percentages]), reduction, validate_args,
                  model, x, y, attributions, percentages=percentages, **settings)


__all__ = ["QUANTUS_PERCENTAGES", "ROAD_PERCENTAGES", "neighbour_sum", "noisy_linear_imputation", "road",
    "road_curve", "road_percentages", "road_rows", "solve_imputation"]
