"""The training objective: cross-entropy + Σ_i λ_i R_i with one shared forward pass and saliency.

    loss = CE(f(x), y) + Σ_i λ_i · R_i(f, x, y)

Penalties with weight 0 are still computed (detached) so their values can be logged, as the seed
logged the constraint values of its unconstrained baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .penalties.base import Penalty, PenaltyContext, build_penalty


@dataclass
class ObjectiveOutput:
    """``loss`` to back-propagate, ``terms`` (raw values: ``ce``, each penalty, ``loss``) and ``logits``."""

    loss: torch.Tensor
    terms: dict[str, float]
    logits: torch.Tensor


def _as_pairs(penalties) -> list[tuple[Penalty, float]]:
    if penalties is None:
        return []
    items: Iterable = penalties.items() if isinstance(penalties, Mapping) else penalties
    pairs = []
    for item in items:
        penalty, weight = item if isinstance(item, tuple) else (item, 1.0)
        if isinstance(penalty, str):
            penalty = build_penalty(penalty)
        if not isinstance(penalty, Penalty):
            raise TypeError(f"penalties must be Penalty objects or names, got {type(penalty).__name__}")
        weight = float(weight)
        if not torch.isfinite(torch.tensor(weight)) or weight < 0:
            raise ValueError(f"the weight of {penalty.name} must be a finite number ≥ 0, got {weight}")
        pairs.append((penalty, weight))
    return pairs


class Objective(nn.Module):
    """CE plus weighted penalties, e.g. ``Objective({Smoothness(): 0.1, "fidelity": 1.0}, seed=0)``.

    Call as ``objective(model, x, y, **extras)``; returns an :class:`ObjectiveOutput`.
    ``seed`` seeds the generator that random penalties (Symmetry's angle, ...) draw from.
    """

    def __init__(self, penalties: Mapping[Penalty | str, float] | Iterable | None = None, *,
                 seed: int = 0, cross_entropy: bool = True) -> None:
        super().__init__()
        pairs = _as_pairs(penalties)
        self.penalties = nn.ModuleList(p for p, _ in pairs)
        self.weights = [w for _, w in pairs]
        self.names = _unique_names([p.name for p, _ in pairs])
        self.cross_entropy = cross_entropy
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def needs_input_grad(self) -> bool:
        return any(p.needs_input_grad for p in self.penalties)

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **extras: Any) -> ObjectiveOutput:
        ctx = PenaltyContext(model, x, y, extras, self.generator, input_grad=self.needs_input_grad)
        terms: dict[str, float] = {}
        loss = F.cross_entropy(ctx.logits, y) if self.cross_entropy else ctx.logits.new_zeros(())
        terms["ce"] = float(loss.detach()) if self.cross_entropy else 0.0
        for name, penalty, weight in zip(self.names, self.penalties, self.weights):
            if weight == 0:
                with torch.enable_grad():
                    value = penalty.compute(ctx).detach()
            else:
                value = penalty.compute(ctx)
                loss = loss + weight * value
            terms[name] = float(value.detach())
        terms["loss"] = float(loss.detach())
        return ObjectiveOutput(loss, terms, ctx.logits)

    def config(self) -> list[dict[str, Any]]:
        """Each penalty's name, weight and settings (for run configs)."""
        return [{"name": n, "penalty": p.name, "weight": w, "settings": p.settings()}
                for n, p, w in zip(self.names, self.penalties, self.weights)]


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
