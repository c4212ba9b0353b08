"""Timing helpers for the benchmarks: interleaved repetitions, medians, Markdown tables, and the
machine, threads, command and load a table was measured under."""
from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from typing import Callable

import torch


def interleaved_medians(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each callable, run round-robin so that load changes hit all of them alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def make_step(model: torch.nn.Module, objective, x, y, extras, device: str = "cpu") -> Callable[[], None]:
    """One optimiser step (objective + backward + Adam) on a fixed batch, as a callable to time."""
    model, objective = model.to(device), objective.to(device)
    x, y, extras = x.to(device), y.to(device), {k: v.to(device) for k, v in extras.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    cuda = torch.device(device).type == "cuda"

    def step() -> None:
        out = objective(model, x, y, **extras)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()  # time the step, not its launch

    return step


def run_header(threads: int, extra: str = "") -> str:
    """One line naming what a table was measured on: torch, the CPU, threads, the explainreg used,
    the command line and the machine's load averages (other processes change absolute times; ratios
    within one run are what compare)."""
    import explainreg

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    command = shlex.join([os.path.basename(sys.executable)] + sys.argv)
    return (f"torch {torch.__version__}, {cpu}, {cores} cores, "
            f"{threads} thread(s); explainreg from {os.path.dirname(explainreg.__file__)}{extra}; "
            f"load average (1, 5, 15 min) {load}; command: `{command}`")
