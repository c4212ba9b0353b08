"""Per-epoch CE, CDEP text penalty, dev and test accuracy of CDEP's SST LSTM on a seeded subset of decoy SST.

Shows how the training terms move for a given λ (notes/text.md: at λ ≥ 10 the penalty is driven to
≈ 0 within the first epoch while CE stays at log 2, and the model recovers only for small λ).

    OMP_NUM_THREADS=1 EXPLAINREG_DATA=../shared/data python scripts/sst_cdep_dynamics.py --lam 600
"""
from __future__ import annotations

import argparse

import torch

from explainreg.data.text import glove_vectors, sst_bias
from explainreg.objective import Objective
from explainreg.penalties import CDEP
from explainreg.models.text import cdep_lstm
from explainreg.training import evaluate, iterate_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", type=float, default=600.0)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = sst_bias("decoy", limit=args.limit)
    vectors, _ = glove_vectors(splits.vocab)
    torch.manual_seed(args.seed)
    model = cdep_lstm(len(splits.vocab), 2, vectors=vectors)
    optimizer = torch.optim.Adam(model.parameters())
    objective = Objective({CDEP(): args.lam})
    for epoch in range(args.epochs):
        sums: dict[str, float] = {}
        n = 0
        for x, y, extras in iterate_batches(splits.train, 64, seed=args.seed, epoch=epoch):
            out = objective(model, x, y, **extras)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            for k, v in out.terms.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
        terms = {k: round(v / n, 4) for k, v in sums.items()}
        print(epoch + 1, terms, "dev", round(evaluate(model, splits.dev)["accuracy"], 3),
              "test", round(evaluate(model, splits.test)["accuracy"], 3), flush=True)


if __name__ == "__main__":
    main()
