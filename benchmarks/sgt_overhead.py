"""Cost of a Saliency Guided Training step relative to a plain cross-entropy step (the SGT code).

SGT's MNIST CNN on real MNIST at batch 512 (the seed's setting), Adadelta lr 1.0: median time of
one optimiser step with explainreg's ``SaliencyGuided`` (fraction 0.5, random fill, λ = 1) over a
plain CE step (target ≤ 3×), and against the seed's per-sample masking loop (topk, NumPy uniform
draws and a copy per image) on the same saliency.

    python benchmarks/sgt_overhead.py [--data-root ../shared/data] [--repeats 10] [--batch 512]
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, markdown_table  # noqa: E402

import explainreg as er  # noqa: E402
from explainreg.penalties import SaliencyGuided, kl_divergence  # noqa: E402
from explainreg.penalties.saliency_guided import detached_saliency  # noqa: E402

TARGET = 3.0


def seed_masking(x: torch.Tensor, g: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """The seed's per-sample loop: topk of the signed gradient, U(min, max) from NumPy, then a copy."""
    out = x.detach().clone()
    for b in range(len(x)):
        index = g[b].flatten().topk(k, largest=False).indices.numpy()
        row = out[b].flatten().numpy().copy()
        row[index] = rng.uniform(float(x[b].min()), float(x[b].max()), size=k)
        out[b] = torch.from_numpy(row).view_as(out[b])
    return out


def make_steps(model, optimizer, x, y):
    plain_objective = er.Objective()
    sgt_objective = er.Objective({SaliencyGuided(0.5): 1.0}, seed=0)
    k = int(0.5 * x[0].numel())
    rng = np.random.default_rng(0)

    def step(objective):
        def run():
            out = objective(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
        return run

    def seed_loop():
        g = detached_saliency(model, x, y, "log_prob")
        xm = seed_masking(x, g, k, rng)
        z = model(x)
        loss = F.cross_entropy(z, y) + kl_divergence(z, model(xm))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return {"plain": step(plain_objective), "sgt": step(sgt_objective), "seed_loop": seed_loop}


HEADER = ["batch", "plain step (ms)", "SGT step (ms)", "ratio to plain", "target", "seed-style loop step (ms)",
          "speed-up vs loop"]


def measure(data_root: str | None = None, batch: int = 512, repeats: int = 10, device: str = "cpu") -> list[str]:
    """One table row: SGT's step against a plain step and the seed-style loop, interleaved medians."""
    data = er.data.load_dataset("mnist", "train", root=data_root, limit=batch, normalize=True)
    torch.manual_seed(0)
    model = er.models.build_model("sgt_mnist_cnn").to(device).train()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1e-3)  # small lr: comparable steps throughout
    x, y = data.x.to(device), data.y.to(device)
    t = interleaved_medians(make_steps(model, optimizer, x, y), repeats, warmup=1)
    ratio = t["sgt"] / t["plain"]
    return [str(len(x)), f"{1e3 * t['plain']:.0f}", f"{1e3 * t['sgt']:.0f}", f"{ratio:.2f}×",
            f"≤ {TARGET:g}× ({'yes' if ratio <= TARGET else 'NO'})", f"{1e3 * t['seed_loop']:.0f}",
            f"{t['seed_loop'] / t['sgt']:.2f}×"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# SGT step overhead: sgt_mnist_cnn, real MNIST, batch {args.batch}, {args.device}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(markdown_table(HEADER, [measure(args.data_root, args.batch, args.repeats, args.device)]))


if __name__ == "__main__":
    main()
