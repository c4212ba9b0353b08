"""Cost of a CDEP training step (1 and 8 blobs) relative to a plain CE step, for the explainreg
found on the path: run it once on the current tree and once with ``PYTHONPATH`` pointing at an
older checkout's ``src`` to compare engines (methods.md A.6: two streams cost more than one).

    python benchmarks/cd_cost.py [--data-root ../shared/data] [--repeats 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, make_step, markdown_table  # noqa: E402

import explainreg  # noqa: E402
from explainreg.data import color_mnist, color_mnist_blob_sampler, decoy_mnist  # noqa: E402
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import CDEP  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    decoy = decoy_mnist("train", args.data_root, limit=args.batch_size)
    color = color_mnist("train", args.data_root, limit=args.batch_size)
    sampler = color_mnist_blob_sampler(args.data_root, n_blobs=8)
    steps = {
        "DecoyMNIST net: plain CE": make_step(cdep_decoymnist_net(), Objective(), decoy.x, decoy.y, {}),
        "DecoyMNIST net: CDEP, 1 blob (4 corners)": make_step(cdep_decoymnist_net(), Objective({CDEP(): 100.0}),
                                                              decoy.x, decoy.y, {"mask": decoy.extras["mask"]}),
        "ColorMNIST net: plain CE": make_step(cdep_colormnist_net(), Objective(), color.x, color.y, {}),
        "ColorMNIST net: CDEP, 8 single-pixel blobs": make_step(
            cdep_colormnist_net(), Objective({CDEP(blob_sampler=sampler): 100.0}, seed=0), color.x, color.y, {}),
    }
    times = interleaved_medians(steps, args.repeats)
    plain = {"DecoyMNIST": times["DecoyMNIST net: plain CE"], "ColorMNIST": times["ColorMNIST net: plain CE"]}
    rows = [[name, f"{1000 * t:.1f}", f"{t / plain[name.split(' ')[0]]:.2f}"] for name, t in times.items()]
    print(f"explainreg from {Path(explainreg.__file__).parent}; batch {args.batch_size}, {args.threads} thread(s), "
          f"median of {args.repeats}")
    print(markdown_table(["step", "ms", "× plain"], rows))


if __name__ == "__main__":
    main()
