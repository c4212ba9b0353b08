"""Step time and throughput of data-parallel training: 1 vs N processes (torchrun, gloo on CPU).

    OMP_NUM_THREADS=1 nice python benchmarks/distributed.py [--procs 1,2] [--steps 12] [--batch 64]

For each penalty, one epoch of ``explainreg.training.train`` on ``steps × batch`` real MNIST images
(CNN3b, global batch ``--batch``: with N processes each computes batch/N rows and the gradients are
averaged) is timed from inside the run (``history[0]["seconds"]``: start-up, imports and the
process-group rendezvous excluded). Each process runs one thread (``--threads`` per process), so
N processes use N cores; the row "1 process × N threads" is the fair single-process comparison on
the same cores. The CPU is the limit on a small machine; see notes/scaleout.md for the projection.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from _common import markdown_table  # noqa: E402


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from explainreg import training
    from explainreg.data import load_dataset
    from explainreg.models import cnn3b
    from explainreg.objective import Objective

    data = load_dataset("mnist", "train", root=args.data_root, limit=args.steps * args.batch)
    out = {}
    for penalty in args.penalties.split(","):
        torch.manual_seed(0)
        objective = Objective({} if penalty == "ce" else {penalty: 1.0}, seed=0)
        config = training.TrainConfig(epochs=1, batch_size=args.batch, seed=0, progress=False, device="cpu",
                                      log_every=10 ** 6)
        # a short warm-up run (allocator, autograd caches), then the timed epoch
        training.train(cnn3b(), objective, load_dataset("mnist", "train", root=args.data_root, limit=2 * args.batch),
                       config=config)
        result = training.train(cnn3b(), objective, data, config=config)
        out[penalty] = result.history[0]["seconds"]
    if int(os.environ.get("RANK", 0)) == 0:
        Path(args.result).write_text(json.dumps(out))


def launch(procs: int, threads: int, args) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        torchrun = Path(sys.executable).with_name("torchrun")
        cmd = [str(torchrun), "--standalone", "--nproc_per_node", str(procs), str(HERE), "--worker",
               "--result", str(result), "--threads", str(threads), "--steps", str(args.steps),
               "--batch", str(args.batch), "--penalties", args.penalties]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", default="1,2", help="process counts to compare (default 1,2)")
    ap.add_argument("--steps", type=int, default=12, help="optimiser steps timed per run (12)")
    ap.add_argument("--batch", type=int, default=64, help="global batch size (64)")
    ap.add_argument("--penalties", default="ce,gradient_l1,saliency_guided")
    ap.add_argument("--threads", type=int, default=1, help="threads per process (1)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    procs = [int(p) for p in args.procs.split(",")]
    runs = [(p, args.threads) for p in procs]
    if max(procs) > 1:
        runs.append((1, max(procs) * args.threads))  # one process on the same number of cores
    timings = {run: launch(*run, args) for run in runs}
    base = timings[(1, args.threads)]
    rows = []
    for (p, t), seconds in timings.items():
        for penalty, s in seconds.items():
            step = s / args.steps
            rows.append([penalty, f"{p} process{'es' if p > 1 else ''} × {t} thread{'s' if t > 1 else ''}",
                         f"{1000 * step:.1f}", f"{args.batch / step:.0f}", f"{base[penalty] / s:.2f}×"])
    rows.sort(key=lambda r: args.penalties.split(",").index(r[0]))
    import torch

    print(f"# data-parallel step time: CNN3b, real MNIST, global batch {args.batch}, {args.steps} steps, CPU "
          f"({os.cpu_count()} cores), gloo, torch {torch.__version__}\n")
    print(markdown_table(["penalty", "processes", "step (ms)", "images/s", "speed-up vs 1 × 1"], rows))


if __name__ == "__main__":
    main()
