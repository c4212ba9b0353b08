"""ROAD: RemOve And Debias (Rong et al. 2022, "A consistent and efficient evaluation strategy for
attribution methods") as accumulating classes over :func:`explainreg.metrics.functional.imputation.road_curve`
(noisy linear imputation: :mod:`explainreg.metrics.functional.imputation`).
"""
from __future__ import annotations

from typing import Sequence

from .._validation import check_choice
from ._core import (MAX_BATCH, QUANTUS_CONVENTIONS, Metric, MetricResult, check_positive_int,
                    curve_result)
from .functional.imputation import road_percentages, road_rows
from .registry import METRICS

EDGE, DIAGONAL = 1.0 / 6.0, 1.0 / 12.0


@METRICS.register("road")
class ROAD(Metric):
    """ROAD accuracy curve over the percentage removed; summary: trapezoid AUC over the fraction removed.

        Rong et al. (2022), "A consistent and efficient evaluation strategy for attribution methods".

        Args:
            percentages: default 10, 20, …, 90 (``convention="quantus"``: 1, 3, …, 99).
            order: ``"morf"`` (lower is better: accuracy should fall fast) or ``"lerf"`` (builds a
                :class:`ROADLeRF`: higher is better).
            noise, seed, tol, max_batch: see :func:`road_rows`.
            convention: ``"explainreg"`` or ``"quantus"`` (percentages and ``morf`` as ``quantus.ROAD``).

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.metrics import ROAD
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
        >>> r = ROAD(percentages=(25, 50))(model, x, y, a); r.name, r.steps.tolist()
        ('road_morf', [0.25, 0.5])
    """

    name = "road_morf"
    higher_is_better = False
    variant_by = "order"
    conventions = QUANTUS_CONVENTIONS

    def __init__(self, percentages: Sequence[float] | None = None, order: str = "morf", noise: float = 0.01,
                 convention: str = "explainreg", seed: int = 0, tol: float = 1e-5, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_choice("order", order, ("morf", "lerf"))
        self.percentages = road_percentages(percentages, convention)
        self.order, self.noise, self.convention, self.seed, self.tol = order, float(noise), convention, int(seed), tol
        self.max_batch = check_positive_int("max_batch", max_batch)

    def per_image(self, model, x, y, attributions):
        return road_rows(model, x, y, attributions, percentages=self.percentages, order=self.order, noise=self.noise,
                         seed=self.seed, index=self.batch_index, tol=self.tol, max_batch=self.max_batch)

    def summarize(self, rows) -> MetricResult:
        return curve_result(self, rows, [p / 100.0 for p in self.percentages], step_name="fraction_removed",
                            curve_name="accuracy")


class ROADLeRF(ROAD):
    """ROAD in the ``lerf`` order (least relevant pixels removed first): higher is better.

    Args:
        as :class:`ROAD` (built by ``ROAD(order="lerf")``).

    Shape:
        ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H, W)).

    Returns:
        ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics import ROAD
    >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y, a = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]), torch.rand(4, 1, 4, 4)
    >>> m = ROAD(order="lerf"); type(m).__name__, m.name, m.higher_is_better
    ('ROADLeRF', 'road_lerf', True)
    """

    name = "road_lerf"
    higher_is_better = True


ROAD.variants = {"lerf": ROADLeRF}


__all__ = ["ROAD", "ROADLeRF"]
