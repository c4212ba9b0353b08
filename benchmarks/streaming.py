"""Streaming cost of image folders and the memory of a deep-net training step (documentation: guide/images).

1. ``epoch``: one pass of ``iterate_batches`` (batch 64) over an image folder of N real
   Fashion-MNIST PNGs upscaled to 64×64 RGB, read lazily with 2 DataLoader workers, against the
   same images in memory (an ``ArrayDataset``); prints both times and their ratio.
2. ``memory``: peak resident memory (``resource.getrusage``, in a fresh subprocess each) of one
   training step (forward, double-backprop saliency, backward, optimiser step) of CE +
   GradientL1 and of CE + CDEP, at batch B, 3×224×224, ResNet-18-shaped (width 64), on the CPU.

    nice python benchmarks/streaming.py [--n 10000] [--batch 32] [--skip-epoch] [--skip-memory]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

STEP = r"""
import resource, sys, time, torch
torch.set_num_threads(1)
from explainreg.models.backbones import resnet18
from explainreg.objective import Objective
B, penalty = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
model = resnet18(num_classes=2)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.rand(B, 3, 224, 224)
y = torch.randint(0, 2, (B,))
mask = torch.zeros(B, 1, 224, 224, dtype=torch.bool)
mask[:, :, :48, :48] = True
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = Objective({penalty: 1.0})(model, x, y, mask=mask)
opt.zero_grad()
out.loss.backward()
opt.step()
print(before / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, time.perf_counter() - start)
"""


def epoch_ratio(n: int, workers: int) -> dict[str, float]:
    from explainreg.data import ImageFolder
    from explainreg.data.patch_benchmark import write_patch_benchmark
    from explainreg.training import iterate_batches

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        per_class = n // 2
        write_patch_benchmark(Path(tmp) / "b", n_train=per_class, n_test=1, size=64)
        written = time.perf_counter() - start
        folder = ImageFolder(Path(tmp) / "b" / "processed", num_workers=workers)
        start = time.perf_counter()
        count = sum(len(y) for _, y, _ in iterate_batches(folder, 64, seed=0))
        streamed = time.perf_counter() - start
        memory = folder.to_memory()
        start = time.perf_counter()
        count_m = sum(len(y) for _, y, _ in iterate_batches(memory, 64, seed=0))
        in_memory = time.perf_counter() - start
    assert count == count_m == len(folder)
    return {"images": count, "write_s": written, "stream_s": streamed, "memory_s": in_memory,
            "ratio": streamed / in_memory}


def step_memory(batch: int, penalty: str) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", STEP, str(batch), penalty], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    before, peak, seconds = (float(v) for v in out.stdout.split())
    return before, peak, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--penalties", default="gradient_l1,cdep")
    p.add_argument("--skip-epoch", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    if not a.skip_epoch:
        r = epoch_ratio(a.n, a.workers)
        print(f"epoch over {r['images']} PNGs (64×64 RGB, batch 64): streamed with {a.workers} workers "
              f"{r['stream_s']:.2f}s, in memory {r['memory_s']:.3f}s, ratio {r['ratio']:.0f}× "
              f"(writing the folder took {r['write_s']:.1f}s)", flush=True)
    if not a.skip_memory:
        for penalty in a.penalties.split(","):
            before, peak, seconds = step_memory(a.batch, penalty)
            print(f"{penalty} step, ResNet-18 (width 64), batch {a.batch}, 3×224×224, CPU: peak RSS {peak:.2f} GiB "
                  f"(after set-up {before:.2f} GiB), {seconds:.1f}s", flush=True)


if __name__ == "__main__":
    main()
