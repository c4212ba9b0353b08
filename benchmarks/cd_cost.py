"""Cost of a CDEP training step relative to a plain CE step, as the number of single-pixel blobs
grows (ColorMNIST net) and for DecoyMNIST's one blob of four corners, for the explainreg found on
the path. Run it once on the current tree and once with ``PYTHONPATH`` pointing at an older
checkout's ``src`` to compare engines; on a tree with the receptive-field sparse pass
(:mod:`explainreg.decomposition.sparse`) the same run also times the dense engine (rows marked
"dense"), so that both paths share one run's load.

    python benchmarks/cd_cost.py [--data-root ../shared/data] [--repeats 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Callable, Iterator

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_medians, make_step, markdown_table, run_header  # noqa: E402

from explainreg.data import color_mnist, color_mnist_blob_sampler, decoy_mnist  # noqa: E402
from explainreg.decomposition import engine  # noqa: E402
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net  # noqa: E402
from explainreg.objective import Objective  # noqa: E402
from explainreg.penalties import CDEP  # noqa: E402

BLOBS = (1, 2, 4, 8, 16)
DENSE_TOO = (1, 8, 16)


@contextlib.contextmanager
def dense_engine() -> Iterator[None]:
    """The dense CD engine even where the sparse pass applies."""
    sparse = engine._decompose_sparse
    engine._decompose_sparse = lambda *args: None
    try:
        yield
    finally:
        engine._decompose_sparse = sparse


def dense(step: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with dense_engine():
            step()

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    has_sparse = hasattr(engine, "_decompose_sparse")
    decoy = decoy_mnist("train", args.data_root, limit=args.batch_size)
    color = color_mnist("train", args.data_root, limit=args.batch_size)
    steps = {
        "DecoyMNIST net: plain CE": make_step(cdep_decoymnist_net(), Objective(), decoy.x, decoy.y, {}),
        "DecoyMNIST net: CDEP, 1 blob (4 corners)": make_step(cdep_decoymnist_net(), Objective({CDEP(): 100.0}),
                                                              decoy.x, decoy.y, {"mask": decoy.extras["mask"]}),
    }
    if has_sparse:
        corners = steps["DecoyMNIST net: CDEP, 1 blob (4 corners)"]
        steps["DecoyMNIST net: CDEP, 1 blob (4 corners), dense"] = dense(corners)
    steps["ColorMNIST net: plain CE"] = make_step(cdep_colormnist_net(), Objective(), color.x, color.y, {})
    for n in BLOBS:
        sampler = color_mnist_blob_sampler(args.data_root, n_blobs=n)
        name = f"ColorMNIST net: CDEP, {n} single-pixel blob{'s' if n > 1 else ''}"
        steps[name] = make_step(cdep_colormnist_net(), Objective({CDEP(blob_sampler=sampler): 100.0}, seed=0),
                                color.x, color.y, {})
        if has_sparse and n in DENSE_TOO:
            steps[name + ", dense"] = dense(steps[name])
    times = interleaved_medians(steps, args.repeats)
    plain = {"DecoyMNIST": times["DecoyMNIST net: plain CE"], "ColorMNIST": times["ColorMNIST net: plain CE"]}
    rows = [[name, f"{1000 * t:.1f}", f"{t / plain[name.split(' ')[0]]:.2f}"] for name, t in times.items()]
    print(run_header(args.threads, f"; batch {args.batch_size}, median of {args.repeats} interleaved steps"))
    print()
    print(markdown_table(["step", "ms", "× plain"], rows))


if __name__ == "__main__":
    main()
