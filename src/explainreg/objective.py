"""The training objective: cross-entropy + Σ_i λ_i R_i with one shared forward pass and saliency.

    loss = CE(f(x), y) + Σ_i λ_i · R_i(f, x, y)

Penalties with weight 0 are monitored: computed (detached) every ``monitor_every`` calls so their
values can be logged without training on them, as the seed logged the constraint values of its
unconstrained baseline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .inputs import CONVERSIONS, MaskRoute, check_mask_meaning, mask_route
from .penalties.base import Penalty, PenaltyContext, build_penalty


@dataclass
class ObjectiveOutput:
    """What an :class:`Objective` returns: ``loss`` (0-d, to back-propagate), ``terms`` (the raw
    values as floats: ``ce``, each penalty by name, ``loss``) and the shared forward's ``logits`` (B×K)."""

    loss: torch.Tensor
    terms: dict[str, float]
    logits: torch.Tensor


def _as_pairs(penalties) -> list[tuple[Penalty, float]]:
    if penalties is None:
        return []
    items: Iterable = penalties.items() if isinstance(penalties, Mapping) else penalties
    pairs = []
    named: dict[str, tuple[str, Any]] = {}  # penalty built from a name -> (that name, its weight)
    for item in items:
        penalty, weight = item if isinstance(item, tuple) else (item, 1.0)
        if isinstance(penalty, str):
            given, penalty = penalty, build_penalty(penalty)
            if penalty.name in named:
                raise ValueError(f"penalty {penalty.name} is given twice: as {named[penalty.name][0]!r} (weight "
                                 f"{named[penalty.name][1]}) and as {given!r} (weight {weight}); give it once with "
                                 "the weight you mean (or two Penalty objects with different settings)")
            named[penalty.name] = (given, weight)
        if not isinstance(penalty, Penalty):
            raise TypeError(f"penalties must be Penalty objects or names, got {type(penalty).__name__}")
        weight = _fixed_weight(penalty.name, weight)
        if not torch.isfinite(torch.tensor(weight)) or weight < 0:
            raise ValueError(f"the weight of {penalty.name} must be a finite number ≥ 0, got {weight}")
        pairs.append((penalty, weight))
    return pairs


def _fixed_weight(name: str, weight: Any) -> float:
    """``weight`` as a float; a tensor that requires grad (a learnable weight) is refused: λ·R with a
    learnable λ ≥ 0 is minimised by λ → 0 (the penalty switched off), so a learned weight needs a
    constrained or min-max scheme of its own, not a term of this sum."""
    if isinstance(weight, torch.Tensor):
        if weight.requires_grad:
            raise TypeError(f"the weight of {name} is a tensor that requires grad (a learnable weight); the "
                            "objective's weights are fixed numbers: float() would cut it from the graph and it "
                            "would never learn, and minimising λ·R over λ ≥ 0 only drives λ to 0. Pass a number "
                            f"(weight.item()), or add your own term to the loss: loss + λ * {name}(model, x, y)")
        if weight.numel() != 1:
            raise ValueError(f"the weight of {name} must be one number, got a tensor of shape {tuple(weight.shape)}")
    try:
        return float(weight)
    except (TypeError, ValueError):
        raise TypeError(f"the weight of {name} must be a number, got {weight!r} ({type(weight).__name__})") from None


class Objective(nn.Module):
    """The training loss: loss = CE(f(x), y) + Σ_i λ_i · rate_i · min(R_i, clip_i), with one
    shared forward pass and one saliency per scalar kind for all penalties.

    Args:
        penalties: ``{penalty or its name: weight λ}`` (or an iterable of penalties, or of
            ``(penalty, weight)`` pairs); weights finite and ≥ 0. Weight 0: monitored only.
        seed: seeds the generator random penalties draw from (Symmetry's angle, EG's references);
            recorded in run configs as ``objective_seed``. The generator's state and the call
            counter are the objective's state (``state_dict()["_extra_state"]``), so a checkpoint
            of the objective resumes with the same draws.
        cross_entropy: include the CE term. monitor_every: how often (in calls) weight-0 penalties
            are computed for logging (1: every batch).
        rates: XIL's normalisation rates (penalty name -> rate; Friedrich et al. 2023), multiplying
            the weights. clip: name -> cap (or one cap for all) on each raw R before weighting.
        explained_layer: for token ids (B×T, with ``lengths`` or ``padding_mask`` among the
            extras), the embedding module whose output is explained.
        mask_meanings: what the batches' masks mark, ``{extra: "must_not_use" | "evidence"}``
            (documentation: guide/concepts); :func:`~explainreg.training.train` adds the data set's
            own statement (:meth:`check_masks`). A penalty defined for the other meaning than its
            mask's stated one (RRR given an evidence mask, HINT or Locality a shortcut mask) is refused
            with a ``ValueError`` that says what to pass.
        mask_convert: ``"complement"``: such a penalty trains on 1 − m instead (the one stated
            conversion); None: refuse.

    Shape:
        Called as ``objective(model, x, y, **extras)`` with x B×…, y B; returns an
        :class:`ObjectiveOutput` (``loss`` 0-d, ``logits`` B×K).

    Returns:
        :class:`ObjectiveOutput`.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from torch import nn
        >>> from explainreg.penalties import GradientL1
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> out = Objective({GradientL1(): 0.5})(net, x, y)
        >>> sorted(out.terms)
        ['ce', 'gradient_l1', 'loss']
        >>> ce, r = F.cross_entropy(net(x), y), GradientL1()(net, x, y)
        >>> bool(torch.isclose(out.loss, ce + 0.5 * r))
        True
        >>> out.loss.backward()
    """

    def __init__(self, penalties: Mapping[Penalty | str, float] | Iterable | None = None, *,
                 seed: int = 0, cross_entropy: bool = True, monitor_every: int = 1,
                 rates: Mapping[str, float] | None = None, clip: Mapping[str, float] | float | None = None,
                 explained_layer: str | None = None, mask_meanings: Mapping[str, str] | None = None,
                 mask_convert: str | None = None) -> None:
        super().__init__()
        self.explained_layer = explained_layer
        pairs = _as_pairs(penalties)
        self.penalties = nn.ModuleList(p for p, _ in pairs)
        self.weights = [w for _, w in pairs]
        self.names = _unique_names([p.name for p, _ in pairs])
        if mask_convert is not None and mask_convert not in CONVERSIONS:
            raise ValueError(f"mask_convert must be None (refuse a mask of the other meaning) or one of {CONVERSIONS} "
                             f"(1 − m), got {mask_convert!r}")
        self.mask_convert = mask_convert
        self.mask_meanings = {k: str(check_mask_meaning(v, f"mask_meanings[{k!r}]"))
                              for k, v in dict(mask_meanings or {}).items() if v is not None}
        self.mask_routes: dict[str, MaskRoute] = {}
        self.check_masks({}, source="the Objective's mask_meanings")
        self.cross_entropy = cross_entropy
        if int(monitor_every) < 1:
            raise ValueError(f"monitor_every must be a positive number of batches, got {monitor_every}")
        self.monitor_every = int(monitor_every)
        self.calls = 0
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.set_rates(rates)
        self.clip = _per_penalty("clip", clip, self.names)

    def check_masks(self, meanings: Mapping[str, str], source: str = "the data") -> dict[str, MaskRoute]:
        """Check every penalty that reads a mask against what the data's masks are stated to mark
        (``meanings`` with the objective's own ``mask_meanings``; a contradiction between the two is
        refused) and keep how each reads its mask (:func:`~explainreg.inputs.mask_route`): as it is, or
        its complement where ``mask_convert="complement"``. A penalty whose mask's stated meaning is
        the other one is a ``ValueError`` that says what to pass. Returns ``{penalty name: route}``.

        Example:
            >>> from explainreg.penalties import RRR
            >>> Objective({RRR(): 10}).check_masks({"mask": "evidence"})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: rrr is defined for masks that mark what the model must not use, but `mask` of the data ...
            >>> Objective({RRR(): 10}, mask_convert="complement").check_masks({"mask": "evidence"})
            {'rrr': MaskRoute(read='mask', to='mask', complement=True)}
        """
        stated = dict(self.mask_meanings)
        for extra, meaning in dict(meanings).items():
            meaning = check_mask_meaning(meaning, f"mask_meanings[{extra!r}]")
            if meaning is None:
                continue
            if stated.get(extra, meaning) != meaning:
                raise ValueError(f"`{extra}` was stated to mark {stated[extra]} (the Objective's mask_meanings, "
                                 f"--mask-meaning), and {source} says {meaning}; state one meaning (leave "
                                 "mask_meanings / --mask-meaning out to take the data's)")
            stated[extra] = meaning
        routes = {}
        for name, penalty in zip(self.names, self.penalties):
            reads = penalty.reads_mask()
            if reads is not None:
                routes[name] = mask_route(name, reads[0], reads[1], stated, self.mask_convert, source)
        self.mask_routes = routes
        return dict(routes)

    def _active(self) -> list[tuple[str, Penalty, float]]:
        monitor = self.calls % self.monitor_every == 0
        return [(n, p, w) for n, p, w in zip(self.names, self.penalties, self.weights) if w != 0 or monitor]

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **extras: Any) -> ObjectiveOutput:
        active = self._active()
        self.calls += 1
        needs_grad = any(p.needs_input_grad for _, p, _ in active)
        ctx = PenaltyContext(model, x, y, extras, self.generator, input_grad=needs_grad, layer=self.explained_layer)
        terms: dict[str, float] = {}
        loss = F.cross_entropy(ctx.logits, y) if self.cross_entropy else ctx.logits.new_zeros(())
        terms["ce"] = float(loss.detach()) if self.cross_entropy else 0.0
        shared = ctx.extras
        for name, penalty, weight in active:
            route = self.mask_routes.get(name)
            ctx.extras = shared if route is None or route.as_is else {**shared, route.to: route.apply(shared, name)}
            if weight == 0:
                with torch.enable_grad():
                    value = penalty.evaluate(ctx).detach()
            else:
                value = penalty.evaluate(ctx)
                capped = value if self.clip.get(name) is None else value.clamp(max=self.clip[name])
                loss = loss + weight * self.rates.get(name, 1.0) * capped
            terms[name] = float(value.detach())
        ctx.extras = shared
        terms["loss"] = float(loss.detach())
        return ObjectiveOutput(loss, terms, ctx.logits)

    def get_extra_state(self) -> dict[str, Any]:
        """The generator's state and the call counter (in ``state_dict()``, key ``_extra_state``)."""
        return {"generator": self.generator.get_state(), "calls": self.calls, "seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned (``load_state_dict``)."""
        if not isinstance(state, dict) or "generator" not in state or "calls" not in state:
            raise ValueError("not an Objective state: expected {'generator': ..., 'calls': ...} from "
                             "Objective.state_dict()")
        self.generator.set_state(torch.as_tensor(state["generator"]).cpu())
        self.calls = int(state["calls"])
        self.seed = state.get("seed", self.seed)

    def extra_repr(self) -> str:
        return f"seed={self.seed}, cross_entropy={self.cross_entropy}, monitor_every={self.monitor_every}"

    def set_rates(self, rates: Mapping[str, float] | None) -> None:
        """XIL's normalisation rates (Friedrich et al. 2023): penalty ``name`` enters the loss as
        weight · rate · R (see :func:`explainreg.training.rates.normalisation_rates`); None: all 1."""
        self.rates = _per_penalty("rates", rates, self.names)

    def config(self) -> list[dict[str, Any]]:
        """Each penalty's name, weight and settings (for run configs)."""
        return [{"name": n, "penalty": p.name, "weight": w, "settings": p.settings(),
                 **({"mask": _described(self.mask_routes[n])} if not self.mask_routes.get(n, _AS_IS).as_is else {}),
                 **({"monitor_every": self.monitor_every} if w == 0 else {}),
                 **({"rate": self.rates[n]} if n in self.rates else {}),
                 **({"clip": self.clip[n]} if n in self.clip else {})}
                for n, p, w in zip(self.names, self.penalties, self.weights)]


_AS_IS = MaskRoute("mask", "mask", False)


def _described(route: MaskRoute) -> str:
    """How a penalty reads its mask, for run configs: ``"1 − mask"``, ``"mask as reward_mask"``."""
    read = f"1 − {route.read}" if route.complement else route.read
    return read if route.read == route.to else f"{read} as {route.to}"


def _per_penalty(what: str, values: Mapping[str, float] | float | None, names: list[str]) -> dict[str, float]:
    """``{penalty name: value}`` for ``rates`` / ``clip`` (a number applies to every penalty), checked."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        values = {n: values for n in names}
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"{what} names penalties {sorted(unknown)} that are not in the objective "
                         f"(its penalties: {', '.join(names) or 'none'})")
    out = {}
    for name, value in values.items():
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{what}[{name!r}] must be a finite number ≥ 0, got {value}")
        out[name] = value
    return out


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


__all__ = ["Objective", "ObjectiveOutput"]
