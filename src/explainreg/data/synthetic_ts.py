"""The synthetic saliency benchmark of Ismail et al. 2020 (documentation: methods/saliency-guided), regenerated in torch.

"Benchmarking Deep Learning Interpretability in Time Series Predictions" (NeurIPS 2020), the
recipe of its ``createSimulationDataProcesses.py`` / ``run_benchmark.py``:

- each sample is T = 50 time steps × F = 50 features, label y ∈ {0, 1} with equal probability,
  signed target s = 2y − 1 (the code's −1 / +1);
- background ``"box"``: every entry N(0, 1), and the entries inside the salient box drawn from
  N(s, 1) instead (= N(0, 1) + s); a process background (``"harmonic"``, ``"gaussian_process"``,
  ``"pseudo_periodic"``, ``"autoregressive"``, ``"car"``, ``"narma"``: the benchmark's seven data
  generation types with the box) draws each feature from the process on one irregular time grid per
  sample, adds Gaussian noise (std 0.3) and adds s inside the box;
- the box (time steps × features, start) comes from the layout (:data:`BOX_LAYOUTS`); ``Moving_*``
  layouts draw the start per sample uniformly from {0, …, T − box − 1} (numpy's ``randint(T − box)``);
  the positional layouts put a 20×20 box with a +1 shift at one of two positions that encode the
  label (start 1 for y = 1, 29 for y = 0) along one axis, the other start moving;
- the box is the sample's ground-truth salient mask.

The processes and their parameters (the benchmark's defaults: Matérn ν = 3/2, frequency 2,
freqSD 0.01, ampSD 0.5, AR parameter 0.9, NARMA order 10) are in :mod:`explainreg.data.ts_processes`.

Samples are laid out B×C×T (C = the F features as channels, T = time), ``ground_truth`` likewise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .ts_processes import PROCESSES, irregular_times, process_background, process_name  # noqa: F401 (re-exported)
from .ucr import SeriesDataset


@dataclass(frozen=True)
class BoxLayout:
    """One box layout: the box's size (``time_steps`` × ``features``) and start (``None`` = drawn per
    sample); positional layouts fix one axis at ``locations`` = (start for y = 1, start for y = 0)."""

    name: str
    time_steps: int
    features: int
    time_start: int | None
    feature_start: int | None
    positional_axis: str | None = None       # "feature" or "time": the axis whose start encodes the label
    locations: tuple[int, int] | None = None


#: The benchmark's ten layouts (its spellings, "Postional" included), run_benchmark.py.
BOX_LAYOUTS: dict[str, BoxLayout] = {b.name: b for b in (
    BoxLayout("Middle", 30, 30, 10, 10),
    BoxLayout("SmallMiddle", 14, 14, 18, 18),
    BoxLayout("Moving_Middle", 30, 30, None, None),
    BoxLayout("Moving_SmallMiddle", 15, 15, None, None),
    BoxLayout("RareTime", 6, 40, 22, 5),
    BoxLayout("Moving_RareTime", 6, 40, None, None),
    BoxLayout("RareFeature", 40, 6, 5, 22),
    BoxLayout("Moving_RareFeature", 40, 6, None, None),
    # the benchmark's FreezeType "Feature": the feature start encodes the label, the time start moves
    BoxLayout("PostionalTime", 20, 20, None, None, positional_axis="feature", locations=(1, 29)),
    # FreezeType "Time": the time start encodes the label, the feature start moves
    BoxLayout("PostionalFeature", 20, 20, None, None, positional_axis="time", locations=(1, 29)),
)}


def box_layout(layout: str | BoxLayout) -> BoxLayout:
    """A layout by name (case-insensitive; ``PositionalTime`` is accepted for the code's ``PostionalTime``)."""
    if isinstance(layout, BoxLayout):
        return layout
    key = str(layout).lower().replace("positional", "postional")
    for name, value in BOX_LAYOUTS.items():
        if name.lower() == key:
            return value
    raise ValueError(f"unknown box layout {layout!r}; layouts: {', '.join(BOX_LAYOUTS)}")


def _check_fits(box: BoxLayout, time_steps: int, features: int) -> None:
    for axis, size, length, start in (("time", box.time_steps, time_steps, box.time_start),
                                      ("feature", box.features, features, box.feature_start)):
        if box.positional_axis == axis:
            need = max(box.locations) + size
        elif start is None:
            need = size + 1                      # randint(length − size) needs length − size ≥ 1
        else:
            need = start + size
        if length < need:
            name = "time_steps" if axis == "time" else "features"
            raise ValueError(f"layout {box.name!r} needs {name} ≥ {need} (a {size}-long box along {axis}"
                             f"{'' if start is None else f' starting at {start}'}); got {name}={length}")


def _starts(box: BoxLayout, y: torch.Tensor, time_steps: int, features: int,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = y.shape[0]

    def along(axis: str, size: int, length: int, start: int | None) -> torch.Tensor:
        if box.positional_axis == axis:
            first, second = box.locations
            return torch.where(y == 1, torch.tensor(first), torch.tensor(second))
        if start is None:
            return torch.randint(length - size, (n,), generator=generator)
        return torch.full((n,), start, dtype=torch.long)

    return (along("time", box.time_steps, time_steps, box.time_start),
            along("feature", box.features, features, box.feature_start))


def saliency_benchmark(layout: str | BoxLayout = "Middle", process: str = "box", n: int = 1000, *,
                       time_steps: int = 50, features: int = 50, seed: int = 0, noise: float = 0.3,
                       generator: torch.Generator | None = None) -> SeriesDataset:
    """``n`` samples of the Ismail et al. 2020 benchmark with their ground-truth boxes.

    Args:
        layout: a name of :data:`BOX_LAYOUTS` (``"Middle"``, ``"SmallMiddle"``, ``"RareTime"``, …).
        process: ``"box"`` (N(0, 1) background) or one of :data:`PROCESSES` (``"gaussian_process"``,
            ``"pseudo_periodic"``, ``"narma"``, ...; the benchmark's spellings such as
            ``"GaussianProcess"`` are accepted).
        n: number of samples.
        time_steps, features: T and F (50 × 50 in the benchmark); must hold the layout's box.
        seed, generator: the randomness (a given ``generator`` wins over ``seed``); the same seed
            gives the same samples.
        noise: std of the Gaussian noise added to the process backgrounds (0.3).

    Shape:
        x: n×F×T float32 (features as channels, layout B×C×T); y: n ∈ {0, 1};
        extras ``ground_truth`` n×F×T bool (the box), ``box`` n×4 long (t0, t1, f0, f1: the box is
        time t0 ≤ t < t1, features f0 ≤ f < f1), ``lengths`` n (= T) and ``padding_mask`` n×T (all True).
    """
    box = box_layout(layout)
    process = process_name(process)
    for name, value in (("n", n), ("time_steps", time_steps), ("features", features)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _check_fits(box, time_steps, features)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=gen)
    t0, f0 = _starts(box, y, time_steps, features, gen)
    t1, f1 = t0 + box.time_steps, f0 + box.features
    t = torch.arange(time_steps)[None, :, None]
    f = torch.arange(features)[None, None, :]
    inside = ((t >= t0[:, None, None]) & (t < t1[:, None, None]) & (f >= f0[:, None, None])
              & (f < f1[:, None, None]))                                                  # n×T×F
    shift = torch.ones(n, dtype=torch.float64) if box.positional_axis else (2 * y - 1).double()
    x = process_background(process, n, time_steps, features, gen, noise) + inside * shift[:, None, None]
    extras = {"ground_truth": inside.transpose(1, 2).contiguous(), "box": torch.stack([t0, t1, f0, f1], 1),
              "lengths": torch.full((n,), time_steps, dtype=torch.long),
              "padding_mask": torch.ones(n, time_steps, dtype=torch.bool)}
    return SeriesDataset(x.transpose(1, 2).float().contiguous(), y, extras, name=f"{box.name}_{process}",
                         source=f"saliency_benchmark({box.name!r}, {process!r}, n={n}, seed={seed})",
                         class_names=["0", "1"])


__all__ = ["BOX_LAYOUTS", "BoxLayout", "PROCESSES", "box_layout", "irregular_times", "process_background",
           "process_name", "saliency_benchmark"]
