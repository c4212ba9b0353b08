"""Matplotlib helpers: a non-interactive backend and atomic PNG writes."""
from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never open a window
import matplotlib.pyplot as plt  # noqa: E402

from ..runs import atomic_write_bytes  # noqa: E402


def new_figure(rows: int = 1, cols: int = 1, width: float = 4.0, height: float = 3.2, **kwargs):
    """A figure with a rows×cols grid of axes, each about width×height inches."""
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
