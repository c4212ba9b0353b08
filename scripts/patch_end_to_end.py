"""End-to-end training on an ISIC-layout image folder (e.g. the patch benchmark): vanilla, RRR and CDEP
on the whole network (not only a head on frozen features, as ``explainreg study isic`` does), through
the image-folder path (lazy reading, masks from the folder), scored as the study scores.

    EXPLAINREG_DATA=../shared/data python scripts/make_patch_benchmark.py /tmp/patchbench
    python scripts/patch_end_to_end.py /tmp/patchbench --out results/patch-e2e \
        --runs vanilla:0 rrr:1000 cdep:10 cdep:100 --seeds 0 1 2 --epochs 10

Each run trains in ``OUT/runs/<method>_lam<λ>_seed<s>`` (checkpointed; rerunning resumes or reuses it) and
appends its scores to ``OUT/results.csv``; ``OUT/summary.md`` holds mean ± std over seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from explainreg.objective import Objective
from explainreg.penalties import CDEP, RRR
from explainreg.studies.isic import classification_scores, isic_splits, small_cnn_extractor
from explainreg.training import TrainConfig, train


def network(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(features=small_cnn_extractor(3), head=nn.Linear(1024, 2)))


@torch.no_grad()
def scores(model: nn.Module, test) -> dict[str, float]:
    model.eval()
    p = torch.cat([F.softmax(model(test.x[i:i + 256]), 1)[:, 1] for i in range(0, len(test), 256)])
    y, patched = test.y, test.extras["mask"].flatten(1).any(1)
    out = {f"no_patch_{k}": v for k, v in classification_scores(p[~patched], y[~patched]).items() if k != "n"}
    out.update({f"patched_{k}": v for k, v in classification_scores(p[patched], y[patched]).items() if k != "n"})
    victims = patched & (y == 1)
    out["patched_malignant_accuracy"] = float((p[victims] > 0.5).float().mean())
    out["n_patched_malignant"] = int(victims.sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_root")
    ap.add_argument("--out", default="results/patch-e2e")
    ap.add_argument("--runs", nargs="+", default=["vanilla:0", "rrr:1000", "cdep:10"],
                    help="method:λ pairs (vanilla, rrr, cdep)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    import pandas as pd

    from explainreg.runs import atomic_write_bytes

    out = Path(args.out)
    size = json.loads((Path(args.data_root) / "benchmark.json").read_text())["size"]
    train_set, test_folder = isic_splits(args.data_root, size, workers=args.workers)
    test = test_folder.to_memory()
    rows = []
    for seed in args.seeds:
        for spec in args.runs:
            method, lam = spec.split(":")
            lam = float(lam)
            penalty = {"vanilla": None, "rrr": RRR, "cdep": CDEP}[method]
            objective = Objective({penalty(): lam} if penalty is not None and lam > 0 else {}, seed=seed)
            model = network(seed)
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer="adam",
                                 seed=seed, progress=False)
            name = f"{method}_lam{lam:g}_seed{seed}"
            result = train(model, objective, train_set, config=config, run_dir=out / "runs" / name, resume=True)
            row = {"method": method, "lambda": lam, "seed": seed, "epochs": args.epochs, **scores(model, test)}
            rows.append(row)
            print(f"{name}: no-patch AUC {row['no_patch_auc']:.3f}, patched AUC {row['patched_auc']:.3f}, "
                  f"patched-malignant accuracy {row['patched_malignant_accuracy']:.3f}", flush=True)
            del result
    frame = pd.DataFrame(rows)
    atomic_write_bytes(out / "results.csv", frame.to_csv(index=False).encode())
    cols = ["no_patch_auc", "no_patch_f1", "patched_auc", "patched_f1", "patched_malignant_accuracy"]
    agg = frame.groupby(["method", "lambda"], sort=False)[cols].agg(["mean", "std"])
    lines = ["| method | λ | seeds | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for (method, lam), r in agg.iterrows():
        n = int((frame["method"].eq(method) & frame["lambda"].eq(lam)).sum())
        lines.append(f"| {method} | {lam:g} | {n} | " + " | ".join(
            f"{r[(c, 'mean')]:.3f} ± {0 if pd.isna(r[(c, 'std')]) else r[(c, 'std')]:.3f}" for c in cols) + " |")
    text = (f"End-to-end training on `{args.data_root}` ({len(train_set)} train, {len(test)} test images, "
            f"{size}×{size}), small CNN, Adam {args.lr:g}, batch {args.batch_size}, {args.epochs} epochs, "
            f"std over seeds (ddof 1).\n\n" + "\n".join(lines) + "\n\nCommand: `python scripts/patch_end_to_end.py "
            + " ".join(sys.argv[1:] if argv is None else argv) + "`\n")
    atomic_write_bytes(out / "summary.md", text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
