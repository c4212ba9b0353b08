"""Robustness as accumulating classes: accuracy under Gaussian noise and under square occluding blocks
(the seed's tests 5 and 6) and the max-sensitivity of explanations (Yeh et al. 2019), over their
functions of one batch in :mod:`explainreg.metrics.functional.robustness` (where the keyed draws are
described)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..attribution import explainer

from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, SEED_CONVENTIONS, Metric, check_convention, check_fractions,
                    check_positive_int, curve_result, scalar_result)
from .functional.robustness import (BLOCK_SIZES, GAUSSIAN_SIGMAS, gaussian_noise_rows, max_sensitivity_scores,
                                    square_block_rows)
from .registry import METRICS


@METRICS.register("gaussian", aliases=("gauss", "gaussian_noise"))
class GaussianNoise(Metric):
    """Accuracy curve over σ ∈ {0, 0.1, 0.5, 1, 1.5} and its trapezoid AUC (max 1.5; higher is better).

    Args:
        sigmas: the noise levels (the clean σ = 0 is prepended).
        convention: ``"explainreg"`` or ``"seed"`` (see :func:`gaussian_noise_rows`).
        seed: keys the per-image draws.
        max_batch: cap on the rows per forward pass.

    Shape:
        ``update(model, x, y)``: x (B, ...), y (B,); no attributions.

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult` with ``steps`` = ``(0, *sigmas)`` and
        ``curve`` the mean accuracy.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import GaussianNoise
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> r = GaussianNoise(sigmas=(0.5,))(model, x, y); r.steps.tolist(), r.curve.shape
    ([0.0, 0.5], torch.Size([2]))
    """

    name = "gaussian"
    higher_is_better = True
    needs_attributions = False

    conventions = SEED_CONVENTIONS

    def __init__(self, sigmas: Sequence[float] = GAUSSIAN_SIGMAS, convention: str = "explainreg", seed: int = 0,
                 max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.sigmas = check_fractions("sigmas", sigmas, 0.0, float("inf"))
        self.convention = check_convention("GaussianNoise", convention, self.conventions)
        self.seed, self.max_batch = int(seed), check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return gaussian_noise_rows(model, x, y, sigmas=self.sigmas, convention=self.convention, seed=self.seed,
                                   index=self.batch_index, max_batch=self.max_batch)

    def summarize(self, rows):
        return curve_result(self, rows, (0.0,) + self.sigmas, step_name="sigma", curve_name="accuracy")


@METRICS.register("blocks", aliases=("square_blocks",))
class SquareBlocks(Metric):
    """Accuracy curve over the maximal block half-size s ∈ {0, 6, 8, 10, 12} and its trapezoid AUC (max 12; higher is
        better).

        The seed's robustness test 6.

        Args:
            sizes: the maximal half-sizes (at most H/2).
            min_size: the smallest half-size.
            seed: keys the per-image draws.
            max_batch: cap on the rows per forward pass.

        Shape:
            ``update(model, x, y)``: x (B, C, H, W), y (B,); no attributions.

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import SquareBlocks
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> SquareBlocks(sizes=(2,))(model, x, y).steps.tolist()
        [0.0, 2.0]
    """

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


@METRICS.register("max_sensitivity")
class MaxSensitivity(Metric):
    """Mean over images of the max-sensitivity (lower is better).

        Yeh et al. (2019), "On the (in)fidelity and sensitivity of explanations".

        Args:
            method, nr_samples, lower_bound, upper_bound, seed, max_batch: see :func:`max_sensitivity_scores`.
            convention: ``"explainreg"`` or ``"quantus"``: the same computation (Quantus 0.6's defaults:
                200 samples of U(−0.2, 0.2), Frobenius norms, no normalisation), accepted for symmetry.
            options: passed to the attribution ``method``, checked against the options it accepts.

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import MaxSensitivity
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> from explainreg.attribution import attribute
        >>> r = MaxSensitivity(nr_samples=5)(model, x, y, attribute(model, x, y, "saliency"))
        >>> r.name, r.higher_is_better, r.n_images
        ('max_sensitivity', False, 4)
    """

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


__all__ = ["GaussianNoise", "MaxSensitivity", "SquareBlocks"]
