"""Robustness as functions of one batch: accuracy under Gaussian noise and under square occluding blocks (the seed's tests 5
and 6: the IPL-UV xAI-constrained-losses code), and the max-sensitivity of explanations (Yeh et al. 2019).

Every random draw of image b (its noise, its blocks, its perturbations) comes from a generator keyed
by the metric's ``seed`` and the image's position in the data set (``index[b]``, see
:mod:`explainreg._random`), so a value never depends on the batch size, ``max_batch`` or the number
of ``update`` calls."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..._random import as_index, keyed_draw
from ...attribution import explainer
from .._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, check_convention, check_fractions,
                     check_positive_int, curve_value, prepare, scores_value)
from .._stack import forward_copies
from ._settings import checked_rows, checked_value

Tensor = torch.Tensor


GAUSSIAN_SIGMAS = (0.1, 0.5, 1.0, 1.5)


BLOCK_SIZES = (6, 8, 10, 12)


def gaussian_noise_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        sigmas: Sequence[float] = GAUSSIAN_SIGMAS, convention: str = "explainreg", seed: int = 0,
                        index: torch.Tensor | None = None, max_batch: int = MAX_BATCH,) -> torch.Tensor:
    """correct[b, s] for x_b + σ_s·ε_{b,s}, σ ∈ ``(0, *sigmas)`` (σ = 0: the clean image).

        The seed's robustness test 5 (the IPL-UV xAI-constrained-losses code).

        Args:
            model, x, y: the classifier, the inputs B×..., the labels (B,).
            sigmas: the noise levels σ ≥ 0.
            convention: ``"explainreg"`` or ``"seed"`` (the seed code's +1 shift of every noisy image, not of
                the clean one).
            seed, index: key image b's draws ε_b ~ N(0, 1) (S×...) by ``seed`` and ``index[b]`` (its position
                in the data set; default 0..B−1), stream ``"gaussian"``.
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, ...); output: (B, 1 + len(sigmas)).

        Returns:
            0/1 float64 correctness, column 0 the clean image.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import GaussianNoise
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.robustness import gaussian_noise_rows
        >>> gaussian_noise_rows(model, x, y, sigmas=(0.0, 0.5)).shape
        torch.Size([4, 3])
    """
    seed_quirk = check_convention("gaussian_noise_rows", convention, SEED_CONVENTIONS) == "seed"
    x, y, _ = prepare(model, x, y)
    sig = torch.tensor((0.0,) + check_fractions("sigmas", sigmas, 0.0, float("inf")), dtype=x.dtype, device=x.device)
    shift = torch.where(sig > 0, torch.ones_like(sig), torch.zeros_like(sig)) if seed_quirk else torch.zeros_like(sig)
    view = (1, -1) + (1,) * (x.dim() - 1)
    idx = as_index(index, len(x))

    def make(i0, i1):
        eps = keyed_draw("normal", seed, idx[i0:i1], (len(sig),) + tuple(x.shape[1:]), "gaussian", device=x.device,
                         dtype=x.dtype)
        return x[i0:i1, None] + sig.view(view) * eps + shift.view(view)

    labels = forward_copies(model, make, len(x), len(sig), None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


def square_block_images(x: torch.Tensor, sizes: Sequence[int] = BLOCK_SIZES, *, min_size: int = 2,
                        low: float = 0.5, high: float = 1.0, generator: torch.Generator | None = None,
                        include_clean: bool = True, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """B×S×C×H×W copies of x, each with one square block (the seed's ``AddSquareMask``).

    Args:
        x: images B×C×H×W.
        sizes: the maximal half-sizes s (one copy each).
        min_size: the smallest half-size.
        low, high: the block's value ~ U(low, high).
        generator: draws the four U(0, 1) numbers per copy, unless ``uniforms`` is given.
        include_clean: the first copy is x itself (s = 0).
        uniforms: B×S×4 (half-size, row, column, value) fixes the draws.

    Shape:
        x: (B, C, H, W); output: (B, S, C, H, W), S = len(sizes) (+1 with ``include_clean``).

    Returns:
        The copies: half-size r ~ U{min_size..s}, centre i, j ~ U{r..H−r} (resp. W), the (2r)×(2r) square
        [i−r, i+r)×[j−r, j+r) over all channels set to one value ~ U(low, high).

    Example::

    >>> import torch; from explainreg.metrics.functional.robustness import square_block_images
    >>> out = square_block_images(torch.zeros(1, 1, 8, 8), (2,), generator=torch.Generator().manual_seed(0))
    >>> out.shape, int((out[0, 1] > 0).sum())          # a 4×4 block (r = 2) in copy 1
    (torch.Size([1, 2, 1, 8, 8]), 16)
    """
    if x.dim() != 4:
        raise ValueError(f"square blocks need images B×C×H×W, got x of shape {tuple(x.shape)}")
    sizes = tuple(check_positive_int("sizes", s) for s in sizes)
    n, c, h, w = x.shape
    if min(sizes) < min_size or 2 * max(sizes) > min(h, w):
        raise ValueError(f"sizes must lie in [{min_size}, {min(h, w) // 2}] for {h}×{w} images; got {sizes}")
    smax = torch.tensor(((0,) if include_clean else ()) + sizes, device=x.device)
    s = len(smax)
    rows_ = torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols_ = torch.arange(w, device=x.device).view(1, 1, 1, w)
    if uniforms is None:
        u = torch.rand((4, n, s), generator=generator, device=x.device)
    else:
        if tuple(uniforms.shape) != (n, s, 4):
            raise ValueError(f"uniforms must have shape B×S×4 = {(n, s, 4)}, got {tuple(uniforms.shape)}")
        u = uniforms.to(x.device).permute(2, 0, 1)
    span = (smax - min_size + 1).clamp_min(1)
    r = min_size + (u[0] * span).floor().long().clamp_max(span - 1)
    ci = r + (u[1] * (h - 2 * r + 1)).floor().long()
    cj = r + (u[2] * (w - 2 * r + 1)).floor().long()
    value = low + (high - low) * u[3]
    inside = ((rows_ >= (ci - r)[..., None, None]) & (rows_ < (ci + r)[..., None, None])
              & (cols_ >= (cj - r)[..., None, None]) & (cols_ < (cj + r)[..., None, None]))
    inside &= (smax > 0).view(1, s, 1, 1)
    return torch.where(inside[:, :, None], value[:, :, None, None, None].to(x.dtype), x[:, None])


def square_block_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sizes: Sequence[int] = BLOCK_SIZES,
                      min_size: int = 2, low: float = 0.5, high: float = 1.0, seed: int = 0,
                      index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """correct[b, s] under one square block per image (s = 0: clean), see :func:`square_block_images`.

    Args:
        model, x, y: the classifier, images B×C×H×W, labels (B,).
        sizes, min_size, low, high: as in :func:`square_block_images`.
        seed, index: key image b's S×4 uniforms (stream ``"blocks"``).
        max_batch: cap on the rows per forward pass.

    Shape:
        x: (B, C, H, W); output: (B, 1 + len(sizes)).

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import SquareBlocks
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> from explainreg.metrics.functional.robustness import square_block_rows
    >>> square_block_rows(model, x, y, sizes=(2,)).shape
    torch.Size([4, 2])
    """
    x, y, _ = prepare(model, x, y)
    square_block_images(x[:1], sizes, min_size=min_size)  # validate early
    idx = as_index(index, len(x))
    n_copies = len(tuple(sizes)) + 1

    def make(i0, i1):
        u = keyed_draw("uniform", seed, idx[i0:i1], (n_copies, 4), "blocks", device=x.device)
        return square_block_images(x[i0:i1], sizes, min_size=min_size, low=low, high=high, uniforms=u)

    labels = forward_copies(model, make, len(x), len(sizes) + 1, None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


# ------------------------------------------------------------------------------------ max-sensitivity
def max_sensitivity_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                           method: str | Callable = "saliency", nr_samples: int = 200, lower_bound: float = 0.2,
                           upper_bound: float | None = None, seed: int = 0, index: torch.Tensor | None = None,
                           noise: torch.Tensor | None = None, max_batch: int = 4096,
                           options: dict[str, Any] | None = None) -> torch.Tensor:
    """Per image max_r ‖a(x) − a(x + ε_r)‖_F / ‖a(x)‖_F over ``nr_samples`` perturbations, as
        ``quantus.MaxSensitivity``.

        Yeh et al. (2019), "On the (in)fidelity and sensitivity of explanations".

        Args:
            model, x, y, attributions: the classifier, inputs, labels and the maps a(x).
            method: a name for :func:`explainreg.attribution.attribute` (with ``options``) or a callable
                ``(model, x, target) -> a``; explains the label y.
            nr_samples: the perturbations R per image.
            lower_bound, upper_bound: ε entries ~ U(−lower_bound, lower_bound), or U(lower_bound, upper_bound).
            seed, index: key image b's perturbations (stream ``"sensitivity"``).
            noise: R×B×... fixes the perturbations.
            max_batch: rows explained per call.
            options: the attribution method's options.

        Shape:
            x, attributions: (B, ...); output: (B,).

        Returns:
            The B sensitivities, NaN where ‖a(x)‖ = 0.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MaxSensitivity
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.attribution import attribute
        >>> from explainreg.metrics.functional.robustness import max_sensitivity_scores
        >>> s = attribute(model, x, y, "saliency")
        >>> max_sensitivity_scores(model, x, y, s, nr_samples=5).shape
        torch.Size([4])
    """
    x, y, a = prepare(model, x, y, attributions)
    explain = explainer(method, **(options or {}))
    b = x.shape[0]
    if noise is not None:
        if noise.shape[1:] != x.shape or noise.dim() != x.dim() + 1:
            raise ValueError(f"noise must have shape R×{tuple(x.shape)}, got {tuple(noise.shape)}")
        noise = noise.to(x.device, x.dtype)
        nr_samples = noise.shape[0]
    nr_samples = check_positive_int("nr_samples", nr_samples)
    if upper_bound is not None and upper_bound <= lower_bound:
        raise ValueError(f"upper_bound must exceed lower_bound ({lower_bound}), got {upper_bound}")
    idx = as_index(index, b)
    group = max(1, int(max_batch) // nr_samples)
    denom = a.flatten(1).norm(dim=1)
    out = []
    for i0 in range(0, b, group):
        i1 = min(b, i0 + group)
        if noise is not None:
            eps = noise[:, i0:i1]
        else:
            u = keyed_draw("uniform", seed, idx[i0:i1], (nr_samples,) + tuple(x.shape[1:]), "sensitivity",
                           device=x.device, dtype=x.dtype).transpose(0, 1)              # R×G×...
            if upper_bound is None:
                eps = (u * 2 - 1) * lower_bound
            else:
                eps = lower_bound + u * (upper_bound - lower_bound)
        xp = (x[None, i0:i1] + eps).flatten(0, 1)
        if isinstance(method, str):  # key stochastic attributions by (image position, sample)
            rows_index = (idx[i0:i1][None, :] * nr_samples + torch.arange(nr_samples)[:, None]).flatten()
            ap = explain(model, xp, y[i0:i1].repeat(nr_samples), index=rows_index)
        else:
            ap = explain(model, xp, y[i0:i1].repeat(nr_samples))
        ap = ap.reshape(nr_samples, i1 - i0, -1)
        diff = (a[i0:i1].flatten(1)[None] - ap).norm(dim=2)                 # R×G
        out.append((diff / denom[None, i0:i1]).amax(0))
    return torch.cat(out)


# ---------------------------------------------------------------------------------------- robustness
def gaussian_noise_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                         **settings: Any) -> Tensor:
    """correct[b, s] for x_b + σ_s·ε, σ ∈ ``(0, *sigmas)`` (the seed's robustness test 5).

    Args:
        model, x, y: as for every metric (no attributions).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``sigmas``, ``convention`` (``"explainreg"`` or ``"seed"``: the seed's +1 shift),
            ``seed``, ``index``, ``max_batch`` of :func:`explainreg.metrics.functional.robustness.gaussian_noise_rows`.

    Shape:
        output: (B, 1 + len(sigmas)); column 0 is the clean image.

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.gaussian_noise_curve(model, x, y, sigmas=(0.5,)).shape
    torch.Size([4, 2])
    """
    return checked_rows(gaussian_noise_rows, validate_args, model, x, y, **settings)


def gaussian_noise(model: nn.Module, x: Tensor, y: Tensor, *, sigmas: Sequence[float] = GAUSSIAN_SIGMAS,
                   reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over σ ∈ ``(0, *sigmas)`` (higher is better).

    Args:
        model, x, y: as for every metric (no attributions).
        sigmas: the noise levels (default 0.1, 0.5, 1, 1.5).
        settings: as in :func:`gaussian_noise_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, 1 + len(sigmas)).

    Returns:
        A 0-d float64 tensor (at most max σ), or the 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(0 <= MF.gaussian_noise(model, x, y) <= 1.5)
    True
    """
    return checked_value(gaussian_noise_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sigmas)),
                  reduction, validate_args, model, x, y, sigmas=sigmas, **settings)


def square_blocks_curve(model: nn.Module, x: Tensor, y: Tensor, *, validate_args: bool = True,
                        **settings: Any) -> Tensor:
    """correct[b, s] under one square block of maximal half-size s (the seed's robustness test 6).

    Args:
        model, x, y: as for every metric (no attributions).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``sizes``, ``min_size``, ``low``, ``high``, ``seed``, ``index``, ``max_batch`` of
            :func:`explainreg.metrics.functional.robustness.square_block_rows`.

    Shape:
        x: (B, C, H, W); output: (B, 1 + len(sizes)); column 0 is the clean image.

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.square_blocks_curve(model, x, y, sizes=(2,)).shape
    torch.Size([4, 2])
    """
    return checked_rows(square_block_rows, validate_args, model, x, y, **settings)


def square_blocks(model: nn.Module, x: Tensor, y: Tensor, *, sizes: Sequence[int] = BLOCK_SIZES,
                  reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Trapezoid AUC of the accuracy curve over the block half-size s ∈ ``(0, *sizes)`` (higher is better).

    Args:
        model, x, y: as for every metric (no attributions).
        sizes: the maximal half-sizes (default 6, 8, 10, 12; at most H/2).
        settings: as in :func:`square_blocks_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, 1 + len(sizes)).

    Returns:
        A 0-d float64 tensor (at most max s), or the 0/1 rows.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(0 <= MF.square_blocks(model, x, y, sizes=(2,)) <= 2)
    True
    """
    return checked_value(square_block_rows, lambda r: curve_value(r, (0.0,) + tuple(float(s) for s in sizes)), reduction,
                  validate_args, model, x, y, sizes=sizes, **settings)


def max_sensitivity(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                    convention: str = "explainreg", validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean over images of max_r ‖a(x) − a(x + ε_r)‖ / ‖a(x)‖ (Yeh et al. 2019, "On the (in)fidelity and sensitivity of
    explanations"; lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``method``, ``nr_samples``, ``lower_bound``, ``upper_bound``, ``seed``, ``index``,
            ``noise``, ``max_batch``, ``options`` of :func:`explainreg.metrics.functional.robustness.max_sensitivity_scores`.
        convention: ``"explainreg"`` or ``"quantus"``: the same computation (Quantus 0.6's defaults), as
            :class:`~explainreg.metrics.MaxSensitivity`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        A 0-d float64 tensor, or the B per-image sensitivities.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> from explainreg.attribution import attribute
    >>> s = attribute(model, x, y, "saliency")
    >>> MF.max_sensitivity(model, x, y, s, nr_samples=5, reduction="none").shape
    torch.Size([4])
    """
    check_convention("max_sensitivity", convention, QUANTUS_CONVENTIONS)
    return checked_value(max_sensitivity_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


__all__ = ["BLOCK_SIZES", "GAUSSIAN_SIGMAS", "gaussian_noise", "gaussian_noise_curve", "gaussian_noise_rows",
    "max_sensitivity", "max_sensitivity_scores", "square_block_images", "square_block_rows", "square_blocks",
    "square_blocks_curve"]
