"""Metrics over ranks for the distributed tests: run once as one process and once under torchrun.

    python tests/_dist_metrics_worker.py OUT [--images N] [--batch B]
    torchrun --nproc_per_node 2 tests/_dist_metrics_worker.py OUT ...

Computes MoRF, Complexity and (with the digit's pixels as the mask) top-k intersection and XIL's
wrong-reason score of input-gradient maps on the first ``--images`` real MNIST test images, rank r
updating with the batches r, r + W, r + 2W, ... (each with its data-set ``index``), so
rank order differs from data-set order. The maps of every fifth image are zeroed: they are the
degenerate maps, spread over both ranks. Rank 0 saves ``OUT.pt``: each metric's per-image rows,
curve, value and ``n_degenerate``; every rank saves the number of images it updated with
(``OUT.pt.rankR``).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch

torch.set_num_threads(1)

#: every fifth image's attribution map is set to zero (a degenerate map)
ZEROED_EVERY = 5


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--batch", type=int, default=10)
    args = p.parse_args()

    from explainreg.attribution import attribute
    from explainreg.data import load_dataset
    from explainreg.metrics import Complexity, DegenerateAttributionWarning, MoRF, TopKIntersection, WrongReason
    from explainreg.models import build_model
    from explainreg.training import distributed

    if distributed.wanted():
        distributed.init_from_env(torch.device("cpu"))
    rank, world = distributed.rank_world()
    test = load_dataset("mnist", "test", limit=args.images)
    torch.manual_seed(0)
    model = build_model("cnn3b").eval()
    metrics = {"morf": MoRF(), "complexity": Complexity()}
    masked = {"top_k_intersection": TopKIntersection(k=100), "wrong_reason": WrongReason()}
    starts = list(range(0, len(test), args.batch))[rank::world]
    seen = 0
    for start in starts:
        index = torch.arange(start, min(start + args.batch, len(test)))
        x, y = test.x[index], test.y[index]
        a = attribute(model, x, y, "saliency")
        a[index % ZEROED_EVERY == 0] = 0
        for metric in metrics.values():
            metric.update(model, x, y, a, index=index)
        for metric in masked.values():  # tied maps: the zeroed ones (top-k keys its tie order by index)
            metric.update(model, x, y, a, x > 0, index=index)
        seen += len(index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateAttributionWarning)
        results = {name: metric.compute() for name, metric in {**metrics, **masked}.items()}
    torch.save({"images": seen}, f"{args.out}.pt.rank{rank}")
    if rank == 0:
        torch.save({name: {"per_image": r.per_image, "curve": r.curve, "value": float(r.value),
                           "n_degenerate": r.n_degenerate, "n_images": r.n_images}
                    for name, r in results.items()} | {"world": int(os.environ.get("WORLD_SIZE", 1))},
                   f"{args.out}.pt")


if __name__ == "__main__":
    sys.exit(main())
