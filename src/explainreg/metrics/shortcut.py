"""Behavioural shortcut evidence, accumulated over batches (documentation: methods/shortcuts): does the
model use the annotated region (a **must-not-use** mask)? :class:`FlipRate`, :class:`ShortcutReliance`,
:class:`GroupAccuracy` and :class:`DecisionShare` are registered in :data:`~explainreg.metrics.METRICS`
(``flip_rate``, ``shortcut_reliance``, ``group_accuracy``, ``decision_share``); their definitions and
computations are :mod:`explainreg.metrics.functional.shortcut`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .._validation import check_choice
from ..inputs import MUST_NOT_USE
from ..modes import eval_mode
from ..registry import Registry
from ._core import MAX_BATCH, Metric, MetricResult, scalar_result, validation
from .functional.shortcut import (INTERVENTIONS, Shortcut, _reliance_value, _share_value, decision_share_rows,
                                  flip_rows, group_accuracy, group_rows, group_table, shortcut_rows)
from .registry import METRICS

__all__ = ["DecisionShare", "FlipRate", "GroupAccuracy", "ShortcutReliance"]

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------- classes
class _ShortcutMetric(Metric):
    """Shared: ``update(model, x, y, attributions=None, mask=None, *, index=None)``; the mask marks
    what the model must not use (documentation: guide/concepts)."""

    needs_attributions: ClassVar[bool] = False
    needs_mask: ClassVar[bool] = True
    mask_meaning: ClassVar[str] = MUST_NOT_USE
    #: whether the constructor takes the data set's shortcut hook (``shortcut=``,
    #: :func:`~explainreg.data.shortcuts.shortcut_for`)
    needs_shortcut: ClassVar[bool] = False

    def update(self, model: nn.Module, x: Tensor, y: Tensor | None = None, attributions: Tensor | None = None,
               mask: Any = None, *, index: Tensor | None = None) -> "_ShortcutMetric":
        if model is None or y is None or mask is None:
            raise ValueError(f"{self.name} needs the model, the labels and the must-not-use mask: call "
                             "update(model, x, y, mask=MASK)")
        self._begin_update(x, None, index)
        with eval_mode(model), validation(self.validate_args):
            rows = self.rows(model, x, y, mask)
        self._rows.append(rows.detach().cpu())
        self._batches += 1
        return self

    def rows(self, model: nn.Module, x: Tensor, y: Tensor, mask: Any) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@METRICS.register("flip_rate")
class FlipRate(_ShortcutMetric):
    """Share of predictions that change when the annotated region is replaced (:func:`flip_rate`).

    Args:
        intervention: one of :data:`~explainreg.metrics.functional.shortcut.INTERVENTIONS` (default ``"mean"``).
        shortcut: the data set's hook (``intervention="shortcut"``). donors: ``(x_d, y_d)`` for
            ``"other_class"`` (default: each batch itself). token: the neutral id for ``"token"``.
        seed: the draws' key. kernel: the blur's width. max_batch: rows per forward pass.

    Example::

        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False); _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        >>> x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]]); m = torch.tensor([1.0, 0.0])
        >>> FlipRate(intervention="other_class")(model, x, torch.tensor([0, 1]), mask=m).value
        1.0
    """

    name = "flip_rate"
    higher_is_better = False
    unrecorded = ("max_batch", "shortcut", "donors")

    def __init__(self, intervention: str = "mean", *, shortcut: Shortcut | None = None,
                 donors: tuple[Tensor, Tensor] | None = None, token: int | None = None, seed: int = 0,
                 kernel: int = 11, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        check_choice("intervention", intervention, INTERVENTIONS)
        self.intervention, self.shortcut, self.donors, self.token = intervention, shortcut, donors, token
        self.seed, self.kernel, self.max_batch = int(seed), int(kernel), int(max_batch)

    def rows(self, model, x, y, mask):
        return flip_rows(model, x, y, mask, self.intervention, shortcut=self.shortcut, donors=self.donors,
                         token=self.token, seed=self.seed, index=self.batch_index, kernel=self.kernel,
                         max_batch=self.max_batch)

    def summarize(self, rows: Tensor) -> MetricResult:
        return scalar_result(self, rows)


@METRICS.register("shortcut_reliance", aliases=("reliance",))
class ShortcutReliance(_ShortcutMetric):
    """Accuracy with the label's own shortcut minus accuracy with another class's (lower is better),
    with ``extra``: ``accuracy_agreeing``, ``accuracy_disagreeing``, ``flip_rate`` (x vs the other
    class's shortcut), ``worst_group_accuracy`` / ``average_group_accuracy`` over (class,
    agreeing/disagreeing) and the ``groups`` table (K×2: disagreeing, agreeing).

    Args:
        shortcut: the data set's hook (:func:`explainreg.data.shortcuts.shortcut_for`).
        seed: the draws' key. max_batch: rows per forward pass.
    """

    name = "shortcut_reliance"
    higher_is_better = False
    needs_shortcut = True
    unrecorded = ("max_batch", "shortcut")

    def __init__(self, shortcut: Shortcut | None = None, *, seed: int = 0, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        if shortcut is None or not callable(shortcut):
            raise ValueError("shortcut_reliance plants each class's shortcut: pass shortcut=HOOK, the data set's hook "
                             "(explainreg.data.shortcuts.shortcut_for('decoymnist'), TokenDecoyShortcut(vocab), ...)")
        self.shortcut, self.seed, self.max_batch = shortcut, int(seed), int(max_batch)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "shortcut": repr(self.shortcut)}

    def rows(self, model, x, y, mask):
        return shortcut_rows(model, x, y, mask, self.shortcut, seed=self.seed, index=self.batch_index,
                             max_batch=self.max_batch)

    def summarize(self, rows: Tensor) -> MetricResult:
        value = _reliance_value(rows)
        y = rows[:, 0].long()
        correct = torch.cat([rows[:, 2], rows[:, 1]])
        groups = torch.cat([torch.zeros_like(y), torch.ones_like(y)])
        table = group_table(correct, torch.cat([y, y]), groups)
        worst, average = group_accuracy(correct, torch.cat([y, y]), groups)
        return MetricResult(self.name, float(value[0]), self.higher_is_better, per_image=(rows[:, 1] - rows[:, 2]),
                            n_images=len(rows), extra={
                                "accuracy_agreeing": float(value[1]), "accuracy_disagreeing": float(value[2]),
                                "flip_rate": float(value[3]), "worst_group_accuracy": float(worst),
                                "average_group_accuracy": float(average), "groups": table.tolist()})


@METRICS.register("group_accuracy", aliases=("worst_group_accuracy",))
class GroupAccuracy(_ShortcutMetric):
    """Worst-group accuracy over (class, shortcut present / absent) cells, a sample's shortcut
    present where its mask is non-empty; ``extra``: ``average_group_accuracy``, ``accuracy`` and
    the ``groups`` table (K×2: absent, present; NaN for an empty cell).

    Example::

        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False); _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]); y = torch.tensor([0, 1, 1])
        >>> r = GroupAccuracy()(model, x, y, mask=torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
        >>> r.value, r.extra["groups"]
        (0.0, [[nan, 1.0], [1.0, 0.0]])
    """

    name = "group_accuracy"
    higher_is_better = True

    def __init__(self, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self.max_batch = int(max_batch)

    def rows(self, model, x, y, mask):
        return group_rows(model, x, y, mask, max_batch=self.max_batch)

    def summarize(self, rows: Tensor) -> MetricResult:
        y, correct, present = rows[:, 0].long(), rows[:, 1], rows[:, 2].long()
        table = group_table(correct, y, present)
        worst, average = group_accuracy(correct, y, present)
        return MetricResult(self.name, float(worst), self.higher_is_better, per_image=correct, n_images=len(rows),
                            extra={"average_group_accuracy": float(average), "accuracy": float(correct.mean()),
                                   "groups": table.tolist()})


@METRICS.register("decision_share")
class DecisionShare(_ShortcutMetric):
    """The annotated region's share of the decision margins f_y − f_{y'} summed over the images
    (lower is better for a must-not-use region); ``extra``: ``logit_share`` (the mean per-logit
    share beside it) and ``median_margin_share`` (of the per-image ratios) (:func:`decision_share_rows`).

    Args:
        method: ``"cd"`` (contextual decomposition) or ``"grad_x_input"``. target: ``"label"`` or
            ``"prediction"``.
    """

    name = "decision_share"
    higher_is_better = False

    def __init__(self, method: str = "cd", target: str = "label") -> None:
        super().__init__()
        check_choice("method", method, ("cd", "grad_x_input"))
        check_choice("target", target, ("label", "prediction"))
        self.method, self.target = method, target

    def rows(self, model, x, y, mask):
        return decision_share_rows(model, x, y, mask, method=self.method, target=self.target)

    def summarize(self, rows: Tensor) -> MetricResult:
        value = _share_value(rows)
        return MetricResult(self.name, float(value[0]), self.higher_is_better, per_image=rows[:, 0],
                            n_images=len(rows), n_nan=int(torch.isnan(rows[:, 0]).sum()),
                            extra={"logit_share": float(value[1]),
                                   "median_margin_share": float(rows[:, 0].nanmedian())})


#: the behavioural metrics: a live view (:class:`~explainreg.registry.RegistryView`) of the entries of
#: :data:`~explainreg.metrics.METRICS` that declare a must-not-use mask and no attributions (``mask_meaning``,
#: ``needs_attributions``), under their names there; a metric registered later that declares them appears in it
SHORTCUT_METRICS: Registry[type[_ShortcutMetric]] = METRICS.where(
    lambda cls: getattr(cls, "mask_meaning", None) == MUST_NOT_USE and not getattr(cls, "needs_attributions", True),
    "behavioural shortcut metric")
__all__ += ["SHORTCUT_METRICS"]
