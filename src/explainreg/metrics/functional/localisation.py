"""Localisation of attributions against ground-truth masks, as functions of one batch (Friedrich, Stammer, Schramowski & Kersting
2023, "A typology for exploring the mitigation of shortcut behaviour"): XIL's wrong-reason
score WR and Quantus 0.6's localisation metrics, batched in torch.

Every metric here compares a batch of attributions ``a`` (B×C×H×W or B×1×H×W) with a mask ``s`` of
the same H×W (B×{1,C}×H×W, broadcast over the attribution's channels). Quantus's masks mark the
region the explanation *should* hit (its ``s_batch``); WR's mask marks the region that must *not*
matter (m⁻, XIL's confounder). Per image, with a and s flattened to D entries:

- pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop"): 1 if a maximum
  of a lies in s (``weighted``: 1 − |s|/D for a hit), else 0.
- attribution localisation (Kohlbrenner et al. 2020, "Towards best practice in explaining neural network
  decisions with LRP"): Σ_s a / (Σ a + 1e-9), a = |a| by default
  (``positive_only`` clips at 0 first); NaN if the ratio exceeds 1 (Quantus's rule); ``weighted``
  multiplies by |s|/D.
- top-k intersection (Theiner, Müller-Budack & Ewerth 2022, "Interpretable semantic photo geolocation"):
  |top-k(a) ∩ s| / k (``concept_influence``: × D/|s|); k ≤ D (a larger k is refused, as Quantus does),
  by default ⌈D/50⌉ (2 % of the entries: Quantus's k = 1000 is about 2 % of a 224×224 image).
- relevance rank accuracy (Arras, Osman & Samek 2022, "CLEVR-XAI: a benchmark dataset for the ground
  truth evaluation of neural network explanations"): |top-|s|(a) ∩ s| / |s|.
- relevance mass accuracy (Arras, Osman & Samek 2022): Σ_s a / Σ a.
- AUC: the ROC AUC of a as a score for s (sklearn's ``roc_curve`` + ``auc``: ties count ½).

All are NaN for an empty mask (Quantus; its pointing game's NaN becomes ``True`` in a bool array — a
quirk not reproduced). Quantus first divides the whole batch by max|a| (``normalise=True``): no score
here depends on that scale except through the 1e-9 of attribution localisation. Top-k rankings (top-k
intersection, relevance rank accuracy) break ties in the seeded random order per image the removal
metrics use (:func:`explainreg._random.descending_ranks`, keyed by ``seed`` and the image's position
``index`` in the data set), not in raster order (Quantus's ``np.argsort`` breaks them arbitrarily).

WR (XIL's ``quantify_wrong_reason``): per map â = normalise(max(a, 0)) to [0, 1] (XIL's
(a − min)/(max − min + 1e-6), :func:`~explainreg.penalties.xil.normalize_map`); maps that are all 0 after that are left out; threshold t = mean over
the data set of each map's mean; bin(â) = 1 where â > t, 0 where â < t, â where â = t (XIL's in-place
rule); WR_b = Σ(m⁻ · bin) / Σ m⁻; WR = 100 · mean_b WR_b. Lower is better. The threshold is a data-set
statistic: :class:`~explainreg.metrics.WrongReason` accumulates the maps and computes it at the end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..._random import as_index, descending_ranks
from ...gradcam import find_conv_layer, forward_with_activation, grad_cam, resize_map
from ...inputs import dense_mask
from ...modes import eval_mode
from ...penalties.xil import normalize_map

__all__ = [
    "attribution_localisation", "localisation_auc", "pointing_game", "relevance_mass_accuracy",
    "relevance_rank_accuracy", "top_k_intersection", "top_k_size", "wrong_reason", "wrong_reason_maps",
    "wrong_reason_scores", "wrong_reason_threshold",
]


# ------------------------------------------------------------------------------------------ inputs
def _flatten(attributions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, s)`` as B×D float64 and bool, the mask broadcast over the attribution's channels."""
    if not isinstance(attributions, torch.Tensor) or not attributions.is_floating_point():
        raise TypeError("attributions must be a floating-point tensor B×C×H×W (or B×1×H×W)")
    if attributions.dim() < 2:
        raise ValueError(f"attributions must be batched (B×...), got shape {tuple(attributions.shape)}")
    mask = torch.as_tensor(mask, device=attributions.device)
    try:  # the package's one mask parser reads the shape; non-zero = in, as before (0/255 masks too)
        mask = dense_mask((mask != 0).to(attributions.dtype), attributions, who="localisation")
    except ValueError as err:
        raise ValueError(f"{err} (the mask must match the attributions {tuple(attributions.shape)})") from None
    if not torch.isfinite(attributions).all():
        raise ValueError("attributions contain non-finite values (NaN or inf); fix or drop those maps")
    s = (mask != 0).expand_as(attributions)
    return attributions.detach().flatten(1).double(), s.flatten(1)


def _top_share(a: torch.Tensor, s: torch.Tensor, k: torch.Tensor, seed: int,
               index: torch.Tensor | None) -> torch.Tensor:
    """|top-k_b(a_b) ∩ s_b| / k_b per image (ranked by a descending, ties in the seeded random order of
    image ``index[b]``, as the removal metrics; k_b ≥ 1)."""
    ranks = descending_ranks(a, seed, as_index(index, a.shape[0]))
    k = k.to(device=a.device, dtype=torch.long).reshape(-1, 1).expand(s.shape[0], 1)
    return ((ranks < k) & s).sum(1).double() / k[:, 0].clamp_min(1).double()


def _check_k(k: Any) -> int | None:
    """``k`` of top-k intersection as an int (None kept), or a ValueError naming it."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, float)) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive whole number of features (or None: 2 % of them), got {k!r}")
    return int(k)


def top_k_size(k: int | None, n_features: int) -> int:
    """The k of top-k intersection for maps of ``n_features`` entries: ``k`` (checked: a whole number in
    1..n_features), or ⌈n_features/50⌉ when None."""
    k = _check_k(k)
    if k is None:
        return -(-n_features // 50)
    if k > n_features:
        raise ValueError(f"k = {int(k)} is more than the {n_features} entries of each attribution map: every map "
                         f"would score the mask's share of the image; pass k <= {n_features} (or k=None: 2 % of "
                         "the entries)")
    return int(k)


def _nan_where_empty(scores: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return torch.where(s.any(1), scores, torch.full_like(scores, float("nan")))


# ------------------------------------------------------------------------------------- functionals
def pointing_game(attributions: torch.Tensor, mask: torch.Tensor, *, weighted: bool = False,
                  abs: bool = False) -> torch.Tensor:
    """Per image: 1.0 if an entry holding the maximum attribution lies in the mask, else 0.0
    (``weighted``: a hit scores 1 − |s|/D). B scores, NaN for an empty mask (Quantus ``PointingGame``).

    Args:
        attributions: the maps.
        mask: the region the explanation should hit (non-zero = in).
        weighted: a hit scores 1 − |s|/D (a large mask is easy to hit).
        abs: rank |a| instead of a.

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B scores.

    Raises:
        TypeError: attributions that are not floating point.
        ValueError: a mask that does not match, or non-finite attributions.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> pointing_game(a, mask), pointing_game(a, mask, weighted=True)
        (tensor([1., 0.], dtype=torch.float64), tensor([0.7500, 0.0000], dtype=torch.float64))
    """
    a, s = _flatten(attributions, mask)
    a = a.abs() if abs else a
    hit = ((a == a.max(1, keepdim=True).values) & s).any(1).double()
    if weighted:
        hit = torch.where(hit > 0, 1 - s.sum(1) / s.shape[1], hit)
    return _nan_where_empty(hit, s)


def attribution_localisation(attributions: torch.Tensor, mask: torch.Tensor, *, abs: bool = True,
                             positive_only: bool = False, weighted: bool = False) -> torch.Tensor:
    """Per image: Σ_s a / (Σ a + 1e-9) with a = |a| (``abs``, Quantus's default) or clipped at 0
    (``positive_only``, applied first); NaN if above 1 or the mask is empty; ``weighted``: × |s|/D.

    Args:
        attributions, mask: as :func:`pointing_game`.
        abs: use |a| (Quantus's default).
        positive_only: clip a at 0 first.
        weighted: multiply by |s|/D.

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B ratios.

    Raises:
        TypeError: attributions that are not floating point.
        ValueError: a mask that does not match, or non-finite attributions.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> attribution_localisation(a, mask)                  # 0.9 / 1.5 and 0.2 / 1.1
        tensor([0.6000, 0.1818], dtype=torch.float64)
    """
    a, s = _flatten(attributions, mask)
    if positive_only:
        a = a.clamp_min(0)
    if abs:
        a = a.abs()
    ratio = (a * s).sum(1) / (a.sum(1) + 1e-9)
    ratio = torch.where(ratio > 1, torch.full_like(ratio, float("nan")), ratio)
    if weighted:
        ratio = ratio * s.sum(1) / s.shape[1]
    return _nan_where_empty(ratio, s)


def top_k_intersection(attributions: torch.Tensor, mask: torch.Tensor, *, k: int | None = None,
                       concept_influence: bool = False, abs: bool = False, seed: int = 0,
                       index: torch.Tensor | None = None) -> torch.Tensor:
    """Per image: |top-k(a) ∩ s| / k (``concept_influence``: × D/|s|); NaN for an empty mask (Quantus
    ``TopKIntersection``).

    Args:
        attributions, mask: as :func:`pointing_game`.
        k: how many of the highest attributions, at most D (the entries of one map); None: ⌈D/50⌉.
        concept_influence: multiply by D/|s|.
        abs: rank |a|.
        seed, index: key the tie order (a seeded random order per image, as the removal metrics;
            ``index``: the images' positions in the data set, default 0..B−1).

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B shares.

    Raises:
        ValueError: ``k`` not a positive whole number or more than D, or as :func:`pointing_game`.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> top_k_intersection(a, mask, k=2), top_k_intersection(a, mask, k=2, concept_influence=True)
        (tensor([0.5000, 0.5000], dtype=torch.float64), tensor([2., 2.], dtype=torch.float64))
    """
    a, s = _flatten(attributions, mask)
    a = a.abs() if abs else a
    tki = _top_share(a, s, torch.tensor([top_k_size(k, a.shape[1])]), seed, index)
    if concept_influence:
        tki = tki * a.shape[1] / s.sum(1).clamp_min(1)
    return _nan_where_empty(tki, s)


def relevance_rank_accuracy(attributions: torch.Tensor, mask: torch.Tensor, *, abs: bool = False, seed: int = 0,
                            index: torch.Tensor | None = None) -> torch.Tensor:
    """Per image: the share of the |s| highest attributions that lie in s; NaN for an empty mask.

    Args:
        attributions, mask: as :func:`pointing_game`.
        abs: rank |a|.
        seed, index: key the tie order, as :func:`top_k_intersection`.

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B shares.

    Raises:
        TypeError: attributions that are not floating point.
        ValueError: a mask that does not match, or non-finite attributions.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> relevance_rank_accuracy(a, mask)
        tensor([1., 0.], dtype=torch.float64)
        >>> relevance_rank_accuracy(a, torch.zeros(2, 2, 2))    # an empty mask
        tensor([nan, nan], dtype=torch.float64)
    """
    a, s = _flatten(attributions, mask)
    a = a.abs() if abs else a
    return _nan_where_empty(_top_share(a, s, s.sum(1), seed, index), s)


def relevance_mass_accuracy(attributions: torch.Tensor, mask: torch.Tensor, *, abs: bool = False) -> torch.Tensor:
    """Per image: Σ_s a / Σ a (signed unless ``abs``); NaN for an empty mask.

    Args:
        attributions, mask: as :func:`pointing_game`.
        abs: use |a|.

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B shares.

    Raises:
        TypeError: attributions that are not floating point.
        ValueError: a mask that does not match, or non-finite attributions.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> relevance_mass_accuracy(a, mask)                   # 0.9 / 1.1 and 0.2 / 1.1
        tensor([0.8182, 0.1818], dtype=torch.float64)
    """
    a, s = _flatten(attributions, mask)
    a = a.abs() if abs else a
    return _nan_where_empty((a * s).sum(1) / a.sum(1), s)


def localisation_auc(attributions: torch.Tensor, mask: torch.Tensor, *, abs: bool = False) -> torch.Tensor:
    """Per image: ROC AUC of a as a score for s, by ranks (Mann–Whitney, ties ½):
    AUC = (Σ_{i∈s} r_i − n₁(n₁+1)/2) / (n₁ n₀), r the average ranks; NaN if s is empty or full.

    Equal to scikit-learn's ``roc_auc_score(s, a)`` per image.

    Args:
        attributions, mask: as :func:`pointing_game`.
        abs: score by |a|.

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B AUCs.

    Raises:
        TypeError: attributions that are not floating point.
        ValueError: a mask that does not match, or non-finite attributions.

    Example::

        >>> import torch
        >>> a = torch.tensor([[[[0.9, 0.1], [0.3, -0.2]]], [[[0.2, 0.8], [0.1, 0.0]]]])   # B×1×H×W
        >>> mask = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])                 # B×H×W: the top-left pixel
        >>> localisation_auc(a, mask)                          # 0.2 beats 2 of the 3 others
        tensor([1.0000, 0.6667], dtype=torch.float64)
    """
    a, s = _flatten(attributions, mask)
    a = a.abs() if abs else a
    ordered = a.sort(1).values
    below = torch.searchsorted(ordered, a, right=False).double()       # entries < a_i
    upto = torch.searchsorted(ordered, a, right=True).double()         # entries ≤ a_i
    ranks = (below + 1 + upto) / 2                                     # average rank, 1-based
    n1 = s.sum(1).double()
    n0 = s.shape[1] - n1
    auc = ((ranks * s).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return torch.where((n1 > 0) & (n0 > 0), auc, torch.full_like(auc, float("nan")))


# ------------------------------------------------------------------------------------------- WR
def wrong_reason_threshold(maps: torch.Tensor) -> torch.Tensor:
    """t = mean over images of each normalised map's mean (maps B×..., already normalised by :func:`~explainreg.penalties.xil.normalize_map` with ``positive_only=True``;
    all-zero maps left out, as XIL). A float64 scalar.

    Args:
        maps: normalised maps, B×....

    Returns:
        t (NaN when every map is all zero).

    Example::

        >>> import torch
        >>> from explainreg.metrics.functional.localisation import wrong_reason_threshold
        >>> wrong_reason_threshold(torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))   # (0.5 + 0.5) / 2
        tensor(0.5000, dtype=torch.float64)
    """
    flat = maps.flatten(1).double()
    keep = flat.sum(1) != 0
    return flat[keep].mean(1).mean() if bool(keep.any()) else flat.new_tensor(float("nan"))


def wrong_reason_scores(maps: torch.Tensor, mask: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Per image WR_b = Σ(m⁻ · bin(â)) / Σ m⁻ with bin(â) = 1 (â > t), 0 (â < t), â (â = t); NaN for
    an all-zero map (left out by XIL) or an empty mask. ``maps``: normalised, B×{1,C}×H×W.

    Args:
        maps: the normalised attributions (:func:`~explainreg.penalties.xil.normalize_map` with ``positive_only=True``).
        mask: m⁻, the region that must not matter.
        threshold: t (:func:`wrong_reason_threshold` over the data set).

    Shape:
        attributions: (B, C, H, W) or (B, 1, H, W); mask: (B, H, W), (B, 1, H, W) or (B, C, H, W);
        output: (B,), float64.

    Returns:
        The B scores in [0, 1].

    Example::

        >>> import torch
        >>> from explainreg.metrics.functional.localisation import wrong_reason_scores
        >>> maps = torch.tensor([[[[1.0, 0.2], [0.5, 0.0]]]])
        >>> wrong_reason_scores(maps, torch.tensor([[[1, 1], [1, 0]]]), 0.5)   # bin = 1, 0, ½ on the 3 masked
        tensor([0.5000], dtype=torch.float64)
    """
    a, s = _flatten(maps, mask)
    m = s.double()
    t = torch.as_tensor(threshold, dtype=torch.float64, device=a.device)
    binary = torch.where(a > t, torch.ones_like(a), torch.where(a < t, torch.zeros_like(a), a))
    scores = (m * binary).sum(1) / m.sum(1)
    keep = (a.sum(1) != 0) & (m.sum(1) > 0)
    return torch.where(keep, scores, torch.full_like(scores, float("nan")))


def wrong_reason(attributions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """WR of one batch taken as the whole data set: 100 · mean_b WR_b, threshold from the same maps.

    Args:
        attributions: the raw maps (normalised here with :func:`~explainreg.penalties.xil.normalize_map` with ``positive_only=True``).
        mask: m⁻, the region that must not matter.

    Shape:
        attributions: (B, C, H, W); mask: (B, H, W) or (B, {1, C}, H, W); output: a float64 scalar.

    Returns:
        WR in [0, 100]; lower is better.

    Example::

        >>> import torch
        >>> from explainreg.metrics.functional.localisation import wrong_reason
        >>> a = torch.zeros(2, 1, 2, 2); a[0, 0, 0, 0] = 1.0; a[1, 0, 1, 1] = 1.0   # each map one hot pixel
        >>> m = torch.zeros(2, 2, 2); m[:, 0, 0] = 1                               # m⁻: the top-left pixel
        >>> wrong_reason(a, m)                                  # image 0 looks at m⁻, image 1 does not
        tensor(50., dtype=torch.float64)
    """
    maps = normalize_map(attributions.detach().double(), positive_only=True)
    return 100 * wrong_reason_scores(maps, mask, wrong_reason_threshold(maps)).nanmean()


def wrong_reason_maps(model: nn.Module, x: torch.Tensor, method: str = "gradcam", *,
                      layer: str | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
    """XIL's two WR attributions, explaining the predicted class (``target`` overrides it):
    ``"gradcam"``: Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks via
    gradient-based localization") with ReLU on ``layer`` (default: the last Conv2d on the way to the output),
    nearest-upsampled to H×W (Captum ``LayerGradCam`` + ``LayerAttribution.interpolate``), B×1×H×W;
    ``"input_gradient"`` (XIL's ``ig_ross``): ∂ Σ_k log p_k / ∂x summed over channels, B×1×H×W. Detached.

    Args:
        model: the classifier (run in eval mode, restored after).
        x: the images.
        method: ``"gradcam"`` or ``"input_gradient"``.
        layer: the Grad-CAM layer's qualified name (default: the last ``nn.Conv2d`` on the way to the output).
        target: B classes to explain (default: the predicted ones).

    Shape:
        x: (B, C, H, W); output: (B, 1, H, W).

    Raises:
        ValueError: an unknown method.

    Example::

        >>> import torch; from torch import nn
        >>> from explainreg.metrics.functional.localisation import wrong_reason_maps
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
        >>> x = torch.randn(2, 1, 4, 4)
        >>> cam, grad = wrong_reason_maps(net, x), wrong_reason_maps(net, x, "input_gradient")
        >>> cam.shape, bool((cam >= 0).all()), grad.shape
        (torch.Size([2, 1, 4, 4]), True, torch.Size([2, 1, 4, 4]))
        >>> log_p = torch.log_softmax(net(x.requires_grad_()), 1).sum()
        >>> bool(torch.allclose(grad, torch.autograd.grad(log_p, x)[0]))
        True
    """
    if method not in ("gradcam", "input_gradient"):
        raise ValueError(f"method must be 'gradcam' or 'input_gradient' (XIL's ig_ross); got {method!r}")
    with eval_mode(model):
        x = x.detach().requires_grad_(method == "input_gradient")
        if method == "input_gradient":
            with torch.enable_grad():
                log_p = torch.log_softmax(model(x), 1)
                (g,) = torch.autograd.grad(log_p.sum(), x)
            return g.sum(1, keepdim=True).detach()
        with torch.enable_grad():
            logits, act = forward_with_activation(model, x, find_conv_layer(model, layer, x))
            t = logits.detach().argmax(1) if target is None else target
            cam = grad_cam(logits, act, t, create_graph=False).clamp_min(0)
        return resize_map(cam.detach(), tuple(x.shape[2:]), "nearest")
