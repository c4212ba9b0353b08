"""Cost of a training step with CDEP, RRR and Expected Gradients relative to a plain CE step.

The XIL penalties (RRR-GradCAM, HINT, RBR; documentation: methods/xil) share the DecoyMNIST table.
Median wall time of one optimiser step (objective + backward + Adam step) on real DecoyMNIST
batches with CDEP's DecoyMNIST net, each divided by a plain cross-entropy step measured in the
same run (round-robin, so load changes hit all alike); then CDEP's cost on ColorMNIST batches
(ColorMNIST net) as the number of single-pixel blobs grows. Expected gradients with k references
is also timed as a per-reference loop (k forwards and double backwards of B rows) and as one pass
over all B·k interpolated inputs (the penalty's default on the CPU: chunks of B), and set against
the cost model 1 + c·k (c printed per k). Targets: CDEP with
8 single-pixel blobs ≤ 4× plain, 16 ≤ 6×, one 4-corner blob ≤ 3×; EG with 10 references ≤ 21×.

    python benchmarks/penalty_cost.py [--data-root ../shared/data] [--batch-size 64] [--repeats 15] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians as medians, make_step, run_header  # noqa: E402

from explainreg.data import color_mnist, color_mnist_blob_sampler, decoy_mnist
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import CDEP, HINT, RBR, RRR, ExpectedGradients, RRRGradCAM
from explainreg.penalties.annotation import draw_references


def eg_loop_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, n_refs: int,
                 device: str) -> Callable[[], None]:
    """A training step with expected gradients computed one reference at a time (the loop that the
    batched penalty replaces): CE + R, backward, Adam."""
    model, x, y, mask = model.to(device), x.to(device), y.to(device), mask.to(device).to(x.dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        index, alpha = draw_references(len(x), n_refs, generator)
        loss = F.cross_entropy(model(x), y)
        terms = []
        for r in range(n_refs):
            refs = x[index[:, r].to(x.device)]
            a = alpha[:, r].to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
            x_tilde = (refs + a * (x - refs)).requires_grad_(True)
            p_y = F.softmax(model(x_tilde), 1).gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(p_y, x_tilde, create_graph=True)
            terms.append((x - refs) * grad)
        eg = torch.stack(terms, 1).mean(1)
        loss = loss + (mask * eg.abs()).flatten(1).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def chunked_eg(n_refs: int, chunk: int) -> ExpectedGradients | None:
    try:
        return ExpectedGradients(n_refs, chunk_size=chunk)
    except TypeError:  # an explainreg without chunk_size
        return None


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
        "EG (5 refs)": Objective({ExpectedGradients(5): 1.0}),
        "EG (10 refs)": Objective({ExpectedGradients(10): 1.0}),
        "RRR-GradCAM (XIL)": Objective({RRRGradCAM(): 10.0}),
        "HINT (XIL)": Objective({HINT(): 1.0}),
        "RBR (XIL, third order)": Objective({RBR(): 1.0}),
    }
    for k in (2, 10):
        eg = chunked_eg(k, B * k)
        if eg is not None:
            methods[f"EG ({k} refs), one pass of {B * k}"] = Objective({eg: 1.0})
    steps = {name: make_step(cdep_decoymnist_net(), obj, x, y, extras, args.device) for name, obj in methods.items()}
    steps["EG (10 refs), per-reference loop"] = eg_loop_step(cdep_decoymnist_net(), x, y, extras["mask"], 10,
                                                             args.device)
    t = medians(steps, args.repeats)
    base = t["plain CE"]
    print(f"# Penalty cost per training step\n\n{run_header(args.threads)}; {args.device}, batch {B}, "
          f"median of {args.repeats} interleaved steps\n")
    print("DecoyMNIST net on real DecoyMNIST batches (target: EG 10 refs ≤ 21×, one 4-corner CDEP blob ≤ 3×); "
          "c = (ratio − 1) / k for EG with k references\n")
    rows = []
    for n, v in t.items():
        k = int(n.split("(")[1].split(" ")[0]) if n.startswith("EG") else None
        rows.append([n, f"{1000 * v:.1f}", f"{v / base:.2f}×", f"{(v / base - 1) / k:.2f}" if k else ""])
    print(table(rows, ["step", "ms", "vs plain", "c"]))

    color = color_mnist("train", args.data_root, limit=B)
    sampler_counts = (1, 2, 4, 8, 16)
    steps = {"plain CE": make_step(cdep_colormnist_net(), Objective(), color.x, color.y, {}, args.device)}
    for n in sampler_counts:
        sampler = color_mnist_blob_sampler(args.data_root, n_blobs=n)
        steps[f"CDEP {n} blob(s)"] = make_step(cdep_colormnist_net(), Objective({CDEP(blob_sampler=sampler): 100.0}),
                                               color.x, color.y, {}, args.device)
    t = medians(steps, args.repeats)
    base = t["plain CE"]
    print("\nColorMNIST net on real ColorMNIST batches, single-pixel blobs (targets: 8 blobs ≤ 4×, 16 ≤ 6×)\n")
    print(table([[n, f"{1000 * v:.1f}", f"{v / base:.2f}×"] for n, v in t.items()], ["step", "ms", "vs plain"]))


if __name__ == "__main__":
    main()
