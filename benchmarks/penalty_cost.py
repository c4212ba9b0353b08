"""Cost of a training step with CDEP, RRR and Expected Gradients relative to a plain CE step.

The XIL penalties (RRR-GradCAM, HINT, RBR; documentation: methods/xil) share the DecoyMNIST table.
Median wall time of one optimiser step (objective + backward + Adam step) on real DecoyMNIST
batches with CDEP's DecoyMNIST net, each divided by a plain cross-entropy step measured in the
same run (round-robin, so load changes hit all alike); then CDEP's cost on ColorMNIST batches
(ColorMNIST net) as the number of single-pixel blobs grows. Targets from the issue: CDEP with
8 blobs ≤ 3× plain, EG with 10 references ≤ 6× plain.

    python benchmarks/penalty_cost.py [--data-root ../shared/data] [--batch-size 64] [--repeats 15] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians as medians, make_step  # noqa: E402

from explainreg.data import color_mnist, color_mnist_blob_sampler, decoy_mnist
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import CDEP, HINT, RBR, RRR, ExpectedGradients, RRRGradCAM


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B = args.batch_size

    decoy = decoy_mnist("train", args.data_root, limit=B, reward_mask=True)
    x, y, extras = decoy.x, decoy.y, {"mask": decoy.extras["mask"], "reward_mask": decoy.extras["reward_mask"]}
    methods = {
        "plain CE": Objective(),
        "CDEP (1 blob: 4 corners)": Objective({CDEP(): 100.0}),
        "RRR (sum_log_prob)": Objective({RRR(): 10.0}),
        "RRR (nll, CDEP's Grad)": Objective({RRR("nll"): 10.0}),
        "EG (2 refs)": Objective({ExpectedGradients(2): 1.0}),
        "EG (10 refs)": Objective({ExpectedGradients(10): 1.0}),
        "RRR-GradCAM (XIL)": Objective({RRRGradCAM(): 10.0}),
        "HINT (XIL)": Objective({HINT(): 1.0}),
        "RBR (XIL, third order)": Objective({RBR(): 1.0}),
    }
    steps = {name: make_step(cdep_decoymnist_net(), obj, x, y, extras, args.device) for name, obj in methods.items()}
    t = medians(steps, args.repeats)
    base = t["plain CE"]
    print(f"# Penalty cost per training step — torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.device}, {args.threads} thread(s), batch {B}, median of {args.repeats}\n")
    print(f"DecoyMNIST net on real DecoyMNIST batches (target: EG 10 refs ≤ 6×)\n")
    print(table([[n, f"{1000 * v:.1f}", f"{v / base:.2f}×"] for n, v in t.items()], ["step", "ms", "vs plain"]))

    color = color_mnist("train", args.data_root, limit=B)
    sampler_counts = (1, 2, 4, 8, 16)
    steps = {"plain CE": make_step(cdep_colormnist_net(), Objective(), color.x, color.y, {}, args.device)}
    for n in sampler_counts:
        sampler = color_mnist_blob_sampler(args.data_root, n_blobs=n)
        steps[f"CDEP {n} blob(s)"] = make_step(cdep_colormnist_net(), Objective({CDEP(blob_sampler=sampler): 100.0}),
                                               color.x, color.y, {}, args.device)
    t = medians(steps, args.repeats)
    base = t["plain CE"]
    print(f"\nColorMNIST net on real ColorMNIST batches, single-pixel blobs (target: 8 blobs ≤ 3×)\n")
    print(table([[n, f"{1000 * v:.1f}", f"{v / base:.2f}×"] for n, v in t.items()], ["step", "ms", "vs plain"]))


if __name__ == "__main__":
    main()
