"""Cost of a training step with each penalty, relative to a plain cross-entropy step (same run).

For CNN3b on real MNIST at batch 30 and 64: median time of one optimiser step with each penalty
(weight 0.1) divided by a plain CE step, and explainreg's step against a naive step that computes
the saliency one sample at a time (what the seed does: B backward passes, Python pair loops).

Then Saliency Guided Training's step at batch 512 against a plain step (``sgt_overhead.measure``).

    python benchmarks/step_overhead.py [--data-root ../shared/data] [--repeats 20] [--sgt-repeats 5]
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, markdown_table  # noqa: E402
import sgt_overhead  # noqa: E402

import explainreg as er  # noqa: E402
from explainreg.penalties import functional as P  # noqa: E402
from explainreg.gradients import minmax_normalize  # noqa: E402
from explainreg.transforms import rotate  # noqa: E402

PENALTIES = ["gradient_l1", "smoothness", "locality", "consistency", "fidelity", "symmetry"]
TARGETS = {"gradient_l1": 3, "smoothness": 3, "locality": 3, "consistency": 3.5, "fidelity": 5, "symmetry": 5}


def naive_saliency(model, x, y):
    """The seed's input_grads: one autograd.grad per sample over the whole batch, row i kept."""
    x = x if x.requires_grad else x.detach().requires_grad_(True)
    z = model(x)
    rows = [torch.autograd.grad(z[i, y[i]], x, retain_graph=True, create_graph=True)[0][i] for i in range(len(x))]
    return x, z, torch.stack(rows)


def naive_penalty(name, model, x, y, angle=10.0):
    x, z, g = naive_saliency(model, x, y)
    if name == "consistency":  # the seed's Python loop over pairs in each predicted class
        pred = z.argmax(1)
        total = z.new_zeros(())
        for n in range(z.shape[1]):
            members = torch.nonzero(pred == n).flatten().tolist()
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    i, j = members[a], members[b]
                    gi, gj = minmax_normalize(g[i:i + 1]).flatten(), minmax_normalize(g[j:j + 1]).flatten()
                    num = 1 - F.cosine_similarity(gi, gj, dim=0)
                    den = 1 - F.cosine_similarity(x[i].flatten(), x[j].flatten(), dim=0)
                    total = total + num / (den + 1e-8)
        return z, total / len(x)
    if name == "symmetry":
        xr, _, gr = naive_saliency(model, rotate(x.detach(), angle), y)
        return z, (1 - F.cosine_similarity(gr.flatten(1), rotate(g, angle).flatten(1), dim=1).abs()).mean()
    fns = {"gradient_l1": lambda: P.gradient_l1(g), "smoothness": lambda: P.smoothness(g),
           "locality": lambda: P.locality(g, P.input_target(x)), "fidelity": lambda: P.fidelity(model, x, g, z)}
    return z, fns[name]()


def make_steps(model, optimizer, x, y, naive: bool):
    def plain():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    steps = {"plain": plain}
    for name in PENALTIES:
        objective = er.Objective({name: 0.1})

        def step(objective=objective):
            out = objective(model, x, y)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()

        steps[name] = step
        if naive:
            def naive_step(name=name):
                z, r = naive_penalty(name, model, x, y)
                loss = F.cross_entropy(z, y) + 0.1 * r
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            steps[f"naive_{name}"] = naive_step
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sgt-repeats", type=int, default=5, help="repeats of the SGT rows (0 skips them)")
    args = parser.parse_args()
    data = er.data.load_dataset("mnist", "train", root=args.data_root, limit=64)
    torch.manual_seed(0)
    model = er.models.cnn3b().to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # small lr: the model stays comparable across steps
    print(f"# step overhead: CNN3b, real MNIST, {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    rows = []
    for batch in (30, 64):
        x, y = data.x[:batch].to(args.device), data.y[:batch].to(args.device)
        ours = interleaved_medians(make_steps(model, optimizer, x, y, naive=False), args.repeats)
        naive = {}
        if batch == 64:
            steps = {k: v for k, v in make_steps(model, optimizer, x, y, naive=True).items() if k.startswith("naive")}
            naive = interleaved_medians(steps, args.naive_repeats, warmup=1)
        for name in PENALTIES:
            ratio = ours[name] / ours["plain"]
            speedup = f"{naive[f'naive_{name}'] / ours[name]:.1f}×" if naive else "–"
            ok = "yes" if ratio <= TARGETS[name] else "NO"
            rows.append([str(batch), name, f"{1e3 * ours['plain']:.2f}", f"{1e3 * ours[name]:.2f}", f"{ratio:.2f}×",
                         f"≤ {TARGETS[name]}× ({ok})", speedup])
    print(markdown_table(["batch", "penalty", "plain step (ms)", "penalty step (ms)", "ratio to plain", "target",
                          "speed-up vs per-sample loop"], rows))
    if args.sgt_repeats:
        print("\n# Saliency Guided Training: sgt_mnist_cnn, real MNIST, batch 512 (the seed's setting), Adadelta")
        print(markdown_table(sgt_overhead.HEADER, [sgt_overhead.measure(args.data_root, 512, args.sgt_repeats,
                                                                         args.device)]))


if __name__ == "__main__":
    main()
