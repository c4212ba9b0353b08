"""Sequence classifiers for time series: LSTM, TCN and a small Transformer encoder (documentation: guide/concepts, methods/saliency-guided).

All three take a batch laid out **B×C×T** (channels × time, the layout of explainreg's series data,
declared once as ``input_layout``); ``layout="BxTxF"`` builds the same network for inputs laid out
time-major B×T×F instead. A tensor of the other layout (or with another channel count) is refused
with an error that names both. Every model returns logits B×K and is twice differentiable on the
CPU, so the saliency penalties and Saliency Guided Training run on it (cuDNN's LSTM has no double
backward: use the CPU, or ``torch.backends.cudnn.flags(enabled=False)``, for input-gradient penalties).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

LAYOUTS = ("BxCxT", "BxTxF")


class _SequenceClassifier(nn.Module):
    """Checks the declared layout and hands ``forward_time_major`` a B×T×C tensor."""

    input_layout: str = "BxCxT"

    def __init__(self, in_channels: int, layout: str) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS} (channels × time, or time × features); got {layout!r}")
        if isinstance(in_channels, bool) or int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer (the series' channels), got {in_channels!r}")
        self.in_channels, self.input_layout = int(in_channels), layout

    def _time_major(self, x: torch.Tensor) -> torch.Tensor:
        axis = 1 if self.input_layout == "BxCxT" else 2
        if x.dim() != 3 or x.shape[axis] != self.in_channels:
            other = 2 if axis == 1 else 1
            hint = (f"; it looks laid out {'BxTxF' if axis == 1 else 'BxCxT'}: transpose it with x.transpose(1, 2) "
                    f"or build the model with layout={'BxTxF' if axis == 1 else 'BxCxT'!r}"
                    if x.dim() == 3 and x.shape[other] == self.in_channels else "")
            raise ValueError(f"{type(self).__name__} expects a {self.input_layout} batch with {self.in_channels} "
                             f"channels (dim {axis}), got shape {tuple(x.shape)}{hint}")
        return x.transpose(1, 2) if self.input_layout == "BxCxT" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_time_major(self._time_major(x))

    def forward_time_major(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class LSTMClassifier(_SequenceClassifier):
    """LSTM over time, linear head on the last hidden state of the top layer.

    Args:
        in_channels: C. num_classes: K. hidden: LSTM width. layers: stacked LSTM layers.
        dropout: between stacked layers. layout: ``"BxCxT"`` (default) or ``"BxTxF"``.
    Shape: x B×C×T (or B×T×F) → logits B×K.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.0, layout: str = "BxCxT") -> None:
        super().__init__(in_channels, layout)
        self.lstm = nn.LSTM(self.in_channels, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, num_classes)

    def forward_time_major(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left by (kernel − 1)·dilation, so output step t sees inputs ≤ t only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    """Residual block of the TCN (Bai et al. 2018): two dilated causal convolutions with ReLU and
    dropout, plus the input (through a 1×1 convolution when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            CausalConv1d(in_channels, out_channels, kernel_size, dilation), nn.ReLU(), nn.Dropout(dropout),
            CausalConv1d(out_channels, out_channels, kernel_size, dilation), nn.ReLU(), nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.net(x) + self.skip(x))


class TCNClassifier(_SequenceClassifier):
    """Temporal convolutional network: ``levels`` residual blocks with dilations 1, 2, 4, …, then the
    mean over time (``pool="mean"``) or the last step (``pool="last"``, the benchmark's readout) and a
    linear head. Receptive field 1 + 2·(kernel − 1)·(2^levels − 1) steps (91 for the defaults).

    Shape: x B×C×T (or B×T×F) → logits B×K.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, channels: int = 32, levels: int = 4,
                 kernel_size: int = 4, dropout: float = 0.1, pool: str = "mean", layout: str = "BxCxT") -> None:
        super().__init__(in_channels, layout)
        if pool not in ("mean", "last"):
            raise ValueError(f"pool must be 'mean' or 'last'; got {pool!r}")
        widths = [self.in_channels] + [channels] * levels
        self.blocks = nn.Sequential(*(TemporalBlock(widths[i], widths[i + 1], kernel_size, 2 ** i, dropout)
                                      for i in range(levels)))
        self.pool = pool
        self.head = nn.Linear(channels, num_classes)
        self.receptive_field = 1 + 2 * (kernel_size - 1) * (2 ** levels - 1)

    def forward_time_major(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2))                                           # B×channels×T
        return self.head(h.mean(2) if self.pool == "mean" else h[:, :, -1])


def sinusoidal_positions(steps: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^{2i/d}), PE[t, 2i+1] = cos(…) (Vaswani et al. 2017), T×d."""
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(steps, width, device=device)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : width // 2]
    return pe.to(dtype) if dtype is not None else pe


class TransformerClassifier(_SequenceClassifier):
    """Small Transformer encoder: linear embedding of each time step, sinusoidal positions, ``layers``
    encoder layers (``heads`` heads, width ``width``, GELU feed-forward 2·width), mean over time,
    linear head. Any T (the positions are computed for the batch's length). Attention runs on the
    plain "math" kernel: the fused CPU kernels have no double backward (input-gradient penalties).

    Shape: x B×C×T (or B×T×F) → logits B×K.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 32, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, layout: str = "BxCxT") -> None:
        super().__init__(in_channels, layout)
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.embed = nn.Linear(self.in_channels, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, num_classes)

    def forward_time_major(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
        with sdpa_kernel(SDPBackend.MATH):
            h = self.encoder(h)
        return self.head(h.mean(1))


__all__ = ["CausalConv1d", "LAYOUTS", "LSTMClassifier", "TCNClassifier", "TemporalBlock", "TransformerClassifier",
           "sinusoidal_positions"]
