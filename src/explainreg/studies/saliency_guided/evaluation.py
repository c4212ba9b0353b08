"""The study's masked-accuracy test (documentation: methods/evaluation; the SGT code): each method's
attributions with the seed's settings, the curve per model and method, cached per settings."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...attribution import attribute
from ...metrics import MaskedAccuracy
from ..skeleton import cached
from .settings import DROPS, SGTSettings

__all__ = ["EVAL_KEYS", "LogProb", "attributions_for", "evaluate_model"]

#: the settings a cached curve depends on (with the model's epochs run and selected epoch)
EVAL_KEYS = ("eval_images", "limit_test", "ig_steps", "explain", "seed")


class LogProb(nn.Module):
    """f(x) ↦ log_softmax(f(x)): the seed's model output, so attributions explain log p_y.

    Example::

        >>> net = LogProb(nn.Linear(3, 2))
        >>> torch.allclose(net(torch.ones(1, 3)).exp().sum(), torch.tensor(1.0))
        True
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.model(x), dim=1)


def attributions_for(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str, s: SGTSettings,
                     chunk: int = 100) -> torch.Tensor:
    """Attributions of the true label with the seed's settings (B.3 §3.3): IG/DeepLift with one
    U[0, 1) baseline per image, GradientSHAP with 5 U[0, 1) baselines and stdev 0.09, SmoothGrad²
    with Captum's defaults (5 samples, σ = 1), gradient |∂/∂x|, random U(0, 1).

    Args:
        model: the trained model (its logits; wrapped in :class:`LogProb` when ``s.explain`` says so).
        x, y: images ``(N, C, H, W)`` and their labels ``(N,)``.
        method: one of :data:`~.settings.METHODS`.
        s: the study's settings (``explain``, ``seed``, ``ig_steps``).
        chunk: images per call; the baselines are drawn chunk by chunk from one seeded generator.

    Returns:
        The attributions, shaped like ``x``.
    """
    explained = LogProb(model) if s.explain == "log_prob" else model
    generator = torch.Generator().manual_seed(s.seed + 17)
    out = []
    for i, (xs, ys) in enumerate(zip(x.split(chunk), y.split(chunk))):
        seed = s.seed * 1000 + i
        if method in ("integrated_gradients", "deeplift"):
            base = torch.rand(xs.shape, generator=generator).to(xs.device)
            opts: dict[str, Any] = {"baselines": base}
            if method == "integrated_gradients":
                opts.update(n_steps=s.ig_steps)
        elif method == "gradient_shap":
            opts = {"baselines": torch.rand((5,) + tuple(xs.shape[1:]), generator=generator).to(xs.device),
                    "n_samples": 5, "stdevs": 0.09}
        elif method == "smoothgrad":
            opts = {"nt_type": "smoothgrad_sq", "nt_samples": 5, "stdevs": 1.0}
        else:
            opts = {}
        out.append(attribute(explained, xs, ys, method, max_batch=len(xs), seed=seed, **opts))
    return torch.cat(out)


def evaluate_model(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, s: SGTSettings,
                   cache: Path, record: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Masked-accuracy curve of each method for one model, cached in ``cache/KIND-METHOD.json`` per
    (settings of :data:`EVAL_KEYS`, the model's epochs run and selected epoch).

    Returns:
        ``{method: {"key", "drops", "accuracy" (one per drop), "area", "n_images", "seconds"}}``.
    """
    key = s.subset(EVAL_KEYS)
    record = record or {}
    key.update(epochs_run=record.get("epochs_run"), selected_epoch=record.get("epoch"))
    results = {}
    for method in s.methods:
        def curve(method: str = method) -> dict[str, Any]:
            started = time.perf_counter()
            a = attributions_for(model, x, y, method, s)
            r = MaskedAccuracy(drops=DROPS, background="corner")(model, x, y, a)
            print(f"  {kind} {method}: area {r.value:.4f} ({time.perf_counter() - started:.0f}s)", flush=True)
            return {"drops": list(DROPS), "accuracy": [float(v) for v in r.curve], "area": float(r.value),
                    "n_images": r.n_images, "seconds": time.perf_counter() - started}

        results[method], _ = cached(cache / f"{kind}-{method}.json", curve, key=key)
    return results
