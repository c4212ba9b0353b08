"""Matplotlib helpers: a non-interactive backend, atomic PNG writes, and the metric-curve figure
that the study reports and ``explainreg evaluate`` share."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # never open a window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..runs import atomic_write_bytes  # noqa: E402

__all__ = ["curve_figure", "map_grid", "new_figure", "save_figure"]


def new_figure(rows: int = 1, cols: int = 1, width: float = 4.0, height: float = 3.2, **kwargs):
    """A figure with a rows×cols grid of axes, each about width×height inches.

    Returns:
        ``(figure, axes)``, ``axes`` a rows×cols array (also for one panel).

    Example::

        >>> fig, axes = new_figure(2, 3)
        >>> axes.shape, [round(v) for v in fig.get_size_inches()]
        ((2, 3), [12, 6])
        >>> plt.close(fig)
    """
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically (readers never see a part of the file) and close it; returns ``path``."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def curve_figure(path: str | os.PathLike, curves: Mapping[str, Mapping[str, Any]], *, title: str,
                 xlabel: str | None = None, ylabel: str | None = None) -> Path:
    """One metric's curves, one line per entry of ``curves`` labelled with its AUC, saved as PNG.

    Args:
        path: the PNG file.
        curves: ``{label: result}``, each result a :meth:`MetricResult.to_dict` of a curve metric
            (``steps``, ``curve``, ``value``; ``step_name`` / ``curve_name`` for the axis labels).
        title: the figure's title.
        xlabel, ylabel: axis labels (default: the first result's ``step_name`` / ``curve_name``).

    Returns:
        ``path``.

    Example::

        >>> import tempfile
        >>> curve = {"steps": [0.0, 0.5, 1.0], "curve": [1.0, 0.6, 0.2], "value": 0.6}
        >>> path = curve_figure(Path(tempfile.mkdtemp()) / "morf.png", {"saliency": curve}, title="MoRF")
        >>> path.read_bytes()[:4]
        b'\\x89PNG'
    """
    first = next(iter(curves.values()), {})
    fig, axes = new_figure(1, 1, width=5.5, height=4)
    ax = axes[0][0]
    for label, r in curves.items():
        ax.plot(r["steps"], r["curve"], marker="o", markersize=3, label=f"{label} (AUC {r['value']:.3g})")
    ax.set(title=title, xlabel=xlabel or str(first.get("step_name", "step")).replace("_", " "),
           ylabel=ylabel or str(first.get("curve_name", "value")).replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def map_grid(path: str | os.PathLike, images: torch.Tensor, rows: Mapping[str, torch.Tensor], *,
             titles: Sequence[str] | None = None, signed: bool = False, cmap: str | None = None,
             outlines: torch.Tensor | None = None, title: str | None = None, size: float = 1.4,
             dpi: int = 120) -> Path:
    """Inputs in the first row, one row of maps per entry of ``rows``, each map scaled to its own
    maximum (``signed``: symmetric about 0, red + / blue −), saved as PNG.

    Args:
        path: the PNG file.
        images: the inputs, (N, C, H, W) (channels averaged for display).
        rows: ``{label: maps}``, each (N, H, W) or (N, 1, H, W), in the order of ``images``.
        titles: N column titles (e.g. the labels).
        signed: diverging colours about 0 (``"bwr"``); else ``cmap`` (default ``"hot"``) from 0 to the max.
        outlines: optional (N, H, W) masks whose border is drawn on every panel of their column.
        title: the figure's title.

    Example::

        >>> import tempfile
        >>> x = torch.rand(2, 1, 8, 8)
        >>> path = map_grid(Path(tempfile.mkdtemp()) / "maps.png", x, {"gradient": torch.randn(2, 8, 8)}, signed=True)
        >>> path.read_bytes()[:4]
        b'\\x89PNG'
    """
    n = len(images)
    fig, axes = new_figure(1 + len(rows), n, width=size, height=size)
    for j in range(n):
        axes[0][j].imshow(images[j].float().mean(0).cpu().numpy(), cmap="gray")
        if titles is not None:
            axes[0][j].set_title(str(titles[j]), fontsize=8)
    axes[0][0].set_ylabel("input", fontsize=8)
    for i, (label, maps) in enumerate(rows.items(), start=1):
        maps = maps.detach().float().cpu().reshape(n, *maps.shape[-2:])
        for j in range(n):
            scale = float(maps[j].abs().max()) or 1.0
            axes[i][j].imshow(maps[j].numpy(), cmap="bwr" if signed else (cmap or "hot"),
                              vmin=-scale if signed else 0.0, vmax=scale)
        axes[i][0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    for i, row in enumerate(axes):
        for j, ax in enumerate(row):
            ax.set_xticks([]), ax.set_yticks([])
            if outlines is not None:
                ax.contour(outlines[j].float().cpu().numpy(), levels=[0.5], colors="cyan", linewidths=0.6)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=dpi)
