"""Behavioural shortcut evidence for the studies' result tables (documentation: methods/shortcuts): one call per
trained model gives the columns every shortcut study prints beside its explanation numbers.

Columns (percent, except the shares): ``accuracy`` on the evaluated set; with the data set's
shortcut hook, ``acc_agree`` / ``acc_disagree`` (the label's own / another class's shortcut
planted), ``reliance`` (their gap), ``flip_shortcut`` (predictions changed by another class's
shortcut), ``worst_group`` / ``average_group`` over (class, agreeing / disagreeing); without a hook,
``worst_group`` / ``average_group`` over (class, shortcut present / absent); for dense inputs
``flip_other_class`` (the region from a donor of another class) and ``flip_mean`` (a neutral fill);
and the region's share of the decision margin and of the class's logit from contextual
decomposition (``cd_margin_share``, ``cd_logit_share``) and gradient × input (``gxi_margin_share``,
``gxi_logit_share``), on the evaluated inputs (a set without the shortcut: on the inputs with the
label's own shortcut planted).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..inputs import MUST_NOT_USE, infer_layout, mask_for
from ..metrics.shortcut import DecisionShare, FlipRate, GroupAccuracy, ShortcutReliance
from ..modes import model_device

__all__ = ["COLUMNS", "format_row", "shortcut_evidence"]

#: the columns :func:`shortcut_evidence` returns, in table order, with their headings
COLUMNS = {
    "accuracy": "acc", "acc_agree": "acc, shortcut agrees", "acc_disagree": "acc, shortcut disagrees",
    "reliance": "reliance", "flip_shortcut": "flip, other class's shortcut",
    "flip_other_class": "flip, other class's region",
    "flip_mean": "flip, mean fill", "worst_group": "worst group", "average_group": "average group",
    "cd_logit_share": "CD share of logit", "cd_margin_share": "CD share of margin",
    "gxi_logit_share": "g×x share of logit", "gxi_margin_share": "g×x share of margin",
}


def shortcut_evidence(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, *,
                      meaning: str | None = MUST_NOT_USE, shortcut: Any = None, seed: int = 0,
                      batch_size: int = 500, shares: Sequence[str] = ("cd", "grad_x_input"),
                      region_metrics: bool = True, source: str = "the data") -> dict[str, float]:
    """The behavioural columns (:data:`COLUMNS`) of one model on one evaluation set.

    Args:
        model: the trained classifier. x, y: the evaluation inputs (images or token ids) and labels.
        mask: the annotated region per sample. meaning: what the mask marks (it must be
            ``"must_not_use"``; :func:`explainreg.inputs.mask_for` refuses anything else).
        shortcut: the data set's hook (:class:`~explainreg.data.shortcuts.DecoyShortcut`,
            :class:`~explainreg.data.shortcuts.TokenDecoyShortcut`), or None.
        seed: the draws' key. batch_size: samples per update. shares: the decision-share methods.
        region_metrics: the flips of a replaced region (``False`` where the mask is not the shortcut's
            region, e.g. ColorMNIST, whose shortcut is the digit's colour: only the hook's reliance and the
            groups are computed).
        source: names the data in messages.

    Returns:
        ``{column: value}``; columns that do not apply are NaN.
    """
    mask = mask_for(mask, meaning, MUST_NOT_USE, "the behavioural shortcut evidence", source=source)
    device = model_device(model)
    tokens = infer_layout(x) == "tokens"
    metrics: dict[str, Any] = {"group": GroupAccuracy()}
    if shortcut is not None:
        metrics["reliance"] = ShortcutReliance(shortcut, seed=seed)
    if not tokens and region_metrics:
        metrics["flip_other_class"] = FlipRate("other_class", donors=(x, y), seed=seed)
        metrics["flip_mean"] = FlipRate("mean", seed=seed)
    for method in shares if region_metrics else ():
        metrics[f"share_{method}"] = DecisionShare(method)
    for start in range(0, len(x), batch_size):
        index = torch.arange(start, min(start + batch_size, len(x)))
        xb, yb, mb = x[index].to(device), y[index].to(device), torch.as_tensor(mask)[index].to(device)
        for name, metric in metrics.items():
            if name.startswith("share_") and shortcut is not None and not bool(mb.flatten(1).gt(0).any()):
                # a set without the shortcut: the shares on the inputs with the label's own shortcut
                planted = shortcut(xb, mb, yb, index)
                metric.update(model, planted, yb, mask=shortcut.region(planted).expand_as(planted) if not tokens
                              else shortcut.region(planted), index=index)
            else:
                metric.update(model, xb, yb, mask=mb, index=index)
    return _columns({name: metric.compute() for name, metric in metrics.items()})


def _columns(results: dict[str, Any]) -> dict[str, float]:
    out = dict.fromkeys(COLUMNS, math.nan)
    group = results["group"]
    out["accuracy"] = 100 * group.extra["accuracy"]
    out["worst_group"], out["average_group"] = 100 * group.value, 100 * group.extra["average_group_accuracy"]
    if "reliance" in results:
        r = results["reliance"]
        out.update(acc_agree=100 * r.extra["accuracy_agreeing"], acc_disagree=100 * r.extra["accuracy_disagreeing"],
                   reliance=100 * r.value, flip_shortcut=100 * r.extra["flip_rate"],
                   worst_group=100 * r.extra["worst_group_accuracy"],
                   average_group=100 * r.extra["average_group_accuracy"])
    for key in ("flip_other_class", "flip_mean"):
        if key in results:
            out[key] = 100 * results[key].value
    for method, prefix in (("cd", "cd"), ("grad_x_input", "gxi")):
        if f"share_{method}" in results:
            share = results[f"share_{method}"]
            out[f"{prefix}_margin_share"], out[f"{prefix}_logit_share"] = share.value, share.extra["logit_share"]
    return out


def format_row(values: dict[str, float], columns: Sequence[str] = tuple(COLUMNS)) -> list[str]:
    """The columns as table cells: percentages with one decimal, shares with three, NaN as "–"."""
    cells = []
    for key in columns:
        v = values.get(key, math.nan)
        cells.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else
                     (f"{v:.3f}" if key.endswith("share") else f"{v:.1f}"))
    return cells
