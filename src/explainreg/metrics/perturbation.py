"""Removal (perturbation) metrics: MoRF / LeRF, the seed's cumulative faithfulness, the Bhatt et al.
faithfulness correlation, pixel flipping, region perturbation and SGT's masked accuracy
(methods.md A.5, B.1 §1.5, B.3 §3.3). Every perturbed copy of every image of a batch goes through
one stack of forward passes chunked by the activation budget (``max_batch`` caps the rows).

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

from .._random import as_index, descending_ranks, keyed_draw
from .._validation import check_choice
from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, SEED_PERCENTILES, Metric, MetricResult,
                    above_percentile_masks, check_convention, check_fractions, check_positive_int, curve_result,
                    curve_value, deprecated_one_shot, eval_mode, forward_chunks, prepare, resolve_convention,
                    scalar_result, trapezoid)
from ._stack import fill_value, forward_copies, masked_copies, pearson_rows
from .registry import register_metric


def _percentiles(values: Sequence[float]) -> tuple[float, ...]:
    return check_fractions("percentiles", values, 0.0, 100.0)


# ------------------------------------------------------------------------------------------ MoRF / LeRF
def morf_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attributions: torch.Tensor, *,
               percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0, order: str = "morf",
               max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Per-image MoRF ratios d[b, s] = p(c* | x masked at step s) / p(c* | x), c* = argmax f(x).

    Step s (percentile p_s): q = p_s-th percentile of the image's non-zero attributions, entries
    with a > q set to ``baseline`` (methods.md B.1 §1.5). ``order="lerf"`` ranks by −a (least
    relevant first, zero attributions removed first). Images with all-zero attributions lose nothing.
    """
    check_choice("order", order, ("morf", "lerf"))
    x, _, a = prepare(model, x, y, attributions)
    ps = _percentiles(percentiles)
    p0 = forward_chunks(model, x, max_batch, output="prob")
    conf, c_star = p0.max(1)
    masks = above_percentile_masks(a if order == "morf" else -a, ps)
    p = forward_copies(model, masked_copies(x, masks, fill_value(x, baseline)), len(x), len(ps), c_star,
                       max_batch=max_batch)
    return p / conf[:, None]


def _morf_steps(percentiles: Sequence[float]) -> tuple[list[int], list[float]]:
    """The column order that sorts the fractions removed 1 − p/100 increasingly, and those fractions."""
    steps = [1.0 - p / 100.0 for p in percentiles]
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return order, [steps[i] for i in order]


def morf_value(rows: torch.Tensor, percentiles: Sequence[float] = SEED_PERCENTILES) -> torch.Tensor:
    """MoRF / LeRF AUC: ∫ (1 − mean_b d_b) over the fraction removed 1 − p/100 (trapezoid rule), from
    the per-image ratios ``rows`` (B×S, the columns in the order of ``percentiles``)."""
    order, steps = _morf_steps(percentiles)
    return curve_value(rows[:, order], steps, transform=lambda c: 1.0 - c)


class PercentileRemoval(Metric):
    """The settings of the seed's percentile-rule metrics (MoRF, LeRF, faithfulness): entries above
    each ``percentiles`` value of an image's non-zero attributions are set to ``baseline``."""

    def __init__(self, percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.percentiles = _percentiles(percentiles)
        self.baseline, self.max_batch = baseline, check_positive_int("max_batch", max_batch)


@register_metric("morf")
class MoRF(PercentileRemoval):
    """Most Relevant First: AUC = ∫ (1 − mean_b d_b) over fraction removed 1 − p/100 (higher is better)."""

    name = "morf"
    higher_is_better = True
    order = "morf"

    def per_image(self, model, x, y, attributions):
        return morf_curve(model, x, y, attributions, percentiles=self.percentiles, baseline=self.baseline,
                          order=self.order, max_batch=self.max_batch)

    def summarize(self, rows):
        order, steps = _morf_steps(self.percentiles)
        return curve_result(self, rows[:, order], steps, transform=lambda c: 1.0 - c, step_name="fraction_removed",
                            curve_name="relative_confidence")


@register_metric("lerf")
class LeRF(MoRF):
    """Least Relevant First (MoRF on −a): AUC of 1 − mean d; lower is better (the model keeps its
    confidence while irrelevant features go)."""

    name = "lerf"
    higher_is_better = False
    order = "lerf"


morf = deprecated_one_shot(MoRF, "morf")
lerf = deprecated_one_shot(LeRF, "lerf")


# ------------------------------------------------------------------------- seed's cumulative faithfulness
def faithfulness_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                        percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0,
                        max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Per-image Pearson corr over the steps between S_p = Σ a over removed entries and
    Δ_p = p(y|x) − p(y|x masked), cumulative removal of a > q_p (methods.md B.1 §1.5 item 2).
    NaN where either series is constant."""
    x, y, a = prepare(model, x, y, attributions)
    ps = _percentiles(percentiles)
    p0 = forward_chunks(model, x, max_batch, output="prob", index=y)
    masks = above_percentile_masks(a, ps)
    p = forward_copies(model, masked_copies(x, masks, fill_value(x, baseline)), len(x), len(ps), y,
                       max_batch=max_batch)
    removed = (a.flatten(1)[:, None, :] * masks.flatten(2)).sum(-1)
    return pearson_rows(removed, p0[:, None] - p)


@register_metric("faithfulness")
class Faithfulness(PercentileRemoval):
    """The seed's faithfulness: mean over images of the per-image correlation (higher is better);
    images whose correlation is undefined are skipped and counted in ``n_nan``."""

    name = "faithfulness"
    higher_is_better = True

    def per_image(self, model, x, y, attributions):
        return faithfulness_scores(model, x, y, attributions, percentiles=self.percentiles, baseline=self.baseline,
                                   max_batch=self.max_batch)

    def summarize(self, rows):
        return scalar_result(self, rows)


faithfulness = deprecated_one_shot(Faithfulness, "faithfulness")


# ------------------------------------------------------------------- Bhatt et al. faithfulness correlation
def random_subsets(n_images: int, n_features: int, nr_runs: int, subset_size: int,
                   generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """B×R×k indices of ``subset_size`` distinct features per run and image (uniform, without replacement)."""
    keys = torch.rand((n_images, nr_runs, n_features), generator=generator, device=device)
    return keys.topk(subset_size, dim=-1).indices


def keyed_subsets(seed: int, index: torch.Tensor, n_features: int, nr_runs: int, subset_size: int,
                  device=None) -> torch.Tensor:
    """As :func:`random_subsets`, image b's subsets drawn from its own generator keyed by
    (``seed``, ``index[b]``, stream ``"subsets"``): the top-k of R×N keyed uniform keys."""
    keys = keyed_draw("uniform", seed, index, (nr_runs, n_features), "subsets", device=device)
    return keys.topk(subset_size, dim=-1).indices


def faithfulness_correlation_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                    attributions: torch.Tensor, *, nr_runs: int = 100, subset_size: int = 224,
                                    convention: str = "explainreg", baseline: Any = None,
                                    subsets: torch.Tensor | None = None, seed: int = 0,
                                    index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Bhatt et al. (2020) faithfulness correlation per image: over ``nr_runs`` random subsets S of
    ``subset_size`` features, Pearson corr(Σ_{i∈S} a_i, f_y(x) − f_y(x with S set to the baseline)).

    ``convention="explainreg"``: f = softmax probability, baseline 0. ``"quantus"``: f = logit,
    baseline = the image's minimum ("black"), as ``quantus.FaithfulnessCorrelation``. ``subsets``
    (B×R×k indices) fixes the random subsets; otherwise image b's are drawn by :func:`keyed_subsets`
    from ``seed`` and ``index[b]`` (its position in the data set, default b).
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


@register_metric("faithfulness_correlation")
class FaithfulnessCorrelation(Metric):
    """Bhatt et al. faithfulness correlation, mean over images (higher is better)."""

    name = "faithfulness_correlation"
    higher_is_better = True
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, nr_runs: int = 100, subset_size: int = 224, convention: str = "explainreg",
                 baseline: Any = None, seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_convention("FaithfulnessCorrelation", convention, self.conventions)
        self.nr_runs, self.subset_size = check_positive_int("nr_runs", nr_runs), check_positive_int(
            "subset_size", subset_size)
        self.convention, self.baseline, self.seed = convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return faithfulness_correlation_scores(
            model, x, y, attributions, nr_runs=self.nr_runs, subset_size=self.subset_size,
            convention=self.convention, baseline=self.baseline, seed=self.seed, index=self.batch_index,
            max_batch=self.max_batch)

    def summarize(self, rows):
        return scalar_result(self, rows)


faithfulness_correlation = deprecated_one_shot(FaithfulnessCorrelation, "faithfulness_correlation")


# ------------------------------------------------------------------------------------- pixel flipping
def per_image_auc_value(rows: torch.Tensor) -> torch.Tensor:
    """The mean over images of each curve's trapezoid AUC with unit spacing (Quantus's ``get_auc_score``);
    pixel flipping's and region perturbation's summary."""
    return trapezoid(rows.double(), dim=1).mean()


def _per_image_auc(metric: Metric, rows: torch.Tensor, step_name: str, curve_name: str) -> MetricResult:
    """Mean curve over steps 1..S, summarised as the mean of the per-image AUCs (unit spacing, as Quantus)."""
    steps = torch.arange(1, rows.shape[1] + 1, dtype=torch.float64)
    result = curve_result(metric, rows, steps, step_name=step_name, curve_name=curve_name)
    result.value = float(per_image_auc_value(rows))
    return result


def pixel_flipping_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         features_in_step: int = 1, convention: str = "explainreg", baseline: Any = None,
                         seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Pixel flipping (Bach et al. 2015): features sorted by decreasing a (ties in a seeded random
    order per image, keyed by ``seed`` and ``index``); after step j the first (j+1)·``features_in_step``
    are set to the baseline; returns p_y (softmax) after each step, B×⌈N/k⌉. Baseline: 0
    (``"explainreg"``) or the image minimum (``"quantus"``'s "black")."""
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


@register_metric("pixel_flipping")
class PixelFlipping(Metric):
    """Pixel flipping curve of f_y; the summary is the mean per-image trapezoid AUC with unit spacing
    (Quantus's ``get_auc_score``). Lower is better (a faithful ranking destroys the output fast)."""

    name = "pixel_flipping"
    higher_is_better = False
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, features_in_step: int = 1, convention: str = "explainreg", baseline: Any = None,
                 seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_convention("PixelFlipping", convention, self.conventions)
        self.features_in_step = check_positive_int("features_in_step", features_in_step)
        self.convention, self.baseline, self.seed = convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return pixel_flipping_curve(model, x, y, attributions, features_in_step=self.features_in_step,
                                    convention=self.convention, baseline=self.baseline, seed=self.seed,
                                    index=self.batch_index, max_batch=self.max_batch)

    def summarize(self, rows):
        return _per_image_auc(self, rows, "step", "output")


pixel_flipping = deprecated_one_shot(PixelFlipping, "pixel_flipping")


# -------------------------------------------------------------------------------- region perturbation
def _pad_sizes(dim: int, patch: int) -> tuple[int, int]:
    total = (patch - dim % patch) % patch
    return total // 2, total - total // 2


def region_perturbation_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                              patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                              convention: str = "explainreg", baseline: Any = None, seed: int = 0,
                              index: torch.Tensor | None = None, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """Region perturbation (Samek et al. 2017): the image (padded to a multiple of ``patch_size`` as
    Quantus does) is cut into non-overlapping patches ranked by their attribution sum (``morf``:
    decreasing, ``lerf``: increasing, ties in a seeded random order per image; ``random``: a seeded
    random order per image; both keyed by ``seed`` and ``index``); patches are set to the baseline one after the
    other; returns p_y(x) − p_y(x perturbed) (softmax) after each of the first ``regions_evaluation``
    patches. Baseline: 0 (``"explainreg"``) or the image minimum (``"quantus"``'s "black")."""
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


@register_metric("region_perturbation")
class RegionPerturbation(Metric):
    """Region perturbation curve f_y(x) − f_y(x̃); summary: mean per-image AUC with unit spacing
    (Quantus's ``get_auc_score``). Higher is better for ``morf`` and ``random``; ``order="lerf"``
    builds a :class:`RegionPerturbationLeRF` (lower is better)."""

    name = "region_perturbation"
    higher_is_better = True
    variant_by = "order"
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                 convention: str = "explainreg", baseline: Any = None, seed: int = 0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_choice("order", order, ("morf", "lerf", "random"))
        check_convention("RegionPerturbation", convention, self.conventions)
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.regions_evaluation = check_positive_int("regions_evaluation", regions_evaluation)
        self.order, self.convention, self.baseline, self.seed = order, convention, baseline, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return region_perturbation_curve(model, x, y, attributions, patch_size=self.patch_size, order=self.order,
                                         regions_evaluation=self.regions_evaluation, convention=self.convention,
                                         baseline=self.baseline, seed=self.seed, index=self.batch_index,
                                         max_batch=self.max_batch)

    def summarize(self, rows):
        return _per_image_auc(self, rows, "regions_removed", "output_drop")


class RegionPerturbationLeRF(RegionPerturbation):
    """Region perturbation in the ``lerf`` order (least relevant regions first): lower is better."""

    higher_is_better = False


RegionPerturbation.variants = {"lerf": RegionPerturbationLeRF}
region_perturbation = deprecated_one_shot(RegionPerturbation, "region_perturbation")


# -------------------------------------------------------------------------------- SGT masked accuracy
SGT_DROPS = tuple(range(0, 100, 10))


def masked_accuracy_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                         drops: Sequence[float] = SGT_DROPS, background: Any = "corner",
                         convention: str = "explainreg", seed: int = 0, index: torch.Tensor | None = None,
                         max_batch: int = MAX_BATCH, compat: bool | None = None) -> torch.Tensor:
    """SGT's masked accuracy (methods.md B.3 §3.3): the k = ⌊H·W·d/100⌋ pixels with the largest
    channel-mean |a| (ties in a seeded random order per image, keyed by ``seed`` and ``index``) are
    replaced by the background (default ``"corner"``: each image's own pixel [c, 0, 0]); returns correct[b, s] ∈ {0, 1}. ``compat=True``: k = max(1, …) as the seed (one
    pixel is masked even at d = 0).

    Series B×C×T (methods.md A.10): every (channel, step) entry is a feature, ranked by its own |a|;
    k = ⌊C·T·d/100⌋ and ``"corner"`` is each series' first step of the same channel, x[b, c, 0]."""
    seed_quirk = resolve_convention("masked_accuracy_rows", convention, SEED_CONVENTIONS, compat) == "seed"
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


class _Squeeze1(nn.Module):
    """Runs a series model on B×1×C×T copies (the series as one-channel "images")."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(1))


@register_metric("masked_accuracy", aliases=("sgt",))
class MaskedAccuracy(Metric):
    """SGT masked-accuracy curve over the drop percentage; summary: its trapezoid AUC over the
    fraction dropped d/100. Lower is better (accuracy falls faster when the salient pixels go)."""

    name = "masked_accuracy"
    higher_is_better = False
    conventions = SEED_CONVENTIONS

    def __init__(self, drops: Sequence[float] = SGT_DROPS, background: Any = "corner", convention: str = "explainreg",
                 seed: int = 0, max_batch: int = MAX_BATCH, *, compat: bool | None = None) -> None:
        super().__init__()
        self.drops = check_fractions("drops", drops, 0.0, 100.0)
        self.convention = resolve_convention("MaskedAccuracy", convention, self.conventions, compat, stacklevel=4)
        self.background, self.seed = background, int(seed)
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return masked_accuracy_rows(model, x, y, attributions, drops=self.drops, background=self.background,
                                    convention=self.convention, seed=self.seed, index=self.batch_index,
                                    max_batch=self.max_batch)

    def summarize(self, rows):
        steps = [d / 100.0 for d in self.drops]
        return curve_result(self, rows, steps, step_name="fraction_dropped", curve_name="accuracy")


masked_accuracy = deprecated_one_shot(MaskedAccuracy, "masked_accuracy")


__all__ = [
    "Faithfulness", "FaithfulnessCorrelation", "LeRF", "PercentileRemoval", "MaskedAccuracy", "MoRF", "PixelFlipping",
    "RegionPerturbation", "faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores",
    "faithfulness_scores", "lerf", "masked_accuracy", "masked_accuracy_rows", "morf", "morf_curve",
    "keyed_subsets", "morf_value", "per_image_auc_value", "pixel_flipping", "pixel_flipping_curve", "random_subsets",
    "region_perturbation", "region_perturbation_curve", "RegionPerturbationLeRF", "eval_mode",
]
