"""Robustness: accuracy under Gaussian noise and under square occluding blocks (the seed's tests 5
and 6, methods.md A.5, B.1 §1.5), and the max-sensitivity of explanations (Yeh et al. 2019).

Every random draw of image b (its noise, its blocks, its perturbations) comes from a generator keyed
by the metric's ``seed`` and the image's position in the data set (``index[b]``, see
:mod:`explainreg._random`), so a value never depends on the batch size, ``max_batch`` or the number
of ``update`` calls."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from .._random import as_index, keyed_draw
from ..attribution import explainer
from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, Metric, MetricResult, check_convention,
                    check_fractions, check_positive_int, curve_result, deprecated_one_shot, prepare,
                    resolve_convention, scalar_result)
from ._stack import forward_copies
from .registry import register_metric

GAUSSIAN_SIGMAS = (0.1, 0.5, 1.0, 1.5)
BLOCK_SIZES = (6, 8, 10, 12)


def gaussian_noise_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        sigmas: Sequence[float] = GAUSSIAN_SIGMAS, convention: str = "explainreg", seed: int = 0,
                        index: torch.Tensor | None = None, max_batch: int = MAX_BATCH,
                        compat: bool | None = None) -> torch.Tensor:
    """correct[b, s] for x_b + σ_s·ε_{b,s} with σ ∈ (0, *sigmas) (σ = 0: the clean image), ε_b
    (S×C×H×W) ~ N(0, 1) from image b's generator (``seed``, ``index[b]``, stream ``"gaussian"``);
    ``compat=True`` adds the seed's +1 shift to every noisy image (not to the clean one)."""
    seed_quirk = resolve_convention("gaussian_noise_rows", convention, SEED_CONVENTIONS, compat) == "seed"
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
    """B×S×C×H×W copies of x, each with one square block (the seed's ``AddSquareMask``, methods.md
    B.1 §1.5 item 6): half-size r ~ U{min_size..s}, centre i, j ~ U{r..H−r} (resp. W), the
    (2r)×(2r) square [i−r, i+r)×[j−r, j+r) over all channels set to one value ~ U(low, high).
    With ``include_clean`` the first copy is x itself (s = 0). The four U(0, 1) numbers of copy
    (b, s) (half-size, row, column, value) are ``uniforms[b, s]`` (B×S×4) if given, else drawn with
    ``generator``."""
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
    """correct[b, s] under one square block per image (s = 0: clean), see :func:`square_block_images`;
    image b's S×4 uniforms come from its generator (``seed``, ``index[b]``, stream ``"blocks"``)."""
    x, y, _ = prepare(model, x, y)
    square_block_images(x[:1], sizes, min_size=min_size)  # validate early
    idx = as_index(index, len(x))
    n_copies = len(tuple(sizes)) + 1

    def make(i0, i1):
        u = keyed_draw("uniform", seed, idx[i0:i1], (n_copies, 4), "blocks", device=x.device)
        return square_block_images(x[i0:i1], sizes, min_size=min_size, low=low, high=high, uniforms=u)

    labels = forward_copies(model, make, len(x), len(sizes) + 1, None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


@register_metric("gaussian", aliases=("gauss", "gaussian_noise"))
class GaussianNoise(Metric):
    """Accuracy curve over σ ∈ {0, 0.1, 0.5, 1, 1.5} and its trapezoid AUC (max 1.5; higher is better)."""

    name = "gaussian"
    higher_is_better = True
    needs_attributions = False

    conventions = SEED_CONVENTIONS

    def __init__(self, sigmas: Sequence[float] = GAUSSIAN_SIGMAS, convention: str = "explainreg", seed: int = 0,
                 max_batch: int = MAX_BATCH, *, compat: bool | None = None) -> None:
        super().__init__()
        self.sigmas = check_fractions("sigmas", sigmas, 0.0, float("inf"))
        self.convention = resolve_convention("GaussianNoise", convention, self.conventions, compat, stacklevel=4)
        self.seed, self.max_batch = int(seed), check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return gaussian_noise_rows(model, x, y, sigmas=self.sigmas, convention=self.convention, seed=self.seed,
                                   index=self.batch_index, max_batch=self.max_batch)

    def summarize(self, rows):
        return curve_result(self, rows, (0.0,) + self.sigmas, step_name="sigma", curve_name="accuracy")


@register_metric("blocks", aliases=("square_blocks",))
class SquareBlocks(Metric):
    """Accuracy curve over the maximal block half-size s ∈ {0, 6, 8, 10, 12} and its trapezoid AUC
    (max 12; higher is better)."""

    name = "blocks"
    higher_is_better = True
    needs_attributions = False

    def __init__(self, sizes: Sequence[int] = BLOCK_SIZES, min_size: int = 2, seed: int = 0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.sizes = tuple(check_positive_int("sizes", s) for s in sizes)
        self.min_size, self.seed, self.max_batch = int(min_size), int(seed), check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return square_block_rows(model, x, y, sizes=self.sizes, min_size=self.min_size, seed=self.seed,
                                 index=self.batch_index, max_batch=self.max_batch)

    def summarize(self, rows):
        return curve_result(self, rows, (0.0,) + tuple(float(s) for s in self.sizes), step_name="max_block_size",
                            curve_name="accuracy")


gaussian_noise = deprecated_one_shot(GaussianNoise, "gaussian_noise")
square_blocks = deprecated_one_shot(SquareBlocks, "square_blocks")


# ------------------------------------------------------------------------------------ max-sensitivity
def max_sensitivity_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                           method: str | Callable = "saliency", nr_samples: int = 200, lower_bound: float = 0.2,
                           upper_bound: float | None = None, seed: int = 0, index: torch.Tensor | None = None,
                           noise: torch.Tensor | None = None, max_batch: int = 4096,
                           options: dict[str, Any] | None = None) -> torch.Tensor:
    """Per image max_r ‖a(x) − a(x + ε_r)‖_F / ‖a(x)‖_F over ``nr_samples`` perturbations ε_r with
    entries ~ U(−lower_bound, lower_bound) (or U(lower_bound, upper_bound)), as ``quantus.MaxSensitivity``;
    ``a(·)`` = ``method`` (a name for :func:`explainreg.attribution.attribute` with ``options``, or a
    callable ``(model, x, target) -> a``) for the label y. All perturbed copies of a group of images
    are explained in one call. ``noise`` (R×B×...) fixes the perturbations; otherwise image b's R
    perturbations come from its generator (``seed``, ``index[b]``, stream ``"sensitivity"``).
    NaN where ‖a(x)‖ = 0."""
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


@register_metric("max_sensitivity")
class MaxSensitivity(Metric):
    """Mean over images of the max-sensitivity (lower is better). ``convention``: ``"explainreg"``
    and ``"quantus"`` are the same computation (Quantus 0.6's defaults: 200 samples of U(−0.2, 0.2),
    Frobenius norms, no normalisation), accepted for symmetry with the other metrics. ``options``
    are passed to the attribution ``method`` and checked against the options it accepts."""

    name = "max_sensitivity"
    higher_is_better = False
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, method: str | Callable = "saliency", nr_samples: int = 200, lower_bound: float = 0.2,
                 upper_bound: float | None = None, seed: int = 0, max_batch: int = 4096,
                 convention: str = "explainreg", **options: Any) -> None:
        super().__init__()
        self.method, self.options = method, options
        self.convention = check_convention("MaxSensitivity", convention, self.conventions)
        self.nr_samples = check_positive_int("nr_samples", nr_samples)
        self.lower_bound, self.upper_bound, self.seed = float(lower_bound), upper_bound, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)
        explainer(method, **options)  # validate the name and the options early

    def per_image(self, model, x, y, attributions):
        return max_sensitivity_scores(model, x, y, attributions, method=self.method, nr_samples=self.nr_samples,
                                      lower_bound=self.lower_bound, upper_bound=self.upper_bound,
                                      seed=self.seed, index=self.batch_index, max_batch=self.max_batch,
                                      options=self.options)

    def summarize(self, rows):
        return scalar_result(self, rows)


max_sensitivity = deprecated_one_shot(MaxSensitivity, "max_sensitivity")


__all__ = ["BLOCK_SIZES", "GAUSSIAN_SIGMAS", "GaussianNoise", "MaxSensitivity", "SquareBlocks", "gaussian_noise",
           "gaussian_noise_rows", "max_sensitivity", "max_sensitivity_scores", "square_block_images",
           "square_block_rows", "square_blocks"]
