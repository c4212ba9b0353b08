"""``explainreg train``: train a model with explanation penalties and print its test accuracy."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .._validation import nonnegative_float, nonnegative_int, positive_float, positive_int
from ..data import ENV_VAR, load_dataset
from ..data.sources import resolve_data_root
from ..data.datasets import available_datasets
from ..models import MODELS, build_model
from ..objective import Objective
from ..penalties import PENALTIES, build_penalty
from ..training import TrainConfig, resolve_device, train
from ..training.config import OPTIMIZERS
from ._common import add_data_arguments, check_penalty_options, parse_penalties, parse_settings

DEFAULT_MODEL = {"mnist": "cnn3b", "fashion-mnist": "cnn4b"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model with explanation penalties",
        description="Train a classifier on a real data set with cross-entropy plus weighted explanation "
                    "penalties; writes config, per-epoch metrics, checkpoint and log into --out.",
        epilog="example: explainreg train --dataset mnist --penalty smoothness=0.1 --penalty fidelity=1 --epochs 8")
    p.add_argument("--dataset", default="mnist", choices=available_datasets())
    p.add_argument("--model", default=None, help=f"one of {', '.join(sorted(MODELS))} (default: cnn3b for mnist, "
                                                 "cnn4b for fashion-mnist)")
    p.add_argument("--penalty", action="append", metavar="NAME[=WEIGHT]",
                   help=f"add a penalty (repeatable); names: {', '.join(sorted(PENALTIES))}")
    p.add_argument("--weight", type=nonnegative_float, default=0.1, help="weight of penalties given without =WEIGHT (0.1)")
    p.add_argument("--penalty-option", action="append", metavar="NAME.OPTION=VALUE",
                   help="a penalty setting, e.g. smoothness.compat=true or symmetry.angles=[5,10]")
    p.add_argument("--epochs", type=positive_int, default=8)
    p.add_argument("--batch-size", type=positive_int, default=30)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--normalize", action="store_true", help="standardise inputs with the train mean/std "
                                                            "(default: pixels in [0, 1], as the seed)")
    p.add_argument("--limit-train", type=positive_int, default=None, metavar="N", help="use the first N train images")
    p.add_argument("--limit-test", type=positive_int, default=None, metavar="N", help="use the first N test images")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run folder (default: runs/DATASET-MODEL-PENALTIES-sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint "
                   "(with the same settings; a larger --epochs extends a finished run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    penalties = parse_penalties(args.penalty, args.weight)
    settings = parse_settings(args.penalty_option)
    unknown = set(settings) - set(penalties)
    if unknown:
        raise ValueError(f"--penalty-option given for {sorted(unknown)} which are not among the --penalty list")
    for name, options in settings.items():
        check_penalty_options(name, options)
    resolve_device(args.device)  # a bad --device fails before the data are loaded
    model_name = args.model or DEFAULT_MODEL[args.dataset]
    tag = "+".join(f"{n}{w:g}" for n, w in penalties.items()) or "plain"
    out = Path(args.out or f"runs/{args.dataset}-{model_name}-{tag}-s{args.seed}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a run folder; choose a folder name")
    objective = Objective({build_penalty(n, **settings.get(n, {})): w for n, w in penalties.items()}, seed=args.seed)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                         weight_decay=args.weight_decay, seed=args.seed, device=args.device,
                         progress=not args.no_progress and sys.stderr.isatty())
    # the bundled subset only when no data root was given at all (an empty $EXPLAINREG_DATA is an error)
    explicit_root = args.data_root is not None or bool(os.environ.get(ENV_VAR))
    load = dict(root=args.data_root, download=not args.no_download, allow_bundled=not explicit_root,
                normalize=args.normalize)
    train_set = load_dataset(args.dataset, "train", limit=args.limit_train, **load)
    test_set = load_dataset(args.dataset, "test", limit=args.limit_test, **load)
    for split, data in (("train", train_set), ("test", test_set)):
        bundled = " [BUNDLED SUBSET: for a quick try only]" if "bundled" in data.source else ""
        print(f"{split}: {len(data)} images from {data.source}{bundled}")
    torch.manual_seed(args.seed)
    model = build_model(model_name, in_channels=train_set.x.shape[1])
    from_bundled = "bundled" in train_set.source
    info = {"dataset": args.dataset, "model": model_name, "model_kwargs": {"in_channels": train_set.x.shape[1]},
            "normalize": args.normalize, "data_root": args.data_root, "data": "bundled" if from_bundled else "root",
            "data_root_used": None if from_bundled else str(resolve_data_root(args.data_root)[0]),
            "train_source": train_set.source,
            "test_source": test_set.source, "limit_train": args.limit_train, "limit_test": args.limit_test,
            "command": "explainreg " + " ".join(sys.argv[1:])}
    result = train(model, objective, train_set, test_set, config=config, run_dir=out, resume=args.resume,
                   run_info=info, on_epoch_end=lambda e, r: print(_epoch_line(r), flush=True))
    print(f"test accuracy: {100 * result.final['test_accuracy']:.2f}%  (run folder: {out})")
    return 0


def _epoch_line(record: dict) -> str:
    terms = " ".join(f"{k[6:]}={v:.4g}" for k, v in record.items() if k.startswith("train_") and k != "train_accuracy")
    return (f"epoch {record['epoch']}: {terms} train_acc={100 * record['train_accuracy']:.2f}% "
            f"test_acc={100 * record['test_accuracy']:.2f}% ({record['seconds']:.1f}s)")
