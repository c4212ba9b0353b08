"""Behavioural shortcut evidence as functions of one batch (documentation: methods/shortcuts): does the model use the annotated region?

An explanation metric says where an explanation points; a penalty that optimises the explanation
can move it without changing what the model uses. These metrics ask the model. For inputs x with
an annotated region m (the spurious region, a **must-not-use** mask, documentation: guide/concepts) and labels y:

- **intervention** x̃ = x ⊙ (1 − m) + r ⊙ m with r from (a) ``"other_class"``: the same region of a
  donor of another class, (b) ``"shortcut"``: the other class's shortcut planted by a data set hook
  (:class:`explainreg.data.shortcuts.DecoyShortcut`, :class:`explainreg.data.shortcuts.TokenDecoyShortcut`),
  (c) a neutral fill: ``"mean"`` (the image's per-channel mean outside the region), ``"blur"``
  (a box blur), ``"noise"`` (seeded Gaussian noise of the image's per-channel mean and std outside the
  region); for token ids ``"token"`` (a neutral id such as ``[UNK]``) or ``"delete"``, padding never
  touched. **Flip rate** = P[argmax f(x̃) ≠ argmax f(x)].
- **reliance** (with a shortcut hook): accuracy with the shortcut of the label's class planted
  (agreeing) minus accuracy with another class's shortcut planted (disagreeing).
- **groups**: accuracy per (class, shortcut present/absent) or (class, agreeing/disagreeing);
  worst-group and average-group accuracy (Sagawa et al. 2020, "Distributionally robust neural networks").
- **decision share**: the region's share of the margin f_y − f_{y'} (y' the runner-up),
  (rel_y − rel_{y'}) / (f_y − f_{y'}) from contextual decomposition, Σ_m ∂(f_y − f_{y'})/∂x · x /
  (f_y − f_{y'}) from gradient × input, summarised over a data set as Σ (region's part) / Σ margin;
  beside the per-logit share |rel_y| / (|rel_y| + |irrel_y|) (CD) or |Σ_m g_y x| / (|Σ_m g_y x| +
  |Σ_{1−m} g_y x|) (gradient × input).

Random draws (donors, other classes, noise, planted positions) are keyed by (seed, the sample's
position in the data set), as every metric's (:mod:`explainreg._random`), so no value depends on
batching. The functions return tensors; the classes in :mod:`explainreg.metrics.shortcut` accumulate them over
batches and are registered (``flip_rate``, ``shortcut_reliance``, ``group_accuracy``, ``decision_share``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..._random import as_index, keyed_draw
from ..._validation import check_batch, check_choice, check_labels, check_logits
from ...decomposition import decompose
from ...inputs import dense_mask, explain_input, infer_layout, token_mask
from ...modes import eval_mode, model_device
from .._core import _VALIDATE_ARGS, MAX_BATCH, forward_chunks, reduce_rows, validation

__all__ = ["DENSE_FILLS", "INTERVENTIONS", "TOKEN_FILLS", "Shortcut", "decision_share", "decision_share_rows",
           "delete_tokens", "flip_rate", "flip_rows", "group_accuracy", "group_rows", "group_table", "intervene",
           "intervened", "neutral_fill", "other_class_donors", "other_class_targets", "replace_tokens",
           "shortcut_reliance", "shortcut_rows"]

#: neutral fills of a dense region, and of a token region
DENSE_FILLS = ("mean", "blur", "noise")
TOKEN_FILLS = ("token", "delete")
INTERVENTIONS = ("other_class", "shortcut") + DENSE_FILLS + TOKEN_FILLS
#: a data set's shortcut: ``shortcut(x, mask, target, index) -> x̃``, the class ``target``'s shortcut
#: planted in x (replacing any there), row b keyed by ``index[b]``
Shortcut = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Tensor = torch.Tensor


# ------------------------------------------------------------------------------------ interventions
def _region(x: Tensor, mask: Any, who: str) -> Tensor:
    """The dense region mask expanded to x's shape (float, values in [0, 1])."""
    return dense_mask(mask, x, who=who).expand_as(x)


def intervene(x: Tensor, mask: Any, replacement: Tensor | float) -> Tensor:
    """x̃ = x ⊙ (1 − m) + r ⊙ m for dense inputs (images B×C×H×W, series B×C×T, tabular B×F).

    Args:
        x: the inputs. mask: the region (any one-mask form of :func:`explainreg.inputs.normalize_mask`).
        replacement: r, broadcastable to x (a number, a B×… tensor).

    Shape:
        x (B, ...); output the shape of x.

    Returns:
        The intervened inputs.

    Example::

        >>> x = torch.ones(1, 1, 2, 2); m = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        >>> intervene(x, m, 5.0)[0, 0].tolist()
        [[5.0, 1.0], [1.0, 1.0]]
    """
    m = _region(x, mask, "intervene")
    r = torch.as_tensor(replacement, dtype=x.dtype, device=x.device)
    return torch.where(m > 0, x * (1 - m) + r.expand_as(x) * m, x)


def _outside_stats(x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample and channel, the mean and std of x outside the region (the whole input when the
    region covers it); shapes broadcastable to x."""
    dims = tuple(range(2, x.dim())) if x.dim() > 2 else (1,)
    out = 1 - m
    n = out.sum(dims, keepdim=True)
    whole = n == 0
    out = torch.where(whole, torch.ones_like(out), out)
    n = out.sum(dims, keepdim=True)
    mean = (x * out).sum(dims, keepdim=True) / n
    var = ((x - mean).pow(2) * out).sum(dims, keepdim=True) / n
    return mean, var.sqrt()


def neutral_fill(x: Tensor, mask: Any, fill: str = "mean", *, seed: int = 0, index: Tensor | None = None,
                 kernel: int = 11) -> Tensor:
    """A neutral replacement r for the region of dense inputs (the shape of x).

    Args:
        x: the inputs. mask: the region.
        fill: ``"mean"``: per sample and channel, the mean of x outside the region; ``"noise"``: that
            mean + its std × N(0, 1), keyed per sample (stream ``"shortcut_noise"``); ``"blur"``: x
            smoothed by a ``kernel``-wide box (images and series; at the border the mean of the
            window's part inside the input).
        seed, index: the noise's key (default index: 0…B−1).
        kernel: the blur's odd width.

    Shape:
        x (B, ...); output the shape of x.

    Returns:
        r (only its values in the region matter).

    Raises:
        ValueError: an unknown fill, an even kernel, or a blur of tabular inputs.

    Example::

        >>> x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]]); m = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        >>> neutral_fill(x, m, "mean")[0, 0, 0, 0].item()      # (3 + 5 + 7) / 3
        5.0
    """
    check_choice("fill", fill, DENSE_FILLS)
    m = _region(x, mask, "neutral_fill")
    mean, std = _outside_stats(x, m)
    if fill == "mean":
        return mean.expand_as(x).clone()
    if fill == "noise":
        draws = keyed_draw("normal", seed, as_index(index, len(x)), tuple(x.shape[1:]), "shortcut_noise",
                           device=x.device, dtype=x.dtype)
        return mean + std * draws
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd width >= 1, got {kernel}")
    if x.dim() == 4:
        return F.avg_pool2d(x, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    if x.dim() == 3:
        return F.avg_pool1d(x, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    raise ValueError(f"fill='blur' smooths images (B×C×H×W) or series (B×C×T), not inputs of shape "
                     f"{tuple(x.shape)}; use fill='mean' or 'noise'")


def other_class_donors(y: Tensor, donor_y: Tensor, *, seed: int = 0, index: Tensor | None = None) -> Tensor:
    """For each sample b, the row of a donor whose label differs from y[b], drawn uniformly among
    them by a keyed draw (stream ``"shortcut_donor"``).

    Args:
        y: the samples' labels (B,). donor_y: the donors' labels (N,).
        seed, index: the draws' key (default index: 0…B−1).

    Returns:
        B donor rows (int64), on y's device.

    Raises:
        ValueError: a sample whose class is the only one among the donors.

    Example::

        >>> d = other_class_donors(torch.tensor([0, 1]), torch.tensor([0, 0, 1]))
        >>> d[0].item(), d[1].item() in (0, 1)
        (2, True)
    """
    donor_y = donor_y.to(y.device)
    other = donor_y[None, :] != y[:, None]                          # B×N
    n = other.sum(1)
    if bool((n == 0).any()):
        bad = int(y[n == 0][0])
        raise ValueError(f"no donor of another class than {bad}: the donors hold only that class; pass donors "
                         "with at least two classes")
    u = keyed_draw("uniform", seed, as_index(index, len(y)), (), "shortcut_donor", device=y.device,
                   dtype=torch.float64)
    k = (u * n).floor().long().clamp_max(n - 1)
    return (other.long().cumsum(1) <= k[:, None]).sum(1)


def other_class_targets(y: Tensor, num_classes: int, *, seed: int = 0, index: Tensor | None = None) -> Tensor:
    """For each sample a class ≠ y[b], uniform over the other ``num_classes − 1`` (keyed draw,
    stream ``"shortcut_target"``); for two classes, 1 − y.

    Example::

        >>> other_class_targets(torch.tensor([0, 1, 1]), 2).tolist()
        [1, 0, 0]
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for another class to exist, got {num_classes}")
    u = keyed_draw("uniform", seed, as_index(index, len(y)), (), "shortcut_target", device=y.device,
                   dtype=torch.float64)
    step = 1 + (u * (num_classes - 1)).floor().long().clamp_max(num_classes - 2)
    return (y + step) % num_classes


def replace_tokens(ids: Tensor, mask: Any, token: int | Tensor, padding: Tensor | None = None) -> Tensor:
    """Token ids with the masked real tokens replaced by ``token`` (an id, or B×T ids); padding is
    never replaced.

    Example::

        >>> replace_tokens(torch.tensor([[5, 6, 0]]), torch.tensor([[0, 1, 1]]), 1,
        ...                padding=torch.tensor([[True, True, False]])).tolist()
        [[5, 1, 0]]
    """
    m = token_mask(mask, ids, "replace_tokens") > 0
    if padding is not None:
        m = m & padding.to(ids.device).bool()
    return torch.where(m, torch.as_tensor(token, device=ids.device).to(ids.dtype).expand_as(ids), ids)


def delete_tokens(ids: Tensor, mask: Any, padding: Tensor | None = None, pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Token ids with the masked real tokens removed, the rest moved left and padded with ``pad_id``.

    Returns:
        ``(ids, lengths)``: B×T ids and the B new lengths (real tokens left).

    Example::

        >>> delete_tokens(torch.tensor([[5, 6, 7, 0]]), torch.tensor([[0, 1, 0, 0]]),
        ...               padding=torch.tensor([[True, True, True, False]]))
        (tensor([[5, 7, 0, 0]]), tensor([2]))
    """
    m = token_mask(mask, ids, "delete_tokens") > 0
    real = padding.to(ids.device).bool() if padding is not None else torch.ones_like(m)
    keep = real & ~m
    # stable order: kept tokens first, in their order
    order = torch.sort((~keep).long(), dim=1, stable=True).indices
    moved = ids.gather(1, order)
    lengths = keep.sum(1)
    positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
    return torch.where(positions < lengths[:, None], moved, torch.full_like(moved, pad_id)), lengths


def _padding(model: nn.Module, ids: Tensor) -> Tensor:
    """B×T bool, True at real tokens (the embedding's ``padding_idx``; all real without one)."""
    return explain_input(model, ids).padding


def intervened(model: nn.Module, x: Tensor, y: Tensor, mask: Any, intervention: str = "mean", *,
               shortcut: Shortcut | None = None, donors: tuple[Tensor, Tensor] | None = None,
               token: int | None = None, seed: int = 0, index: Tensor | None = None, kernel: int = 11) -> Tensor:
    """The intervened inputs x̃ for one of :data:`INTERVENTIONS` (see the module doc).

    Args:
        model: the classifier (for the padding of token ids and the number of classes).
        x, y: the inputs and labels. mask: the annotated (must-not-use) region.
        intervention: ``"other_class"`` (donors: ``(x_d, y_d)`` with their masks' region taken from
            the same positions; default: the batch itself), ``"shortcut"`` (``shortcut`` hook, the
            target class drawn by :func:`other_class_targets`), ``"mean"``, ``"blur"``, ``"noise"``
            (dense inputs), ``"token"`` (``token``: a neutral id, e.g. ``[UNK]``) or ``"delete"`` (token ids).
        seed, index: the draws' key. kernel: the blur's width.

    Returns:
        x̃ of x's shape (token ids: B×T, or B×T' for hooks that insert a token).

    Raises:
        ValueError: an intervention that does not fit the input, or a missing hook / token id.
    """
    check_choice("intervention", intervention, INTERVENTIONS)
    index = as_index(index, len(x))
    tokens = infer_layout(x) == "tokens"
    if intervention == "shortcut":
        if shortcut is None:
            raise ValueError("intervention='shortcut' plants another class's shortcut: pass shortcut=HOOK, the data "
                             "set's hook (e.g. explainreg.data.shortcuts.shortcut_for('decoymnist'))")
        k = _num_classes(model, x)
        return shortcut(x, mask, other_class_targets(y, k, seed=seed, index=index), index)
    if intervention in ("other_class",) + DENSE_FILLS and tokens:
        raise ValueError(f"intervention={intervention!r} replaces a dense region; token ids take 'token' or 'delete' "
                         "(or 'shortcut', a data set hook)")
    if intervention in TOKEN_FILLS and not tokens:
        raise ValueError(f"intervention={intervention!r} is defined for token ids; inputs of shape {tuple(x.shape)} "
                         "take 'mean', 'blur', 'noise', 'other_class' or 'shortcut'")
    if intervention == "other_class":
        x_d, y_d = donors if donors is not None else (x, y)
        x_d, y_d = torch.as_tensor(x_d), torch.as_tensor(y_d)
        rows = other_class_donors(y, y_d, seed=seed, index=index)
        return intervene(x, mask, x_d[rows.to(x_d.device)].to(x.device, x.dtype))
    if intervention in DENSE_FILLS:
        return intervene(x, mask, neutral_fill(x, mask, intervention, seed=seed, index=index, kernel=kernel))
    pad = _padding(model, x)
    if intervention == "delete":
        return delete_tokens(x, mask, pad)[0]
    if token is None:
        raise ValueError("intervention='token' replaces the masked tokens by a neutral id: pass token=ID (e.g. the "
                         "vocabulary's [UNK] id)")
    return replace_tokens(x, mask, token, pad)


def _prepare(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """x (a float batch or B×T token ids) and y checked and moved to the model's device; the model
    probe (logits B×K, labels in [0, K)) as :func:`explainreg.metrics._core.prepare`."""
    check_batch(x, y, tokens=True)
    device = model_device(model)
    x, y = x.detach().to(device), y.to(device)
    if _VALIDATE_ARGS.get():
        with torch.no_grad():
            probe = model(x[:1])
        check_logits(probe, 1)
        check_labels(y, probe.shape[1])
    return x, y


def _num_classes(model: nn.Module, x: Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


def _labels(model: nn.Module, x: Tensor, max_batch: int) -> Tensor:
    return forward_chunks(model, x, max_batch, output="label")


# ------------------------------------------------------------------------------------------ rows
def flip_rows(model: nn.Module, x: Tensor, y: Tensor, mask: Any, intervention: str = "mean", *,
              max_batch: int = MAX_BATCH, **options: Any) -> Tensor:
    """Per sample 1.0 if argmax f(x̃) ≠ argmax f(x), else 0.0 (B, float64); ``options`` as :func:`intervened`."""
    with eval_mode(model):
        x, y = _prepare(model, x, y)
        before = _labels(model, x, max_batch)
        after = _labels(model, intervened(model, x, y, mask, intervention, **options), max_batch)
    return (before != after).double()


def shortcut_rows(model: nn.Module, x: Tensor, y: Tensor, mask: Any, shortcut: Shortcut, *, seed: int = 0,
                  index: Tensor | None = None, max_batch: int = MAX_BATCH) -> Tensor:
    """Per sample ``[y, correct with its class's shortcut, correct with another class's shortcut,
    flipped (x vs the other class's shortcut)]`` (B×4, float64)."""
    with eval_mode(model):
        x, y = _prepare(model, x, y)
        index = as_index(index, len(x))
        other = other_class_targets(y, _num_classes(model, x), seed=seed, index=index)
        before = _labels(model, x, max_batch)
        agree = _labels(model, shortcut(x, mask, y, index), max_batch)
        disagree = _labels(model, shortcut(x, mask, other, index), max_batch)
    return torch.stack([y.double(), (agree == y).double(), (disagree == y).double(),
                        (disagree != before).double()], 1)


def group_rows(model: nn.Module, x: Tensor, y: Tensor, mask: Any, *, max_batch: int = MAX_BATCH) -> Tensor:
    """Per sample ``[label, correct, region present]`` (B×3, float64): the group of a sample is its class and
    whether its must-not-use region holds anything (a nonzero mask entry), :func:`group_accuracy`'s inputs.

    Shape:
        x: (B, ...), y: (B,), mask: broadcastable to x (B×T for token ids); output: (B, 3), float64.

    Example::

        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False); _ = model.weight.data.copy_(torch.eye(2))
        >>> x, y = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1])
        >>> group_rows(model, x, y, torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        tensor([[0., 1., 1.],
                [1., 0., 0.]], dtype=torch.float64)
    """
    x, y = _prepare(model, x, y)
    region = torch.as_tensor(mask, device=x.device)
    if infer_layout(x) == "tokens":
        present = token_mask(region, x, "group_accuracy").flatten(1).gt(0).any(1)
    else:
        present = _region(x, region.to(x.dtype), "group_accuracy").flatten(1).gt(0).any(1)
    correct = _labels(model, x, max_batch) == y
    return torch.stack([y.double(), correct.double(), present.double()], 1)


def decision_share_rows(model: nn.Module, x: Tensor, y: Tensor, mask: Any, *, method: str = "cd",
                        target: str = "label") -> Tensor:
    """Per sample ``[margin share, per-logit share, the region's part of the margin, the margin]``
    (B×4, float64) of the region (module doc).

    ``target="label"``: y is the labelled class, y' the highest other logit; ``"prediction"``:
    y = argmax f(x). The margin share is NaN where f_y = f_{y'}.
    """
    check_choice("method", method, ("cd", "grad_x_input"))
    check_choice("target", target, ("label", "prediction"))
    with eval_mode(model):
        x, y = _prepare(model, x, y)
        if method == "cd":
            with torch.no_grad():
                rel, irrel = decompose(model, x, mask)
            logits = rel + irrel
            cls, runner = _pair(logits, y, target)
            region_margin = rel.gather(1, cls) - rel.gather(1, runner)
            r_y, i_y = rel.gather(1, cls), irrel.gather(1, cls)
        else:
            inputs = explain_input(model, x)
            explained, logits = inputs.forward(model)
            cls, runner = _pair(logits.detach(), y, target)
            m = inputs.mask(mask, explained, "decision_share")
            diff = logits.gather(1, cls) - logits.gather(1, runner)
            g_diff, g_y = (torch.autograd.grad(t.sum(), explained, retain_graph=True)[0]
                           for t in (diff, logits.gather(1, cls)))
            gx_diff, gx_y = g_diff * explained.detach(), g_y * explained.detach()
            dims = tuple(range(1, explained.dim()))
            region_margin = (gx_diff * m).sum(dims)[:, None]
            r_y, i_y = (gx_y * m).sum(dims)[:, None], (gx_y * (1 - m)).sum(dims)[:, None]
            logits = logits.detach()
    margin = (logits.gather(1, cls) - logits.gather(1, runner)).double()
    margin_share = torch.where(margin != 0, region_margin.double() / margin, torch.full_like(margin, math.nan))
    total = r_y.abs() + i_y.abs()
    logit_share = torch.where(total > 0, r_y.abs() / total, torch.full_like(total, math.nan)).double()
    return torch.cat([margin_share, logit_share, region_margin.double(), margin], 1)


def _pair(logits: Tensor, y: Tensor, target: str) -> tuple[Tensor, Tensor]:
    """The explained class (B×1) and the runner-up (the highest other logit, B×1)."""
    cls = (y if target == "label" else logits.argmax(1))[:, None]
    others = logits.detach().scatter(1, cls, -math.inf)
    return cls, others.argmax(1, keepdim=True)


def group_table(correct: Tensor, y: Tensor, group: Tensor, num_classes: int | None = None,
                num_groups: int = 2) -> Tensor:
    """Accuracy per (class, group): a K×G float64 table, NaN for an empty cell.

    Args:
        correct: B booleans (or 0/1): the prediction is right. y: B labels.
        group: B integers in [0, num_groups): e.g. 1 = shortcut present / agreeing, 0 = absent / disagreeing.

    Example::

        >>> group_table(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 1, 1]))
        tensor([[0., 1.],
                [nan, 1.]], dtype=torch.float64)
    """
    k = int(num_classes if num_classes is not None else int(y.max()) + 1)
    cell = y.long() * num_groups + group.long()
    hits = torch.zeros(k * num_groups, dtype=torch.float64, device=y.device).index_add_(
        0, cell, torch.as_tensor(correct, device=y.device).double())
    n = torch.bincount(cell, minlength=k * num_groups).double()
    return torch.where(n > 0, hits / n.clamp_min(1), torch.full_like(n, math.nan)).view(k, num_groups)


def group_accuracy(correct: Tensor, y: Tensor, group: Tensor, num_classes: int | None = None,
                   num_groups: int = 2) -> Tensor:
    """``[worst-group accuracy, average-group accuracy]`` over the non-empty (class, group) cells of
    :func:`group_table` (a float64 2-vector).

    Example::

        >>> group_accuracy(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 1, 1]))
        tensor([0.0000, 0.6667], dtype=torch.float64)
    """
    table = group_table(correct, y, group, num_classes, num_groups)
    cells = table[~torch.isnan(table)]
    return torch.stack([cells.min(), cells.mean()])


# ------------------------------------------------------------------------------------ functionals
def flip_rate(model: nn.Module, x: Tensor, y: Tensor, mask: Any, intervention: str = "mean", *,
              reduction: str = "mean", validate_args: bool = True, **options: Any) -> Tensor:
    """P[argmax f(x̃) ≠ argmax f(x)] for an intervention on the region (:func:`intervened`).

    Args:
        model, x, y, mask, intervention, options: as :func:`intervened` (``max_batch`` too).
        reduction: ``"mean"`` (a 0-d float64) or ``"none"`` (B flips).

    Example::

        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False); _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        >>> x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]]); m = torch.tensor([1.0, 0.0])   # feature 0 decides
        >>> flip_rate(model, x, torch.tensor([0, 1]), m, "other_class").item()
        1.0
    """
    with validation(validate_args):
        rows = flip_rows(model, x, y, mask, intervention, **options)
    return reduce_rows(rows, reduction, lambda r: r.nanmean())


def shortcut_reliance(model: nn.Module, x: Tensor, y: Tensor, mask: Any, shortcut: Shortcut, *,
                      reduction: str = "mean", validate_args: bool = True, **options: Any) -> Tensor:
    """Accuracy with the label's own shortcut planted minus accuracy with another class's planted.

    ``reduction="mean"``: ``[reliance, accuracy agreeing, accuracy disagreeing, flip rate]``
    (a float64 4-vector); ``"none"``: the B×4 rows of :func:`shortcut_rows`.
    """
    with validation(validate_args):
        rows = shortcut_rows(model, x, y, mask, shortcut, **options)
    return reduce_rows(rows, reduction, _reliance_value)


def _reliance_value(rows: Tensor) -> Tensor:
    agree, disagree, flips = rows[:, 1].mean(), rows[:, 2].mean(), rows[:, 3].mean()
    return torch.stack([agree - disagree, agree, disagree, flips])


def decision_share(model: nn.Module, x: Tensor, y: Tensor, mask: Any, *, method: str = "cd",
                   target: str = "label", reduction: str = "mean", validate_args: bool = True) -> Tensor:
    """The region's share of the decision margin and of the class's logit (:func:`decision_share_rows`).

    ``reduction="mean"``: ``[the region's share of the summed margins Σ_b (region's part)_b / Σ_b
    margin_b, the mean per-logit share]`` (float64; a mean of per-sample margin ratios would be ruled by
    the samples whose margin is near 0); ``"none"``: the B×4 rows of :func:`decision_share_rows`.

    Example::

        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False); _ = model.weight.data.copy_(torch.tensor([[2.0, 1.0], [0.0, 0.0]]))
        >>> decision_share(model, torch.tensor([[1.0, 1.0]]), torch.tensor([0]), torch.tensor([1.0, 0.0]))
        tensor([0.6667, 0.6667], dtype=torch.float64)
    """
    with validation(validate_args):
        rows = decision_share_rows(model, x, y, mask, method=method, target=target)
    return reduce_rows(rows, reduction, _share_value)


def _share_value(rows: Tensor) -> Tensor:
    """``[Σ region's part / Σ margin, mean per-logit share]`` of decision-share rows."""
    return torch.stack([rows[:, 2].sum() / rows[:, 3].sum(), rows[:, 1].nanmean()])
