"""ERASER comprehensiveness and sufficiency on token ids, accumulated over batches (``METRICS``); their
computation is :func:`explainreg.metrics.functional.text.eraser` (DeYoung et al. 2020).
"""
from __future__ import annotations

from typing import ClassVar, Sequence

import torch
from torch import nn

from ._core import Metric, MetricResult, scalar_result
from .functional.text import PERCENTS, eraser
from .registry import METRICS


class _Eraser(Metric):
    """ERASER's AOPC of one batch of token ids B×T and their scores B×T per sentence (:func:`eraser`)."""

    part: ClassVar[str] = "comprehensiveness"
    layouts: ClassVar[tuple[str, ...]] = ("tokens",)

    def __init__(self, percents: Sequence[float] = PERCENTS, padding_idx: int = 0) -> None:
        super().__init__()
        self.percents, self.padding_idx = tuple(float(p) for p in percents), int(padding_idx)

    def per_image(self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor | None,
                  attributions: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError(f"{self.name} needs the labels: call update(model, ids, y, scores)")
        return eraser(model, x, y, attributions, percents=self.percents,
                      padding_idx=self.padding_idx)[self.part].double()

    def summarize(self, rows: torch.Tensor) -> MetricResult:
        return scalar_result(self, rows)


@METRICS.register("comprehensiveness", aliases=("eraser_comprehensiveness",))
class Comprehensiveness(_Eraser):
    """ERASER comprehensiveness on token ids: p_y(x) − p_y(x without its top-k% tokens by |score|),
    the mean over k ∈ ``percents`` and sentences (higher is better).

    Shape:
        ``update(model, ids, y, scores)``: ids B×T (right-padded with ``padding_idx``), y B, scores B×T.

    Example::

        >>> from torch import nn
        >>> from explainreg.attribution import attribute
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Embedding(9, 4, padding_idx=0), nn.Flatten(), nn.Linear(16, 2)).eval()
        >>> ids, y = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([0, 1])
        >>> s = attribute(net, ids, y, "input_x_gradient")
        >>> value = Comprehensiveness()(net, ids, y, s).value
        >>> abs(value - float(eraser(net, ids, y, s)["comprehensiveness"].mean())) < 1e-6
        True
    """

    name = "comprehensiveness"
    part = "comprehensiveness"


@METRICS.register("sufficiency", aliases=("eraser_sufficiency",))
class Sufficiency(_Eraser):
    """ERASER sufficiency on token ids: p_y(x) − p_y(only its top-k% tokens by |score|), the mean
    over k ∈ ``percents`` and sentences (lower is better); see :class:`Comprehensiveness`."""

    name = "sufficiency"
    higher_is_better = False
    part = "sufficiency"


__all__ = ["Comprehensiveness", "Sufficiency"]
