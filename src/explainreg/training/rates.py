"""XIL's normalisation rates (documentation: methods/xil; Friedrich et al. 2023, ``Learner.calculate_normalization_rates``).

Over one pass of the training data with the model as it is (before training):

    rate_i = (Σ_batches CE) / (Σ_batches R_i) / n,

CE the batch-mean cross-entropy, R_i the raw value of penalty i on the batch and n the number of
penalties, so that every penalty starts at about CE / n. Rows flagged as counterexamples
(``extras["counterexample"]``) are left out, as XIL computes both sums on the other rows only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..objective import Objective
from ..modes import model_device
from ..penalties.base import PenaltyContext
from .batches import iterate_batches

__all__ = ["normalisation_rates"]


def normalisation_rates(model: nn.Module, objective: Objective, dataset: Dataset, *, batch_size: int = 256,
                        device: torch.device | str | None = None, flag: str = "counterexample") -> dict[str, float]:
    """``{penalty name: rate}`` for every penalty of ``objective`` (weights are not used).

    Args:
        model: the (untrained) model.
        objective: the objective whose penalties are normalised; set the result with
            ``objective.set_rates(rates)``.
        dataset: the training data, yielding ``(x, y, extras)`` (in order, one pass).
        batch_size: rows per batch (the training batch size: the sums are of batch means).
        device: where to run (default: the model's device).
        flag: the bool extra marking rows to leave out.

    Returns:
        The rates; a penalty whose sum over the pass is 0 gets rate 1 (nothing to normalise).
    """
    if len(objective.penalties) == 0:
        return {}
    device = device or model_device(model)
    ce_sum = 0.0
    sums = {name: 0.0 for name in objective.names}
    for x, y, extras in iterate_batches(dataset, batch_size, shuffle=False, device=device):
        keep = extras.pop(flag, None)
        if keep is not None:
            keep = ~keep.bool()
            if not bool(keep.any()):
                continue
            x, y = x[keep], y[keep]
            extras = {k: (v[keep] if isinstance(v, torch.Tensor) and len(v) == len(keep) else v)
                      for k, v in extras.items()}
        ctx = PenaltyContext(model, x, y, extras, objective.generator,
                             input_grad=any(p.needs_input_grad for p in objective.penalties))
        ce_sum += float(F.cross_entropy(ctx.logits, y).detach())
        for name, penalty in zip(objective.names, objective.penalties):
            with torch.enable_grad():
                sums[name] += float(penalty.compute(ctx).detach())
    n = len(sums)
    return {name: (ce_sum / total / n if total > 0 else 1.0) for name, total in sums.items()}

