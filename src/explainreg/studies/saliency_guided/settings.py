"""The saliency-guided study's settings: :class:`SGTSettings`, resolved and checked when built."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..._validation import check_choice
from ...penalties.saliency_guided import ORDERS, check_fill, check_fraction

__all__ = ["DROPS", "EXPLAIN", "LABELS", "METHODS", "MODEL", "MODELS", "NAME", "QUICK", "RECORDED", "SGTSettings"]

NAME = "saliency-guided"
MODEL = "sgt_mnist_cnn"
MODELS = ("regular", "guided")
METHODS = ("saliency", "smoothgrad", "integrated_gradients", "deeplift", "gradient_shap", "random")
LABELS = {"saliency": "Gradient", "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated gradients",
          "deeplift": "DeepLift", "gradient_shap": "GradientSHAP", "random": "Random"}
EXPLAIN = ("log_prob", "logit")
DROPS = tuple(range(0, 100, 10))
#: what ``quick=True`` fills in where a setting is left at None
QUICK = {"epochs": 1, "limit_train": 6000, "eval_images": 200, "ig_steps": 16}
FULL = {"epochs": 15, "limit_train": None, "eval_images": None, "ig_steps": 50}
#: the settings recorded in ``results.json`` (in this order)
RECORDED = ("epochs", "limit_train", "eval_images", "ig_steps", "limit_test", "seed", "fraction", "by", "weight",
            "batch_size", "lr", "val_fraction", "patience", "explain", "quick", "fill", "methods", "models")


@dataclass
class SGTSettings:
    """Everything that decides the study's results, and where it runs.

    ``epochs``, ``limit_train``, ``eval_images`` and ``ig_steps`` left at None take the mode's value
    (``quick``: 1 epoch on 6,000 train images, 200 test images, 16 IG steps; else 15 epochs on all
    images, all 10,000 test images, 50 steps). Checked when built: a ``ValueError`` names the setting.

    Args:
        out: the study folder. data_root, download: where MNIST is, and whether to fetch it.
        seed: seeds the split, the weights, the objective and the attributions' baselines.
        fraction, by, fill, weight: SGT's masked share, ranking (``"abs"`` |g| or ``"signed"``),
            mask values (``"random"`` or a number) and KL weight λ.
        batch_size, lr, val_fraction, patience: Adadelta training, best epoch on a validation split.
        limit_test: test images for the per-epoch accuracy and the curves (None: all).
        methods, models: attribution methods (of :data:`METHODS`) and models (of :data:`MODELS`);
            a comma-separated string is accepted.
        explain: attribute ``"log_prob"`` (log p_y, the seed's output) or the ``"logit"`` z_y.
        train_only: train (or resume) the models and stop.
        device, threads, progress: where and how to run (not recorded).

    Example::

        >>> s = SGTSettings(quick=True, methods="saliency,random", fill="0.5")
        >>> s.epochs, s.limit_train, s.methods, s.fill
        (1, 6000, ('saliency', 'random'), 0.5)
        >>> SGTSettings(fraction=1.5)
        Traceback (most recent call last):
        ...
        ValueError: fraction must be a number in (0, 1) (the share of features masked per sample, 0.5 in the paper's MNIST setting); got 1.5
    """

    out: str = "runs/saliency-guided"
    data_root: str | None = None
    download: bool = True
    quick: bool = False
    epochs: int | None = None
    limit_train: int | None = None
    eval_images: int | None = None
    ig_steps: int | None = None
    limit_test: int | None = None
    seed: int = 0
    fraction: float = 0.5
    by: str = "abs"
    fill: Any = "random"
    weight: float = 1.0
    batch_size: int = 512
    lr: float = 1.0
    val_fraction: float = 0.1
    patience: int | None = None
    methods: Sequence[str] = METHODS
    explain: str = "log_prob"
    models: Sequence[str] = MODELS
    train_only: bool = False
    device: str = "auto"
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        mode = QUICK if self.quick else FULL
        for name, default in mode.items():
            if getattr(self, name) is None:
                setattr(self, name, default)
        self.quick = bool(self.quick)
        self.fraction = check_fraction(self.fraction)
        check_choice("by", self.by, ORDERS)
        check_choice("explain", self.explain, EXPLAIN)
        self.weight = float(self.weight)
        fill = self.fill
        if isinstance(fill, str) and fill != "random":
            try:
                fill = float(fill)
            except ValueError:
                pass
        self.fill = check_fill(fill)
        self.methods = _names("methods", self.methods, METHODS)
        self.models = _names("models", self.models, MODELS)
        for name in ("epochs", "batch_size", "ig_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.weight < 0:
            raise ValueError(f"--weight must be ≥ 0, got {self.weight}")

    def record(self) -> dict[str, Any]:
        """The settings that decide the results, as ``results.json`` records them."""
        out = {k: getattr(self, k) for k in RECORDED}
        out["methods"], out["models"] = list(self.methods), list(self.models)
        return out

    def subset(self, keys: Sequence[str]) -> dict[str, Any]:
        """``{key: value}`` of the named settings."""
        return {k: getattr(self, k) for k in keys}


def _names(option: str, value: str | Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    items = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m).strip() for m in value]
    items = [m for m in items if m]
    if not items or any(m not in allowed for m in items):
        shown = value if isinstance(value, str) else ",".join(map(str, value))
        raise ValueError(f"--{option} must be a comma list from {', '.join(allowed)}; got {shown!r}")
    return tuple(items)
