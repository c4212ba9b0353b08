"""The seed's cumulative faithfulness and the Bhatt et al. (2020) faithfulness correlation as
functions of one batch; random subsets drawn per image, keyed by the image's position.

Documentation of the removal procedures, draws and tie-breaks: :mod:`explainreg.metrics.functional.perturbation`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..._random import as_index, keyed_draw
from .._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_PERCENTILES, above_percentile_masks, check_convention,
                     check_positive_int, forward_chunks, prepare, scores_value)
from .._stack import fill_value, forward_copies, masked_copies, pearson_rows
from ._settings import checked_value
from .removal import _percentiles, _zero_padding, _keep_real

Tensor = torch.Tensor


def faithfulness_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attributions: torch.Tensor, *,
                        percentiles: Sequence[float] = SEED_PERCENTILES, baseline: Any = 0.0,
                        max_batch: int = MAX_BATCH, real: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image Pearson corr over the steps between S_p = Σ a over removed entries and Δ_p = p(y|x) − p(y|x masked).

        The seed's test 2 (the IPL-UV xAI-constrained-losses code), in the spirit of Bhatt et al. (2020).

        Args:
            model, x, y, attributions: as for :func:`~explainreg.metrics.functional.percentile_removal.morf_rows`
                (y required).
            percentiles, baseline, max_batch, real: the cumulative removal of a > q_p, as in
                :func:`~explainreg.metrics.functional.percentile_removal.morf_rows`.

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


__all__ = ["faithfulness", "faithfulness_correlation", "faithfulness_correlation_scores", "faithfulness_scores",
           "keyed_subsets", "random_subsets"]
