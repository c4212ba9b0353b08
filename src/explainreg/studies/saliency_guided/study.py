"""The study's Python API: :func:`run_saliency_guided` trains, evaluates and reports with one :class:`SGTSettings`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from ... import runs
from ...training import resolve_device
from .evaluation import evaluate_model
from .report import plot_curves, plot_maps, write_summary, write_tables
from .settings import NAME, SGTSettings
from .training import load_data, train_model

__all__ = ["run_saliency_guided"]


def run_saliency_guided(settings: SGTSettings) -> dict[str, Any]:
    """Train (or resume) the regular and the saliency-guided model, measure each method's masked-accuracy
    curve (cached) and write the tables, figures and summary into ``settings.out``.

    Args:
        settings: the study's settings (see :class:`SGTSettings`).

    Returns:
        ``{"settings": ..., "models": {kind: selected epoch's record}, "curves": {kind: {method: curve}}}``
        (``curves`` empty with ``train_only``), as written to ``results.json``.

    Example::

        >>> from explainreg.studies.saliency_guided import SGTSettings, run_saliency_guided
        >>> results = run_saliency_guided(SGTSettings(out="/tmp/sgt", quick=True))  # doctest: +SKIP
        >>> results["curves"]["guided"]["saliency"]["area"]  # doctest: +SKIP
    """
    s = settings
    if s.threads:
        torch.set_num_threads(int(s.threads))
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(s)
    train_set, val_set, test_set = data
    bundled = " [BUNDLED SUBSET: for a quick try only]" if "bundled" in test_set.source else ""
    print(f"MNIST: {len(train_set)} train / {len(val_set)} validation / {len(test_set)} test from "
          f"{test_set.source}{bundled}", flush=True)
    records = {}
    for kind in s.models:
        print(f"training {kind} ({out / kind})", flush=True)
        records[kind] = train_model(kind, out / kind, data, s)
        print(f"  {kind}: selected epoch {records[kind]['epoch']}, "
              f"test accuracy {100 * records[kind]['test_accuracy']:.2f}%", flush=True)
    if s.train_only:
        return {"settings": s.record(), "models": records, "curves": {}}

    n_eval = min(s.eval_images or len(test_set), len(test_set))
    device = str(resolve_device(s.device))
    models = {kind: runs.load_run(out / kind, device=device)[0] for kind in s.models}
    x, y = test_set.x[:n_eval].to(device), test_set.y[:n_eval].to(device)
    cache = out / "eval"
    cache.mkdir(exist_ok=True)
    curves = {}
    for kind, model in models.items():
        print(f"masked accuracy of {kind} on {n_eval} test images", flush=True)
        curves[kind] = evaluate_model(kind, model, x, y, s, cache, records[kind])
    _, areas = write_tables(out, curves)
    figures = [(plot_curves(out / "masked_accuracy.png", curves, list(s.methods)), "masked accuracy per method"),
               (plot_maps(out / "saliency_maps.png", models, x, y, s), "inputs and |gradient| saliency")]
    command = "explainreg " + " ".join(sys.argv[1:]) if sys.argv and "explainreg" in sys.argv[0] else \
        f"explainreg study {NAME} --out {out}"
    text = write_summary(out, s, records, areas, n_eval, command, figures)
    results = {"settings": s.record(), "models": records, "curves": curves}
    runs.atomic_write_json(out / "results.json", results)
    print(text)
    print(f"written: {out / 'masked_accuracy.csv'}, {out / 'curve_areas.csv'}, {out / 'masked_accuracy.png'}, "
          f"{out / 'saliency_maps.png'}, {out / 'summary.md'}, {out / 'summary.html'}")
    return results
