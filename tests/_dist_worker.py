"""A training run for the distributed tests: run once as one process and once under torchrun.

    python tests/_dist_worker.py OUT --penalty gradient_l1,cdep [--mode ddp|allreduce] [--run-dir DIR]
    torchrun --nproc_per_node 2 tests/_dist_worker.py OUT ...

Trains a freshly seeded net on the first ``--images`` real MNIST training images (global batch
``--batch``) for each penalty of ``--penalty`` in turn (one launch, several runs: the start-up
is the slow part) and saves, from rank 0, ``OUT.PENALTY.pt``: the final weights, the history and
the steps; and each rank's evaluation of the first ``--eval`` test images (``OUT.PENALTY.pt.rankR``).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

torch.set_num_threads(1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--penalty", default="none")
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--mode", default=None)
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--eval", type=int, default=101)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--resume-at", type=int, default=None, metavar="K",
                   help="train K epochs into the run folder, then resume it to --epochs with a fresh model")
    p.add_argument("--model", default="cnn3b")
    args = p.parse_args()

    from explainreg.training import distributed

    if args.mode:
        distributed.GRADIENT_SYNC = args.mode
    for penalty in args.penalty.split(","):
        run_one(args, penalty, None if args.run_dir is None else f"{args.run_dir}/{penalty}")


def run_one(args, penalty: str, run_dir) -> None:
    from explainreg import training
    from explainreg.data import load_dataset
    from explainreg.models import build_model
    from explainreg.objective import Objective
    from explainreg.penalties import build_penalty
    from explainreg.training import distributed

    train_set = load_dataset("mnist", "train", limit=args.images)
    test_set = load_dataset("mnist", "test", limit=args.eval)
    penalties = {}
    if penalty == "cdep":
        corners = torch.zeros(28, 28)
        for r in (slice(0, 5), slice(23, 28)):
            for c in (slice(0, 5), slice(23, 28)):
                corners[r, c] = 1
        train_set.extras["mask"] = corners.expand(len(train_set), 28, 28).clone()
        penalties = {build_penalty("cdep"): args.weight}
    elif penalty == "rrr":
        train_set.extras["mask"] = (train_set.x[:, 0] == 0).float()
        penalties = {build_penalty("rrr"): args.weight}
    elif penalty != "none":
        penalties = {build_penalty(penalty): args.weight}
    torch.manual_seed(0)
    model = build_model(args.model)
    objective = Objective(penalties, seed=0)
    config = training.TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=0.05 if args.optimizer == "sgd"
                                  else 1e-3, optimizer=args.optimizer, seed=3, progress=False, log_every=1,
                                  device="cpu", eval_batch_size=40)
    if args.resume_at is not None:  # a first run stops after K epochs; a new model and objective resume it
        first = training.TrainConfig(**{**config.to_dict(), "epochs": args.resume_at})
        training.train(model, objective, train_set, test_set, config=first, run_dir=run_dir)
        torch.manual_seed(1)
        model = build_model(args.model)
        objective = Objective({type(p)(**p.settings()): w for p, w in zip(objective.penalties, objective.weights)},
                              seed=0)
    result = training.train(model, objective, train_set, test_set, config=config, run_dir=run_dir,
                            resume=args.resume_at is not None)
    rank = int(os.environ.get("RANK", 0))
    evaluation = training.evaluate(model, test_set, batch_size=40)
    out = f"{args.out}.{penalty}.pt"
    torch.save({"evaluation": evaluation, "world": int(os.environ.get("WORLD_SIZE", 1))}, f"{out}.rank{rank}")
    if rank == 0:
        torch.save({"state": model.state_dict(), "history": result.history, "steps": result.steps,
                    "mode": distributed.resolve_mode(objective) if distributed.wanted() else None}, out)


if __name__ == "__main__":
    sys.exit(main())
