"""Removal (perturbation) metrics as functions of one batch: MoRF / LeRF, the seed's cumulative
faithfulness, the Bhatt et al. faithfulness correlation, pixel flipping, region perturbation and SGT's masked accuracy
(the seed code of "Learning interpretable explanations by optimising saliency maps at training time",
IPL-UV xAI-constrained-losses; Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning interpretability by
saliency guided training"; Samek et al. 2017; Bach et al. 2015; Bhatt, Weller & Moura 2020). Every perturbed
copy of every image of a batch goes through one stack of forward passes chunked by the activation budget
(``max_batch`` caps the rows).

Rankings (pixel flipping, region perturbation, masked accuracy) break ties by a seeded random order
per image (:func:`explainreg._random.descending_ranks`, keyed by ``seed`` and the image's position
in the data set), not by raster order. The seed's percentile rules (MoRF, LeRF, faithfulness, ROAR)
need no tie-break: entries tied in value are removed together (a > q). Random subsets
(faithfulness correlation) and random region orders are drawn per image the same way, so no value
depends on the batching.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..._random import as_index, descending_ranks, keyed_draw
from ..._validation import check_choice
from ...inputs import series_padding
from .._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, SEED_PERCENTILES, above_percentile_masks,
                     check_convention, check_fractions, check_positive_int, curve_value, forward_chunks,
                     prepare, scores_value, trapezoid)
from .._stack import fill_value, forward_copies, masked_copies, pearson_rows
from ._settings import checked_rows, checked_value

Tensor = torch.Tensor


def _percentiles(values: Sequence[float]) -> tuple[float, ...]:
    return check_fractions("percentiles", values, 0.0, 100.0)


# --------------------------------------------------------------------------------- padded series
def series_real(like: torch.Tensor | None, padding_mask: Any = None, lengths: Any = None) -> torch.Tensor | None:
    """The real steps of a padded series batch as a B×1×T float tensor (1 = real), from ``padding_mask``
    (B×T, True = a real step) or ``lengths`` (B); None when neither is given.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import series_real
    >>> series_real(torch.zeros(2, 3, 4), lengths=torch.tensor([4, 2])).tolist()
    [[[1.0, 1.0, 1.0, 1.0]], [[1.0, 1.0, 0.0, 0.0]]]
    """
    if padding_mask is None and lengths is None:
        return None
    if like is None or like.dim() != 3:
        shape = None if like is None else tuple(like.shape)
        raise ValueError(f"padding_mask / lengths mark the padded steps of series batches B×C×T; got inputs of shape "
                         f"{shape}. Leave them out for images and tabular data (token batches: explainreg.metrics.text)")
    return series_padding(like, {"padding_mask": padding_mask, "lengths": lengths}).float()[:, None, :]


def _zero_padding(a: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """``a`` with 0 at the padded steps (identity without padding)."""
    return a if real is None else a * real.to(a.device, a.dtype)


def _keep_real(masks: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """Removal ``masks`` (B×S×…) that never remove a padded step."""
    return masks if real is None else masks & (real.to(masks.device)[:, None] > 0)


# ------------------------------------------------------------------------------------------ MoRF / LeRF
def morf_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attributions: torch.Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH, real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), c* = argmax f(x).

        The seed's procedure (the IPL-UV xAI-constrained-losses code, "Learning interpretable explanations
        by optimising saliency maps at training time").

        Args:
            model, x, y, attributions: the classifier, inputs B×..., labels (B,) (may be ``None``: c* is the
                prediction) and the maps (the shape of x, or B×1×H×W).
            percentiles: the steps p_s; at step s, q = p_s-th percentile of the image's non-zero
                attributions and the entries with a > q are set to ``baseline``.
            baseline: the fill value (a number, ``"mean"``, ``"black"`` or a tensor).
            order: ``"morf"``, or ``"lerf"`` (ranks by −a: least relevant, and zero attributions, first).
            max_batch: cap on the rows per forward pass.
            real: for padded series, the real steps (B×1×T, :func:`series_real`): padding is never removed
                and its attributions do not enter the percentiles.

        Shape:
            x: (B, ...); output: (B, S), S = len(percentiles).

        Returns:
            The ratios; an image with all-zero attributions loses nothing (ratios 1).

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MoRF
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import morf_rows
        >>> morf_rows(model, x, y, a, percentiles=(90, 0)).shape
        torch.Size([4, 2])
    """
    check_choice("order", order, ("morf", "lerf"))
    x, _, a = prepare(model, x, y, attributions)
    ps = _percentiles(percentiles)
    p0 = forward_chunks(model, x, max_batch, output="prob")
    conf, c_star = p0.max(1)
    a = _zero_padding(a, real)
    masks = _keep_real(above_percentile_masks(a if order == "morf" else -a, ps), real)
    p = forward_copies(model, masked_copies(x, masks, fill_value(x, baseline)), len(x), len(ps), c_star,
                       max_batch=max_batch)
    return p / conf[:, None]


def _morf_steps(percentiles: Sequence[float]) -> tuple[list[int], list[float]]:
    """The column order that sorts the fractions removed 1 − p/100 increasingly, and those fractions."""
    steps = [1.0 - p / 100.0 for p in percentiles]
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return order, [steps[i] for i in order]


def morf_value(rows: torch.Tensor, percentiles: Sequence[float] = SEED_PERCENTILES) -> torch.Tensor:
    """MoRF / LeRF AUC: ∫ (1 − mean_b d_b) over the fraction removed 1 − p/100 (trapezoid rule).

    Args:
        rows: the per-image ratios d (B×S), the columns in the order of ``percentiles``.
        percentiles: the steps p_s.

    Shape:
        rows: (B, S); output: ().

    Returns:
        A 0-d float64 tensor.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import morf_value
    >>> morf_value(torch.tensor([[1.0, 0.5, 0.0]]), percentiles=(100, 50, 0))   # 1 − d: 0, .5, 1 over 0, .5, 1
    tensor(0.5000, dtype=torch.float64)
    """
    order, steps = _morf_steps(percentiles)
    return curve_value(rows[:, order], steps, transform=lambda c: 1.0 - c)


# ------------------------------------------------------------------------- seed's cumulative faithfulness
def faithfulness_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                        percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0,
                        max_batch: int = MAX_BATCH, real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image Pearson corr over the steps between S_p = Σ a over removed entries and Δ_p = p(y|x) − p(y|x masked).

        The seed's test 2 (the IPL-UV xAI-constrained-losses code), in the spirit of Bhatt et al. (2020).

        Args:
            model, x, y, attributions: as for :func:`morf_rows` (y required).
            percentiles, baseline, max_batch, real: the cumulative removal of a > q_p, as in :func:`morf_rows`.

        Shape:
            x: (B, ...); output: (B,).

        Returns:
            The B correlations, NaN where either series is constant.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import Faithfulness
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import faithfulness_scores
        >>> faithfulness_scores(model, x, y, a).shape
        torch.Size([4])
    """
    x, y, a = prepare(model, x, y, attributions)
    ps = _percentiles(percentiles)
    p0 = forward_chunks(model, x, max_batch, output="prob", index=y)
    a = _zero_padding(a, real)
    masks = _keep_real(above_percentile_masks(a, ps), real)
    p = forward_copies(model, masked_copies(x, masks, fill_value(x, baseline)), len(x), len(ps), y,
                       max_batch=max_batch)
    removed = (a.flatten(1)[:, None, :] * masks.flatten(2)).sum(-1)
    return pearson_rows(removed, p0[:, None] - p)


# ------------------------------------------------------------------- Bhatt et al. faithfulness correlation
def random_subsets(n_images: int, n_features: int, nr_runs: int, subset_size: int,
                   generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """B×R×k indices of ``subset_size`` distinct features per run and image (uniform, without replacement).

    Args:
        n_images, n_features, nr_runs, subset_size: B, N, R and k.
        generator, device: the random source and the device of the result.

    Shape:
        output: (B, R, k), int64.

    Returns:
        The indices.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import random_subsets
    >>> s = random_subsets(2, 10, 3, 4, generator=torch.Generator().manual_seed(0))
    >>> s.shape, all(len(set(r.tolist())) == 4 for r in s.flatten(0, 1))
    (torch.Size([2, 3, 4]), True)
    """
    keys = torch.rand((n_images, nr_runs, n_features), generator=generator, device=device)
    return keys.topk(subset_size, dim=-1).indices


def keyed_subsets(seed: int, index: torch.Tensor, n_features: int, nr_runs: int, subset_size: int,
                  device=None) -> torch.Tensor:
    """As :func:`random_subsets`, image b's subsets drawn from its own generator keyed by (``seed``, ``index[b]``,
    stream
    ``"subsets"``).

    Args:
        seed: the metric's seed.
        index: the images' positions in the data set (B,).
        n_features, nr_runs, subset_size: N, R and k.
        device: the device of the result.

    Shape:
        index: (B,); output: (B, R, k).

    Returns:
        The indices (the top-k of R×N keyed uniform keys), the same for an image whatever its batch.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import keyed_subsets
    >>> both = keyed_subsets(0, torch.tensor([5, 6]), 10, 3, 4)
    >>> torch.equal(both[1], keyed_subsets(0, torch.tensor([6]), 10, 3, 4)[0])
    True
    """
    keys = keyed_draw("uniform", seed, index, (nr_runs, n_features), "subsets", device=device)
    return keys.topk(subset_size, dim=-1).indices


def faithfulness_correlation_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                    attributions: torch.Tensor, *, nr_runs: int = 100, subset_size: int = 224,
                                    convention: str = "explainreg", baseline: Any = None,
                                    subsets: torch.Tensor | None = None, seed: int = 0,
                                    index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Faithfulness correlation per image: over ``nr_runs`` random subsets S of ``subset_size`` features, Pearson
        corr(Σ_{i∈S} a_i, f_y(x) − f_y(x with S set to the baseline)).

        Bhatt, Weller & Moura (2020), "Evaluating and aggregating feature-based model explanations".

        Args:
            model, x, y, attributions: the classifier, inputs, labels and maps.
            nr_runs, subset_size: R subsets of k features.
            convention: ``"explainreg"`` (f = softmax probability, baseline 0) or ``"quantus"`` (f = logit,
                baseline the image's minimum, "black", as ``quantus.FaithfulnessCorrelation``).
            baseline: overrides the convention's fill value.
            subsets: B×R×k indices fix the subsets; otherwise :func:`keyed_subsets` (``seed``, ``index``).
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, ...); output: (B,).

        Returns:
            The B correlations.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import FaithfulnessCorrelation
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import faithfulness_correlation_scores
        >>> faithfulness_correlation_scores(model, x, y, a, nr_runs=10, subset_size=4).shape
        torch.Size([4])
    """
    check_convention("faithfulness_correlation_scores", convention, QUANTUS_CONVENTIONS)
    x, y, a = prepare(model, x, y, attributions)
    b = x.shape[0]
    flat_x, flat_a = x.flatten(1), a.flatten(1)
    n = flat_x.shape[1]
    if subsets is None:
        check_positive_int("nr_runs", nr_runs)
        check_positive_int("subset_size", subset_size)
        if subset_size > n:
            raise ValueError(f"subset_size must be at most the number of features ({n}), got {subset_size}")
        subsets = keyed_subsets(seed, as_index(index, b), n, nr_runs, subset_size, x.device)
    elif subsets.dim() != 3 or subsets.shape[0] != b:
        raise ValueError(f"subsets must have shape B×R×k = ({b}, R, k), got {tuple(subsets.shape)}")
    subsets = subsets.to(x.device)
    runs = subsets.shape[1]
    output = "logit" if convention == "quantus" else "prob"
    if baseline is None:
        baseline = "black" if convention == "quantus" else 0.0
    fill = fill_value(flat_x, baseline)                                     # B×1×1 (or B×1×N)
    masks = torch.zeros((b, runs, n), dtype=torch.bool, device=x.device).scatter_(2, subsets, True)
    f0 = forward_chunks(model, x, max_batch, output=output, index=y)

    def make(i0, i1):
        f = fill[i0:i1] if fill.shape[0] == b else fill
        return torch.where(masks[i0:i1], f, flat_x[i0:i1, None]).view((i1 - i0, runs) + tuple(x.shape[1:]))

    f = forward_copies(model, make, b, runs, y, max_batch=max_batch, output=output)
    sums = flat_a.gather(1, subsets.flatten(1)).view(b, runs, -1).sum(-1)
    return pearson_rows(sums, f0[:, None] - f)


# ------------------------------------------------------------------------------------- pixel flipping
def per_image_auc_value(rows: torch.Tensor) -> torch.Tensor:
    """The mean over images of each curve's trapezoid AUC with unit spacing (Quantus's ``get_auc_score``).

    Args:
        rows: the per-image curves.

    Shape:
        rows: (B, S); output: ().

    Returns:
        A 0-d float64 tensor: pixel flipping's and region perturbation's summary.

    Example::

    >>> import torch; from explainreg.metrics.functional.perturbation import per_image_auc_value
    >>> per_image_auc_value(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    tensor(0.7500, dtype=torch.float64)
    """
    return trapezoid(rows.double(), dim=1).mean()


def pixel_flipping_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         features_in_step: int = 1, convention: str = "explainreg", baseline: Any = None,
                         seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Pixel flipping: p_y (softmax) after each step of setting the most relevant features to the baseline.

        Bach et al. (2015), "On pixel-wise explanations for non-linear classifier decisions by layer-wise
        relevance propagation".

        Args:
            model, x, y, attributions: the classifier, inputs, labels and maps.
            features_in_step: k features flipped per step; after step j the first (j+1)·k features in
                decreasing a (ties in a seeded random order per image) are set to the baseline.
            convention: ``"explainreg"`` (baseline 0) or ``"quantus"`` (the image minimum, "black").
            baseline: overrides the convention's fill value.
            seed, index: key the tie order.
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, ...) with N features; output: (B, ⌈N/k⌉).

        Returns:
            p_y after each step.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import PixelFlipping
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import pixel_flipping_rows
        >>> pixel_flipping_rows(model, x, y, a, features_in_step=4).shape
        torch.Size([4, 4])
    """
    check_convention("pixel_flipping_curve", convention, QUANTUS_CONVENTIONS)
    k = check_positive_int("features_in_step", features_in_step)
    x, y, a = prepare(model, x, y, attributions)
    flat_x = x.flatten(1)
    n = flat_x.shape[1]
    steps = math.ceil(n / k)
    ranks = descending_ranks(a.flatten(1).double(), seed, as_index(index, len(x)))
    limits = torch.arange(1, steps + 1, device=x.device) * k
    output = "prob"  # Quantus's PixelFlipping also defaults to softmax=True
    if baseline is None:
        baseline = "black" if convention == "quantus" else 0.0
    fill = fill_value(flat_x, baseline)

    def make(i0, i1):
        masks = ranks[i0:i1, None, :] < limits[None, :, None]
        f = fill[i0:i1] if fill.shape[0] == x.shape[0] else fill
        return torch.where(masks, f, flat_x[i0:i1, None]).view((i1 - i0, steps) + tuple(x.shape[1:]))

    return forward_copies(model, make, len(x), steps, y, max_batch=max_batch, output=output)


# -------------------------------------------------------------------------------- region perturbation
def _pad_sizes(dim: int, patch: int) -> tuple[int, int]:
    total = (patch - dim % patch) % patch
    return total // 2, total - total // 2


def region_perturbation_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                              patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                              convention: str = "explainreg", baseline: Any = None, seed: int = 0,
                              index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Region perturbation: p_y(x) − p_y(x perturbed) (softmax) after each of the first ``regions_evaluation`` patches
        set to the baseline.

        Samek et al. (2017), "Evaluating the visualization of what a deep neural network has learned".

        Args:
            model, x, y, attributions: the classifier, images B×C×H×W, labels and maps.
            patch_size: the image (padded to a multiple, as Quantus does) is cut into non-overlapping
                patches ranked by their attribution sum.
            order: ``"morf"`` (decreasing), ``"lerf"`` (increasing) or ``"random"`` (a seeded order per image).
            regions_evaluation: the patches removed, one after the other.
            convention: ``"explainreg"`` (baseline 0) or ``"quantus"`` (the image minimum, "black").
            baseline: overrides the convention's fill value.
            seed, index: key the tie and random orders.
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, C, H, W); output: (B, S), S = min(regions_evaluation, number of patches).

        Returns:
            The drop of p_y after each patch.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import RegionPerturbation
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import region_perturbation_rows
        >>> region_perturbation_rows(model, x, y, a, patch_size=2).shape      # 4 patches of 2×2
        torch.Size([4, 4])
    """
    check_convention("region_perturbation_curve", convention, QUANTUS_CONVENTIONS)
    check_choice("order", order, ("morf", "lerf", "random"))
    patch = check_positive_int("patch_size", patch_size)
    check_positive_int("regions_evaluation", regions_evaluation)
    x, y, a = prepare(model, x, y, attributions)
    if x.dim() != 4:
        raise ValueError(f"region perturbation needs images B×C×H×W, got x of shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    (pt, pb), (pl, pr) = _pad_sizes(h, patch), _pad_sizes(w, patch)
    a_pad = torch.nn.functional.pad(a, (pl, pr, pt, pb))
    nh, nw = a_pad.shape[2] // patch, a_pad.shape[3] // patch
    sums = a_pad.reshape(b, c, nh, patch, nw, patch).sum((1, 3, 5)).flatten(1)          # B×P
    idx = as_index(index, b)
    if order == "random":
        keys = keyed_draw("uniform", seed, idx, (sums.shape[1],), "order", device=x.device)
    else:
        keys = sums.double() if order == "morf" else -sums.double()
    ranks = descending_ranks(keys, seed, idx)                                           # B×P
    # Patch id of every original pixel.
    rows_id = (torch.arange(h, device=x.device) + pt) // patch
    cols_id = (torch.arange(w, device=x.device) + pl) // patch
    pid = (rows_id[:, None] * nw + cols_id[None, :]).flatten()                          # H·W
    pixel_rank = ranks[:, pid].view(b, 1, 1, h, w)                                       # B×1×1×H×W
    steps = min(int(regions_evaluation), nh * nw)
    limits = torch.arange(steps, device=x.device).view(1, steps, 1, 1, 1)
    output = "prob"  # Quantus's RegionPerturbation also defaults to softmax=True
    if baseline is None:
        baseline = "black" if convention == "quantus" else 0.0
    fill = fill_value(x, baseline)
    f0 = forward_chunks(model, x, max_batch, output=output, index=y)

    def make(i0, i1):
        masks = pixel_rank[i0:i1] <= limits
        f = fill[i0:i1] if fill.shape[0] == b else fill
        return torch.where(masks, f, x[i0:i1, None])

    f = forward_copies(model, make, b, steps, y, max_batch=max_batch, output=output)
    return f0[:, None] - f


# -------------------------------------------------------------------------------- SGT masked accuracy
SGT_DROPS = tuple(range(0, 100, 10))


class _Squeeze1(nn.Module):
    """Runs a series model on B×1×C×T copies (the series as one-channel "images")."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(1))


def masked_accuracy_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         drops: Sequence[float] = SGT_DROPS, background: Any = "corner",
                         convention: str = "explainreg", seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Masked accuracy: correct[b, s] after the k = ⌊H·W·d_s/100⌋ pixels with the largest channel-mean |a| are replaced
        by the background.

        Ismail, Corrada Bravo & Feizi (2021), "Improving deep learning interpretability by saliency
        guided training" (its masked-accuracy evaluation).

        Args:
            model, x, y, attributions: the classifier, images B×C×H×W (or series B×C×T), labels and maps.
            drops: the percentages d dropped.
            background: ``"corner"`` (each image's own pixel [c, 0, 0]; for series x[b, c, 0]), a number or a tensor.
            convention: ``"explainreg"`` or ``"seed"`` (the seed code's k = max(1, …): one pixel is masked
                even at d = 0).
            seed, index: key the tie order (a seeded random order per image).
            max_batch: cap on the rows per forward pass.

        Shape:
            x: (B, C, H, W) or (B, C, T) (every (channel, step) entry a feature, k = ⌊C·T·d/100⌋); output: (B,
                len(drops)).

        Returns:
            0/1 float64 correctness.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MaskedAccuracy
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.metrics.functional.perturbation import masked_accuracy_rows
        >>> masked_accuracy_rows(model, x, y, a, drops=(0, 50)).shape
        torch.Size([4, 2])
    """
    seed_quirk = check_convention("masked_accuracy_rows", convention, SEED_CONVENTIONS) == "seed"
    x, y, a = prepare(model, x, y, attributions)
    ds = check_fractions("drops", drops, 0.0, 100.0)
    series = x.dim() == 3
    if series:
        x, a = x[:, None], a[:, None]                      # B×1×C×T: each entry of C×T is one "pixel"
        model = _Squeeze1(model)
    elif x.dim() != 4:
        raise ValueError(f"masked accuracy needs images B×C×H×W or series B×C×T, got x of shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    score = a.abs().mean(1).flatten(1)                                             # B×HW
    ranks = descending_ranks(score.double(), seed, as_index(index, b))
    ks = [int(h * w * d / 100.0) for d in ds]
    if seed_quirk:
        ks = [max(1, k) for k in ks]
    limits = torch.tensor(ks, device=x.device).view(1, -1, 1, 1, 1)
    pixel_rank = ranks.view(b, 1, 1, h, w)
    if isinstance(background, str) and background == "corner" and series:
        fill = x[:, :, :, :1][:, None]                                               # B×1×1×C×1: x[b, c, 0]
    elif isinstance(background, str) and background == "corner":
        fill = x[:, :, :1, :1][:, None]                                              # B×1×C×1×1
    else:
        fill = fill_value(x, background)

    def make(i0, i1):
        f = fill[i0:i1] if fill.shape[0] == b else fill
        return torch.where(pixel_rank[i0:i1] < limits, f, x[i0:i1, None])

    labels = forward_copies(model, make, b, len(ds), None, max_batch=max_batch, output="label")
    return (labels == y[:, None]).double()


# ------------------------------------------------------------------------------------------- removal
def morf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH, validate_args: bool = True) -> Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), c* = argmax f(x).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles: the steps p_s; at step s the entries above the p_s-th percentile of the image's
            non-zero attributions are set to ``baseline`` (default: the seed's 20 percentiles).
        baseline: the fill value (a number, ``"mean"``, ``"black"``, or a tensor).
        order: ``"morf"`` (most relevant first) or ``"lerf"`` (least relevant first: ranks by −a).
        max_batch: cap on the rows per forward pass.
        validate_args: ``False`` skips the probe forward pass.

    Shape:
        x: (B, ...); attributions: (B, ...); output: (B, S), S = len(percentiles).

    Returns:
        A float tensor of ratios, column s for ``percentiles[s]``.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.morf_curve(model, x, y, a, percentiles=(90, 50, 0)).shape
    torch.Size([4, 3])
    """
    return checked_rows(morf_rows, validate_args, model, x, y, attributions, percentiles=percentiles, baseline=baseline,
                 order=order, max_batch=max_batch)


def morf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """MoRF AUC = ∫ (1 − mean_b d_b) d(fraction removed), fraction removed = 1 − p/100 (higher is better).

    The seed's procedure (the IPL-UV xAI-constrained-losses code of "Learning interpretable
    explanations by optimising saliency maps at training time"), after Samek et al. (2017).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles, baseline, max_batch: as in :func:`morf_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () with ``reduction="mean"``, (B, S) with ``"none"``.

    Returns:
        The AUC as a 0-d float64 tensor (what :class:`~explainreg.metrics.MoRF` reports), or the B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> v = MF.morf(model, x, y, a); v.shape, v.dtype
    (torch.Size([]), torch.float64)
    >>> MF.morf(model, x, y, a, reduction="none").shape
    torch.Size([4, 20])
    """
    return checked_value(morf_rows, lambda r: morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, max_batch=max_batch)


def lerf_curve(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, **settings: Any) -> Tensor:
    """Per-image LeRF ratios: :func:`morf_curve` with the least relevant entries (−a) removed first.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`morf_curve` (without ``order``).

    Shape:
        output: (B, S).

    Returns:
        The B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.lerf_curve(model, x, y, a).shape
    torch.Size([4, 20])
    """
    return morf_curve(model, x, y, attributions, order="lerf", **settings)


def lerf(model: nn.Module, x: Tensor, y: Tensor | None, attributions: Tensor, *,
         percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, max_batch: int = MAX_BATCH,
         reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """LeRF AUC of 1 − mean d with the least relevant entries removed first (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        percentiles, baseline, max_batch: as in :func:`morf_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the B×S ratios.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> bool(MF.lerf(model, x, y, a) >= 0)
    True
    """
    return checked_value(morf_rows, lambda r: morf_value(r, percentiles), reduction, validate_args, model, x, y,
                  attributions, percentiles=percentiles, baseline=baseline, order="lerf", max_batch=max_batch)


def faithfulness(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                 validate_args: bool = True, **settings: Any) -> Tensor:
    """The seed's faithfulness: mean over images of corr(Σ removed a, p(y|x) − p(y|x masked)) over the percentile steps.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``percentiles``, ``baseline``, ``max_batch`` of
            :func:`explainreg.metrics.functional.perturbation.faithfulness_scores`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        The NaN-safe mean correlation (0-d float64), or the B per-image correlations (NaN where undefined).

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> r = MF.faithfulness(model, x, y, a, reduction="none"); r.shape, bool(((r >= -1) & (r <= 1)).all())
    (torch.Size([4]), True)
    """
    return checked_value(faithfulness_scores, scores_value, reduction, validate_args, model, x, y, attributions,
                  **settings)


def faithfulness_correlation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                             reduction: str = "mean", validate_args: bool = True, **settings: Any) -> Tensor:
    """Faithfulness correlation (Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model
    explanations"), mean over images.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: ``nr_runs``, ``subset_size``, ``convention`` (``"explainreg"`` or ``"quantus"``),
            ``baseline``, ``subsets``, ``seed``, ``index``, ``max_batch`` of
            :func:`explainreg.metrics.functional.perturbation.faithfulness_correlation_scores`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B,).

    Returns:
        The NaN-safe mean Pearson correlation (0-d float64), or the B per-image ones.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.faithfulness_correlation(model, x, y, a, nr_runs=10, subset_size=4, reduction="none").shape
    torch.Size([4])
    """
    return checked_value(faithfulness_correlation_scores, scores_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def pixel_flipping_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                         validate_args: bool = True, **settings: Any) -> Tensor:
    """p_y after each pixel-flipping step (Bach et al. 2015, "On pixel-wise explanations for non-linear classifier
    decisions by layer-wise relevance propagation").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``features_in_step``, ``convention``, ``baseline``, ``seed``, ``index``, ``max_batch``
            of :func:`explainreg.metrics.functional.perturbation.pixel_flipping_rows`.

    Shape:
        output: (B, ⌈N/k⌉), N features per image, k = ``features_in_step``.

    Returns:
        The softmax probability of y after each step.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.pixel_flipping_curve(model, x, y, a, features_in_step=4).shape
    torch.Size([4, 4])
    """
    return checked_rows(pixel_flipping_rows, validate_args, model, x, y, attributions, **settings)


def pixel_flipping(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                   validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the pixel-flipping curve (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`pixel_flipping_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, ⌈N/k⌉).

    Returns:
        A 0-d float64 tensor, or the per-image curves.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.pixel_flipping(model, x, y, a, features_in_step=4).shape
    torch.Size([])
    """
    return checked_value(pixel_flipping_rows, per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def region_perturbation_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                              validate_args: bool = True, **settings: Any) -> Tensor:
    """f_y(x) − f_y(x̃) after each removed region (Samek et al. 2017, "Evaluating the visualization of what a deep
    neural
    network has learned").

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``patch_size``, ``order``, ``regions_evaluation``, ``convention``, ``baseline``,
            ``seed``, ``index``, ``max_batch`` of :func:`explainreg.metrics.functional.perturbation.region_perturbation_rows`.

    Shape:
        x: (B, C, H, W); output: (B, S), S = min(regions_evaluation, number of patches).

    Returns:
        The drop of p_y after each patch.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.region_perturbation_curve(model, x, y, a, patch_size=2, regions_evaluation=3).shape
    torch.Size([4, 3])
    """
    return checked_rows(region_perturbation_rows, validate_args, model, x, y, attributions, **settings)


def region_perturbation(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *, reduction: str = "mean",
                        validate_args: bool = True, **settings: Any) -> Tensor:
    """Mean per-image AUC (unit spacing) of the region-perturbation curve (higher is better for ``morf``).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        settings: as in :func:`region_perturbation_curve`.
        reduction: ``"mean"`` (the metric's value) or ``"none"`` (the per-image rows).
        validate_args: ``False`` skips the one-row probe forward pass that checks logits and labels.

    Shape:
        output: () or (B, S).

    Returns:
        A 0-d float64 tensor, or the per-image curves.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.region_perturbation(model, x, y, a, patch_size=2).shape
    torch.Size([])
    """
    return checked_value(region_perturbation_rows, per_image_auc_value, reduction, validate_args, model, x, y,
                  attributions, **settings)


def masked_accuracy_curve(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                          validate_args: bool = True, **settings: Any) -> Tensor:
    """Saliency-guided training's masked accuracy (Ismail, Corrada Bravo & Feizi 2021, "Improving deep learning
    interpretability by saliency guided training"): correct[b, s] after the top ``drops[s]`` % of the features are set
    to the background.

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        validate_args: ``False`` skips the probe forward pass.
        settings: ``drops``, ``background``, ``convention`` (``"explainreg"`` or ``"seed"``), ``seed``,
            ``index``, ``max_batch`` of :func:`explainreg.metrics.functional.perturbation.masked_accuracy_rows`.

    Shape:
        x: (B, C, H, W) or series (B, C, T); output: (B, S), S = len(drops).

    Returns:
        0/1 float64 correctness.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import functional as MF
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> MF.masked_accuracy_curve(model, x, y, a, drops=(0, 50)).shape
    torch.Size([4, 2])
    """
    return checked_rows(masked_accuracy_rows, validate_args, model, x, y, attributions, **settings)


def masked_accuracy(model: nn.Module, x: Tensor, y: Tensor, attributions: Tensor, *,
                    drops: Sequence[float] = SGT_DROPS, reduction: str = "mean", validate_args: bool = True,
                    **settings: Any) -> Tensor:
    """Trapezoid AUC of the mean masked-accuracy curve over the fraction dropped d/100 (lower is better).

    Args:
        model: the classifier (B×... → B×K logits); run in eval mode without gradients.
        x: the inputs, B×C×H×W images (or any B×... the metric accepts).
        y: the labels (B,), int64.
        attributions: the maps to evaluate, the shape of x (or B×1×H×W, broadcast over channels).
        drops: the percentages dropped (default 0, 10, …, 90).
        settings: as in :func:`masked_accuracy_curve`.
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
    >>> MF.masked_accuracy(model, x, y, a, drops=(0, 50, 100), reduction="none").shape
    torch.Size([4, 3])
    """
    return checked_value(masked_accuracy_rows, lambda r: curve_value(r, [d / 100.0 for d in drops]), reduction,
                  validate_args, model, x, y, attributions, drops=drops, **settings)


__all__ = ["SGT_DROPS", "faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores",
    "faithfulness_scores", "keyed_subsets", "lerf", "lerf_curve", "masked_accuracy", "masked_accuracy_curve",
    "masked_accuracy_rows", "morf", "morf_curve", "morf_rows", "morf_value", "per_image_auc_value", "pixel_flipping",
    "pixel_flipping_curve", "pixel_flipping_rows", "random_subsets", "region_perturbation",
    "region_perturbation_curve", "region_perturbation_rows", "series_real"]
