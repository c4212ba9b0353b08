"""The study's report: ``masked_accuracy.csv``, ``curve_areas.csv``, the curves and saliency-map figures,
and ``summary.md`` / ``summary.html``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ... import runs
from ...report import Report, Table, map_grid, new_figure, save_figure
from .evaluation import attributions_for
from .settings import LABELS, METHODS, MODEL, MODELS, SGTSettings

__all__ = ["plot_curves", "plot_maps", "write_summary", "write_tables"]


def write_tables(out: Path, curves: dict[str, dict[str, dict[str, Any]]]):
    """``masked_accuracy.csv`` (model × method × drop) and ``curve_areas.csv`` (method × model), atomically."""
    import pandas as pd

    rows = [{"model": kind, "method": method, "drop_percent": d, "accuracy": acc}
            for kind, per in curves.items() for method, r in per.items() for d, acc in zip(r["drops"], r["accuracy"])]
    table = pd.DataFrame(rows)
    runs.atomic_write_bytes(out / "masked_accuracy.csv", table.to_csv(index=False).encode())
    areas = pd.DataFrame([{"model": kind, "method": method, "area": r["area"], "n_images": r["n_images"]}
                          for kind, per in curves.items() for method, r in per.items()])
    wide = areas.pivot(index="method", columns="model", values="area")
    wide = wide.reindex(index=[m for m in METHODS if m in wide.index], columns=[k for k in MODELS if k in wide.columns])
    runs.atomic_write_bytes(out / "curve_areas.csv", wide.to_csv().encode())
    return table, wide


def plot_curves(path: Path, curves: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> Path:
    """One panel per method: accuracy against the share of the most salient pixels dropped, per model."""
    cols = min(3, len(methods))
    rows = (len(methods) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, width=4, height=3.2, sharey=True)
    styles = {"regular": dict(color="tab:blue", marker="o"), "guided": dict(color="tab:red", marker="s")}
    for ax, method in zip(axes.flat, methods):
        for kind, per in curves.items():
            if method in per:
                r = per[method]
                ax.plot(r["drops"], [100 * a for a in r["accuracy"]], label=f"{kind} (area {r['area']:.3f})",
                        **styles.get(kind, {}))
        ax.set_title(LABELS[method])
        ax.set_xlabel("most salient features dropped (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy (%)")
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle("MNIST masked accuracy: regular vs saliency-guided training (lower = more faithful)")
    return save_figure(fig, path, dpi=120)


def plot_maps(path: Path, models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, s: SGTSettings,
              n: int = 8) -> Path:
    """Inputs and |gradient| saliency of each model for the first ``n`` test images."""
    x, y = x[:n], y[:n]
    maps = {f"{kind}\n|gradient|": attributions_for(m, x, y, "saliency", s).abs().mean(1) for kind, m in models.items()}
    return map_grid(path, x, maps, titles=[f"label {int(v)}" for v in y], size=1.65)


def write_summary(out: Path, s: SGTSettings, records: dict[str, dict[str, Any]], areas, n_eval: int,
                  command: str, figures: list[tuple[Path, str]]) -> str:
    """``summary.md`` and ``summary.html`` in ``out``; returns the Markdown text."""
    report = Report("Saliency Guided Training on MNIST: masked accuracy")
    report.text(f"Command: `{command}`")
    report.text(f"Model `{MODEL}` (PyTorch-examples CNN), Adadelta lr {s.lr}, batch {s.batch_size}, "
                f"{s.epochs} epochs max, best epoch on a {100 * s.val_fraction:.0f} % validation split "
                f"(train images: {s.limit_train or 'all'}), seed {s.seed}. SGT: fraction {s.fraction}, "
                f"by {s.by}, fill {s.fill}, λ {s.weight}.")
    report.table(Table(["model", "selected epoch", "val accuracy", "test accuracy"],
                       [[kind, str(r.get("epoch")), f"{100 * r.get('val_accuracy', float('nan')):.2f} %",
                         f"{100 * r.get('test_accuracy', float('nan')):.2f} %"] for kind, r in records.items()]))
    report.text(f"Masked accuracy on {n_eval} test images (explaining {s.explain} of the true label): "
                "area under accuracy vs fraction of the most salient pixels replaced by the background "
                "(0–90 %, trapezoid; lower = accuracy falls faster = more faithful saliency).")
    kinds = [k for k in MODELS if k in areas.columns]
    cells, bold = [], []
    for method, row in areas.iterrows():
        line = [LABELS[method]] + [f"{row[k]:.4f}" for k in kinds]
        marks = [False] + [row[k] == areas[k].min() for k in kinds]
        if len(kinds) == 2:
            line.append(f"{row['guided'] - row['regular']:+.4f}")
            marks.append(False)
        cells.append(line)
        bold.append(marks)
    report.table(Table(["method", *kinds] + (["guided − regular"] if len(kinds) == 2 else []), cells, bold,
                       notes="Bold: the smallest area (most faithful saliency) per model."))
    if "random" in areas.index:
        faster = [[kind, ", ".join(LABELS[m] for m in areas.index
                                   if m != "random" and areas.loc[m, kind] < areas.loc["random", kind]) or "none"]
                  for kind in kinds]
        report.text("Faster than random masking (area below the random curve's):")
        report.table(Table(["model", "methods"], faster))
    if len(kinds) == 2:
        faster = [LABELS[m] for m in areas.index if m != "random" and areas.loc[m, "guided"] < areas.loc[m, "regular"]]
        report.text(f"Guided falls faster than regular for: {', '.join(faster) or 'none'}.")
    if s.quick:
        report.text("--quick run: few images and one epoch; the numbers only show that the pipeline works.")
    for path, caption in figures:
        report.figure(path, caption)
    report.write(out, name="summary")
    return report.markdown(out)
