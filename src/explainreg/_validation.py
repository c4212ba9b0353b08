"""Early input checks with messages that name the parameter and say what to do."""
from __future__ import annotations

import torch


def check_batch(x: torch.Tensor, y: torch.Tensor | None = None, *, min_dim: int = 2) -> None:
    """Check that ``x`` is a finite floating batch and ``y`` one integer label per sample."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (e.g. images scaled to [0, 1]), got {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(f"x must be batched with shape B×... ({min_dim}+ dims), got shape {tuple(x.shape)}; "
                         "add a batch dimension with x.unsqueeze(0)")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (B = 0)")
    if not torch.isfinite(x).all():
        raise ValueError(f"x contains {int((~torch.isfinite(x)).sum())} non-finite values (NaN or inf); clean the inputs")
    if y is None:
        return
    if not isinstance(y, torch.Tensor) or y.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
        raise TypeError(f"y must be an integer tensor of class indices, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (B,) = ({x.shape[0]},) matching x, got {tuple(y.shape)}")


def check_labels(y: torch.Tensor, num_classes: int) -> None:
    """Check that every label indexes one of the model's ``num_classes`` outputs."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels y must lie in [0, {num_classes - 1}] (the model has {num_classes} outputs), "
                         f"got min {int(y.min())} and max {int(y.max())}")


def check_logits(logits: torch.Tensor, batch_size: int) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch_size:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape B×K = ({batch_size}, K), got {shape}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_range(name: str, value: float, low: float | None = None, high: float | None = None,
                *, low_open: bool = False, high_open: bool = False) -> None:
    ok = True
    if low is not None:
        ok &= value > low if low_open else value >= low
    if high is not None:
        ok &= value < high if high_open else value <= high
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}{hi}; got {value}")
