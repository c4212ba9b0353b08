"""``order="seed"`` against CDEP's ``cd()`` rules written out as its code computes them
(``tests/test_cd_seed_fidelity.py``), on the CDEP nets after 30 Adam steps and real test batches.

Prints, per data set: the share of the first pool's windows whose pre-ReLU entries tie exactly, how
often the seed's rounding picks another entry than the total's argmax, how far picking by the
total leaves rel from ``cd()``, how far ``order="seed"`` is, and the penalty and weight gradients
with one blob per pass (``blob_chunk=1``, the seed's loop) and all blobs in one pass.

    EXPLAINREG_DATA=../shared/data python scripts/cd_seed_fidelity.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_cd_seed_fidelity as T  # noqa: E402

from explainreg.decomposition import decompose  # noqa: E402
from explainreg.penalties.annotation import cdep  # noqa: E402

def pick_total_cd(blob, x, net):
    """The seed's rules with each pool reading the parts at the argmax of the exact total."""
    def pool(rel, irrel, total):
        _, idx = F.max_pool2d(total, 2, return_indices=True)
        take = lambda t: t.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
        return take(rel), take(irrel)
    rel, irrel = blob * x, (1 - blob) * x
    rel, irrel = T.seed_relu(*pool(*T.seed_conv_linear(rel, irrel, net[0]), net[0](x)))
    rel, irrel = T.seed_relu(*pool(*T.seed_conv_linear(rel, irrel, net[3]), net[:4](x)))
    rel, irrel = rel.view(-1, 800), irrel.view(-1, 800)
    rel, irrel = T.seed_relu(*T.seed_conv_linear(rel, irrel, net[7]))
    return T.seed_conv_linear(rel, irrel, net[9])


def main() -> None:
    cases = [("DecoyMNIST", T.cdep_decoymnist_net, T.decoy_mnist, 64),
             ("ColorMNIST", T.cdep_colormnist_net, T.color_mnist, 32)]
    for name, build, data, n in cases:
        train = data("train", limit=2000)
        torch.manual_seed(0)
        net = T._trained(build(), train.x, train.y)
        x = data("test", limit=n).x
        if name == "DecoyMNIST":
            blobs = [T.decoy_corner_mask().float()]
        else:
            frequency = T.pixel_nonzero_frequency(T.color_mnist("train", limit=2000, normalize=False).x)
            blobs = list(T.PixelBlobSampler(frequency, n_blobs=8)(torch.Generator().manual_seed(0), x))
        with torch.no_grad():
            out = net[0](x)
            w = F.unfold(out.reshape(-1, 1, *out.shape[-2:]), 2, stride=2)
            tied = ((w == w.amax(1, keepdim=True)).sum(1) > 1).flatten()
            a = T.seed_conv_linear(blobs[0] * x, (1 - blobs[0]) * x, net[0])
            by_total = F.max_pool2d(out, 2, return_indices=True)[1]
            differ = (by_total != F.max_pool2d(a[0] + a[1], 2, return_indices=True)[1]).flatten()
            logit = float(net(x).abs().max())
            old, new = 0.0, 0.0
            for b in blobs:
                r_ref, i_ref = T.seed_cd(b, x, net)
                r_old, _ = pick_total_cd(b, x, net)
                r_new, i_new = decompose(net, x, b, order="seed")
                old = max(old, float((r_old - r_ref).abs().max()))
                new = max(new, float((r_new - r_ref).abs().max()), float((i_new - i_ref).abs().max()))
        print(f"{name}: max|logit| {logit:.2f}; first pool windows tied {float(tied.float().mean()):.3f}; "
              f"seed pick != total's argmax in {float(differ.float().mean()):.4f} of windows "
              f"({float(differ[tied].float().mean()):.3f} of tied); pick by total: max|Δrel| {old:.3g}; "
              f"order='seed': max|Δrel|,|Δirrel| {new:.3g}")
        for chunk in (1, None):
            seed = sum(T.seed_cdep(net, x, b) for b in blobs)
            ours = cdep(net, x, torch.stack(blobs), blobs=True, order="seed", blob_chunk=chunk)
            g1, g0 = T._gradients(net, ours), T._gradients(net, seed)
            top = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(g1, g0))
            norm = max(float((a - b).norm() / b.norm()) for a, b in zip(g1, g0))
            print(f"  blob_chunk={chunk}: |Δpenalty| {abs(float(ours.detach() - seed.detach())):.2g}; "
                  f"grads max|Δ|/max|g| {top:.2g}, ‖Δ‖/‖g‖ {norm:.2g}")


if __name__ == "__main__":
    main()
