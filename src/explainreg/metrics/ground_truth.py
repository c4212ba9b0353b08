"""AUP and AUR: areas under the top-k precision and recall curves of attributions against a known
ground-truth mask, accumulated over batches, each with its random reference ranking (the SGT
poster's Diff(AUP)). The computation is :mod:`explainreg.metrics.functional.ground_truth`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .._validation import check_choice
from ._core import Metric, MetricResult, check_fractions, nanmean
from .functional.ground_truth import CONVENTIONS, FRACTIONS, curve_area, ground_truth_curves, random_ranking
from .registry import METRICS


class _GroundTruthArea(Metric):
    """Accumulates precision (``AUP``) or recall (``AUR``) rows of each batch and of its random reference."""

    needs_model = False
    needs_ground_truth = True
    curve: str = "precision"

    def __init__(self, fractions: Sequence[float] = FRACTIONS, convention: str = "explainreg", seed: int = 0) -> None:
        super().__init__()
        self.fractions = check_fractions("fractions", fractions, 0.0, 1.0)
        check_choice("convention", convention, CONVENTIONS)
        self.convention, self.seed = convention, int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def settings(self) -> dict[str, Any]:
        return {"fractions": list(self.fractions), "convention": self.convention, "seed": self.seed}

    def reset(self) -> None:
        super().reset()
        self.generator = torch.Generator().manual_seed(self.seed)

    def update(self, model: nn.Module | None, x: torch.Tensor | None, y: torch.Tensor | None = None,
               attributions: torch.Tensor | None = None, *, ground_truth: torch.Tensor | None = None,
               padding_mask: torch.Tensor | None = None) -> "_GroundTruthArea":
        """Add one batch: ``attributions`` and its ``ground_truth`` mask (same shape); model, x, y unused."""
        if attributions is None or ground_truth is None:
            raise ValueError(f"{self.name} needs attributions and ground_truth: "
                             f"update(model, x, y, attributions, ground_truth=mask)")
        p, r = ground_truth_curves(attributions, ground_truth, self.fractions, convention=self.convention,
                                   padding_mask=padding_mask)
        shuffled = random_ranking(attributions, self.generator, padding_mask)
        p0, r0 = ground_truth_curves(shuffled, ground_truth, self.fractions, convention=self.convention,
                                     padding_mask=padding_mask)
        rows = torch.cat([p, p0], 1) if self.curve == "precision" else torch.cat([r, r0], 1)
        self._rows.append(rows.detach().cpu())
        self._batches += 1
        return self

    def summarize(self, rows: torch.Tensor) -> MetricResult:
        s = len(self.fractions)
        own, ref = rows[:, :s], rows[:, s:]
        curve = nanmean(own.double(), 0)
        value, random_value = float(curve_area(own, self.fractions)), float(curve_area(ref, self.fractions))
        return MetricResult(self.name, value, True, torch.tensor(self.fractions, dtype=torch.float64), curve, own,
                            step_name="fraction", curve_name=self.curve, n_images=int(rows.shape[0]),
                            n_nan=int(torch.isnan(own).any(1).sum()),
                            extra={"random": random_value, "difference": value - random_value,
                                   "random_curve": nanmean(ref.double(), 0)})


@METRICS.register("aup")
class AUP(_GroundTruthArea):
    """Area under the top-k precision curve against the ground truth; ``extra`` holds the random
    ranking's area and the difference (the SGT poster's Diff(AUP)). Higher is better."""

    name = "aup"
    curve = "precision"


@METRICS.register("aur")
class AUR(_GroundTruthArea):
    """Area under the top-k recall curve against the ground truth (see :class:`AUP`). Higher is better."""

    name = "aur"
    curve = "recall"


__all__ = ["AUP", "AUR"]
