"""How well-conditioned is contextual decomposition itself? float32-vs-float64 agreement beside the
change of the float64 result when the weights are perturbed at float32's own rounding level.

For each architecture of ``tests/test_cd_exactness.py`` (PyTorch's initialisation, and briefly trained on real MNIST) and each mask,
prints ``max|rel32 − rel64| / max|logit|`` and ``max|rel64(W(1 + δ)) − rel64(W)| / max|logit|`` with
δ ~ N(0, u²) per weight and buffer, u = 6e-8 (half a float32 ulp, relative). Where the second number
is larger than the first, no float32 implementation of the same rules can promise agreement better
than it: the rules themselves (the proportional bias split, the max-pool choice) move that much.

    EXPLAINREG_DATA=../shared/data python scripts/cd_conditioning.py
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _deep_nets import ResNet18Shaped, conv_bn_stack, normalised_images, region_masks, train_briefly  # noqa: E402

from explainreg.data import load_dataset  # noqa: E402
from explainreg.decomposition import decompose  # noqa: E402
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net  # noqa: E402

U = 6e-8


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in list(out.parameters()) + [b for b in out.buffers() if b.dtype.is_floating_point]:
            p.mul_(1 + U * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return out


def main() -> None:
    torch.set_num_threads(1)
    root = os.environ.get("EXPLAINREG_DATA", "../shared/data")
    train, test = load_dataset("mnist", "train", root=root), load_dataset("mnist", "test", root=root)
    nets = {"ResNet-18-shaped": (lambda: ResNet18Shaped(3, width=8), 3, 32),
            "conv/BN/ReLU x16": (lambda: conv_bn_stack(16, 1, width=8), 1, 28),
            "CDEP DecoyMNIST": (cdep_decoymnist_net, 1, 28), "CDEP ColorMNIST": (cdep_colormnist_net, 3, 28)}
    print("| net | weights | mask | f32 vs f64 | f64 vs f64 with weights ×(1+δ), 3 draws |")
    print("|---|---|---|---|---|")
    for (name, (build, channels, size)), weights in ((n, w) for n in nets.items() for w in ("random", "trained")):
        torch.manual_seed(0)
        model = build()
        if weights == "trained":
            train_briefly(model, normalised_images(train, channels, size, 512), train.y[:512], steps=15)
        model.eval()
        x = normalised_images(test, channels, size)
        m64, x64 = copy.deepcopy(model).double(), x.double()
        with torch.no_grad():
            scale = float(m64(x64).abs().max())
        for mname, mask in region_masks(size).items():
            r32, _ = decompose(model, x, mask)
            r64, _ = decompose(m64, x64, mask.double())
            moved = [float((decompose(perturbed(m64, k), x64, mask.double())[0] - r64).abs().max()) / scale
                     for k in range(3)]
            err = float((r32.double() - r64).abs().max()) / scale
            print(f"| {name} | {weights} | {mname} | {err:.1e} | " + " / ".join(f"{m:.1e}" for m in moved) + " |")


if __name__ == "__main__":
    main()
