"""The report of the constraints study: table (best per column marked, except in quick mode, which
the report marks as a smoke test; the seed's values beside),
results.csv/json, and figures (saliency grids, MoRF/ROAR/robustness curves, penalties during training)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import runs
from ..attribution import attribute
from ..report import Report, Table, curve_figure, map_grid, new_figure, save_figure

__all__ = ["COLUMNS", "CURVES", "GRID_METHODS", "SEED_MNIST", "curve_figures", "penalty_figure", "results_table",
           "saliency_grids", "write_report"]

#: (key, column title, higher is better)
COLUMNS = (("test_accuracy", "test accuracy (%)", True), ("morf", "MoRF AUC", True),
           ("faithfulness", "faithfulness", True), ("complexity", "complexity", False),
           ("roar", "ROAR AUC", False), ("gaussian", "Gaussian AUC", True), ("blocks", "block AUC", True))
#: The seed's published MNIST row (the xAI-constrained-losses study's notebook; one run each).
SEED_MNIST = {
    "baseline": (98.72, 0.696, 0.801, 4.400, 0.8355, 0.643, 9.788),
    "gradient_l1": (98.52, 0.658, 0.910, 4.328, 0.7674, 0.660, 9.887),
    "consistency": (98.73, 0.626, 0.822, 4.377, 0.8439, 0.523, 9.771),
    "smoothness": (98.55, 0.688, 0.894, 4.329, 0.7550, 0.818, 9.764),
    "locality": (98.78, 0.846, 0.707, 4.348, 0.7529, 0.388, 9.531),
    "fidelity": (98.99, 0.827, 0.797, 4.305, 0.7244, 0.470, 9.928),
    "symmetry": (98.54, 0.836, 0.820, 4.230, 0.6657, 0.311, 9.127),
}
GRID_METHODS = (("saliency", "gradients |∂z_y/∂x|"), ("integrated_gradients", "integrated gradients"),
                ("gradcam", "Grad-CAM (last conv layer)"))
CURVES = (("morf", "MoRF: confidence ratio as the most relevant pixels go", "fraction of attributions removed",
           "p(c*|masked) / p(c*|x)"),
          ("roar", "ROAR: retrained accuracy on masked data", "fraction removed", "test accuracy"),
          ("gaussian", "Gaussian noise", "noise σ", "accuracy"),
          ("blocks", "square blocks", "largest block half-size", "accuracy"))


def _fmt(key: str, value: float) -> str:
    return f"{value:.2f}" if key == "test_accuracy" else f"{value:.4f}" if key == "roar" else f"{value:.3f}"


def results_table(settings, metrics: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], Table]:
    names = list(metrics)
    rows = [{"model": n, "weight": 0.0 if n == "baseline" else settings.weights[n],
             **{k: float(metrics[n][k]["value"]) for k, _, _ in COLUMNS}} for n in names]
    seed = SEED_MNIST if settings.dataset == "mnist" else {}
    header = ["model", "λ"] + [f"{title} {'↑' if up else '↓'}" for _, title, up in COLUMNS]
    cells, bold = [], []
    for row in rows:
        line, marks = [row["model"], f"{row['weight']:g}"], [False, False]
        for i, (key, _, up) in enumerate(COLUMNS):
            values = [r[key] for r in rows]
            best = max(values) if up else min(values)
            text = _fmt(key, row[key])
            if row["model"] in seed:
                text += f" ({_fmt(key, seed[row['model']][i])})"
            line.append(text)
            marks.append(row[key] == best)
        cells.append(line)
        bold.append(marks)
    if settings.quick:  # one seed, a subset, one epoch: nothing to rank
        bold = None
    notes = (("Quick mode (smoke test): no best is marked. " if settings.quick else "Bold: best in the column. ")
             + "Arrows: the direction that is better. "
             + ("In parentheses: the seed's published value (the xAI-constrained-losses study's notebook; one run each, "
                "its complexity from one image, its ROAR/Gauss AUCs with its own settings)." if seed else
                "The seed published no Fashion-MNIST numbers."))
    return rows, Table(header, cells, bold, notes)


def saliency_grids(folder: Path, models: dict, x: torch.Tensor, y: torch.Tensor, n: int) -> list[tuple[Path, str]]:
    xs, ys = x[:n], y[:n]
    return [(map_grid(folder / f"saliency_{method}.png", xs,
                      {name: attribute(model, xs, ys, method).sum(1) for name, model in models.items()},
                      titles=[f"label {int(v)}" for v in ys], signed=True, size=1.35, dpi=110,
                      title=f"{title} (red +, blue −; each map scaled to its own maximum)"),
             f"Saliency maps: {title}") for method, title in GRID_METHODS]


def curve_figures(folder: Path, metrics: dict[str, dict[str, Any]]) -> list[tuple[Path, str]]:
    """The MoRF, ROAR, Gaussian-noise and square-block curves of every model, one figure per metric."""
    return [(curve_figure(folder / f"{key}_curves.png", {name: m[key] for name, m in metrics.items()}, title=title,
                          xlabel=xlabel, ylabel=ylabel), title) for key, title, xlabel, ylabel in CURVES]


def penalty_figure(folder: Path, histories: dict[str, list[dict[str, Any]]]) -> tuple[Path, str] | None:
    penalties = [n for n in histories if n != "baseline"]
    if not penalties:
        return None
    cols = min(3, len(penalties))
    rows = (len(penalties) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, width=4.2, height=3.2)
    for i, name in enumerate(penalties):
        ax = axes[i // cols][i % cols]
        for label, steps, style in (("constrained", histories[name], "-"), ("baseline", histories["baseline"], "--")):
            points = [(s["step"], s[name]) for s in steps if name in s]
            if points:
                ax.plot(*zip(*points), style, label=label)
        ax.set(title=name, xlabel="training step", ylabel="penalty value R")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for j in range(len(penalties), rows * cols):
        axes[j // cols][j % cols].axis("off")
    caption = "Penalty values during training: each constrained model vs the same quantity on the baseline"
    return save_figure(fig, folder / "penalties_during_training.png"), caption


def write_report(out: Path, settings, record: dict[str, Any], models: dict, metrics: dict[str, dict[str, Any]],
                 histories: dict[str, list[dict[str, Any]]], x: torch.Tensor, y: torch.Tensor, command: str) -> Path:
    """``results.csv``, ``results.json``, the figures and ``report.md`` / ``report.html`` in ``out``;
    ``command`` is the command line that repeats the study. Returns the path of ``report.html``."""
    import pandas as pd

    rows, table = results_table(settings, metrics)
    pd.DataFrame(rows).to_csv(out / "results.csv.tmp", index=False)
    (out / "results.csv.tmp").replace(out / "results.csv")
    runs.atomic_write_json(out / "results.json", {**record, "rows": rows, "metrics": metrics})
    folder = out / "figures"
    figures = saliency_grids(folder, models, x, y, settings.grid_images) + curve_figures(folder, metrics)
    penalty = penalty_figure(folder, histories)
    mode = "quick" if settings.quick else "full"
    report = Report(f"Explanation constraints on {settings.dataset} ({settings.model}, {mode} run)")
    if settings.quick:
        report.smoke_test()
    data = record["data"]
    report.text(f"{len(rows)} models: the unconstrained baseline and one per penalty, each trained for "
                f"{settings.epochs} epoch(s) with Adam (lr {settings.lr}, batch {settings.batch_size}, seed "
                f"{settings.seed}) on {data['n_train']} training images; test accuracy on {data['n_test']} test "
                f"images, the attribution metrics on the first {data['n_eval']} with each model's own saliency "
                f"|∂z_y/∂x|. ROAR retrains a fresh {settings.model} for {settings.roar_epochs} epoch(s).")
    report.heading("Results").table(table)
    if record.get("selection"):
        report.text(f"Weights chosen on a {settings.validation_fraction:.0%} validation split (largest weight within "
                    f"{settings.tolerance:.1%} of the baseline's validation accuracy): {record['selection']['chosen']}.")
    report.heading("Figures")
    for path, caption in figures + ([penalty] if penalty else []):
        report.figure(path, caption)
    report.heading("Reproduce")
    report.code(command)
    env = record["environment"]
    report.text(f"explainreg {env['explainreg']}, torch {env['torch']}, Python {env['python']}; data: "
                f"{data['train']} (train), {data['test']} (test). Settings and every curve: results.json.")
    md, page = report.write(out)
    return page
