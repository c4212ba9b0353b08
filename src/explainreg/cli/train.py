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
from ..models import MODELS, build_model, import_callable, module_folder
from ..objective import Objective
from ..penalties import PENALTIES, build_penalty
from ..runs import default_run_name
from ..training import TrainConfig, resolve_device, train
from ..training.config import OPTIMIZERS
from ._common import add_data_arguments, check_penalty_options, parse_penalties, parse_settings

__all__ = ["DEFAULT_MODEL", "register", "run"]

DEFAULT_MODEL = {"mnist": "cnn3b", "fashion-mnist": "cnn4b"}


def register(subparsers) -> None:
    """Add ``explainreg train`` to the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a model with explanation penalties",
        description="Train a classifier on a real data set with cross-entropy plus weighted explanation "
                    "penalties; writes config, per-epoch metrics, checkpoint and log into --out.",
        epilog="example: explainreg train --dataset mnist --penalty smoothness=0.1 --penalty fidelity=1 --epochs 8")
    p.add_argument("--dataset", default="mnist", choices=available_datasets())
    p.add_argument("--model", default=None, help=f"one of {', '.join(sorted(MODELS))} (default: cnn3b for mnist, "
                                                 "cnn4b for fashion-mnist, vgg_small for --data folder:...), or "
                                                 "MODULE:CALLABLE, your own model class or builder (importable: "
                                                 "on PYTHONPATH); it gets num_classes / in_channels if it takes them")
    p.add_argument("--model-kwargs", default=None, metavar="JSON",
                   help='keyword arguments for the model builder, e.g. \'{"width": 32}\'')
    images = p.add_argument_group("image folders (methods.md A.12)")
    images.add_argument("--data", default=None, metavar="folder:PATH",
                        help="train on your images instead of --dataset: PATH/<class>/<image> (a random "
                             "--test-fraction held out) or PATH/train/<class>/… and PATH/test/<class>/…; a .csv "
                             "with columns image,label[,mask] also works")
    images.add_argument("--masks", default=None, metavar="PATH",
                        help="annotation masks laid out as the images (MASKS/<class>/<stem>.png, or MASKS/train/…); "
                             "non-zero = the region the model must not use (for cdep, rrr, expected_gradients)")
    images.add_argument("--image-size", type=positive_int, default=None, metavar="N",
                        help="resize the shorter side to N pixels")
    images.add_argument("--crop", type=positive_int, default=None, metavar="N", help="centre crop N×N after resizing")
    images.add_argument("--mode", default="RGB", choices=("RGB", "L"), help="colour (RGB) or grey (L) input")
    images.add_argument("--mean", default=None, metavar="M[,M,M]", help="per-channel mean to subtract (with --std)")
    images.add_argument("--std", default=None, metavar="S[,S,S]", help="per-channel std to divide by")
    images.add_argument("--test-fraction", type=float, default=0.2, help="held out when PATH has no test/ (0.2)")
    images.add_argument("--workers", type=nonnegative_int, default=2, help="DataLoader worker processes (2)")
    tuning = p.add_argument_group("optimisation")
    tuning.add_argument("--freeze", action="append", metavar="MODULE", default=None,
                        help="a submodule not to train, e.g. layer1 (repeatable)")
    tuning.add_argument("--grad-clip", type=positive_float, default=None, metavar="NORM",
                        help="clip the gradients' global L2 norm")
    tuning.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    p.add_argument("--penalty", action="append", metavar="NAME[=WEIGHT]",
                   help=f"add a penalty (repeatable); names: {', '.join(sorted(PENALTIES))}")
    p.add_argument("--weight", type=nonnegative_float, default=0.1, help="weight of penalties given without =WEIGHT (0.1)")
    p.add_argument("--penalty-option", action="append", metavar="NAME.OPTION=VALUE",
                   help="a penalty setting, e.g. smoothness.convention=seed or symmetry.angles=[5,10]")
    p.add_argument("--epochs", type=positive_int, default=8)
    p.add_argument("--batch-size", type=positive_int, default=30)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--log-every", type=positive_int, default=50, metavar="N",
                   help="log the training terms into steps.json every N steps (50)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--normalize", action="store_true", help="standardise inputs with the train mean/std "
                                                            "(default: pixels in [0, 1], as the seed)")
    p.add_argument("--limit-train", type=positive_int, default=None, metavar="N", help="use the first N train images")
    p.add_argument("--limit-test", type=positive_int, default=None, metavar="N", help="use the first N test images")
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run folder (default: runs/DATASET-MODEL-PENALTIES-sSEED-HASH, HASH a short hash of the "
                        "settings, so runs with other settings get other folders)")
    p.add_argument("--resume", nargs="?", const=True, default=False, type=_resume_mode, metavar="auto",
                   help="continue the run in --out from its last checkpoint (with the same settings; a larger "
                        "--epochs extends a finished run); a folder without a run is an error. --resume=auto: "
                        "continue it when there is one, else start it (for job scripts that are restarted)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train one model as the command line says, into its run folder (resumed with ``--resume``); returns 0."""
    if int(os.environ.get("RANK", 0) or 0) > 0:  # torchrun: rank 0 alone reports (training/distributed.py)
        sys.stdout = open(os.devnull, "w")
    penalties = parse_penalties(args.penalty, args.weight)
    settings = parse_settings(args.penalty_option)
    unknown = set(settings) - set(penalties)
    if unknown:
        raise ValueError(f"--penalty-option given for {sorted(unknown)} which are not among the --penalty list")
    for name, options in settings.items():
        check_penalty_options(name, options)
    resolve_device(args.device)  # a bad --device fails before the data are loaded
    model_name = args.model or ("vgg_small" if args.data else DEFAULT_MODEL[args.dataset])
    model_kwargs = _json_object("--model-kwargs", args.model_kwargs)
    tag = "+".join(f"{n}{w:g}" for n, w in penalties.items()) or "plain"
    data_tag = Path(args.data.partition(":")[2]).stem if args.data else args.dataset
    stem = f"runs/{data_tag}-{model_name.replace(':', '.')}-{tag}-s{args.seed}"
    out = Path(args.out or default_run_name(stem, vars(args)))  # other settings (an lr sweep): another folder
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a run folder; choose a folder name")
    objective = Objective({build_penalty(n, **settings.get(n, {})): w for n, w in penalties.items()}, seed=args.seed)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                         weight_decay=args.weight_decay, seed=args.seed, device=args.device, log_every=args.log_every,
                         progress=not args.no_progress and sys.stderr.isatty(), freeze=tuple(args.freeze or ()),
                         grad_clip=args.grad_clip, amp=args.amp)
    if args.data:
        return _run_folder(args, objective, config, model_name, model_kwargs, out)
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
    model_kwargs = _builder_kwargs(model_name, {"in_channels": train_set.x.shape[1]}, model_kwargs)
    model = build_model(model_name, **model_kwargs)
    from_bundled = "bundled" in train_set.source
    info = {"dataset": args.dataset, "model": model_name, "model_kwargs": model_kwargs,
            **({"model_path": module_folder(model_name)} if ":" in model_name else {}),
            "normalize": args.normalize, "data_root": args.data_root, "data": "bundled" if from_bundled else "root",
            "data_root_used": None if from_bundled else str(resolve_data_root(args.data_root)[0]),
            "train_source": train_set.source,
            "test_source": test_set.source, "limit_train": args.limit_train, "limit_test": args.limit_test,
            "command": "explainreg " + " ".join(sys.argv[1:])}
    result = train(model, objective, train_set, test_set, config=config, run_dir=out, resume=args.resume,
                   run_info=info, on_epoch_end=lambda e, r: print(_epoch_line(r), flush=True))
    print(f"test accuracy: {100 * result.final['test_accuracy']:.2f}%  (run folder: {out})")
    return 0


def _resume_mode(text: str) -> str:
    """``--resume=auto`` (the only value ``--resume`` takes)."""
    if text != "auto":
        raise argparse.ArgumentTypeError(f"--resume takes no value, or 'auto' (continue a run or start it); "
                                         f"got {text!r}")
    return text


def _epoch_line(record: dict) -> str:
    terms = " ".join(f"{k[6:]}={v:.4g}" for k, v in record.items() if k.startswith("train_") and k != "train_accuracy")
    return (f"epoch {record['epoch']}: {terms} train_acc={100 * record['train_accuracy']:.2f}% "
            f"test_acc={100 * record['test_accuracy']:.2f}% ({record['seconds']:.1f}s)")


def _json_object(option: str, raw: str | None) -> dict:
    import json

    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} must be a JSON object, e.g. '{{\"width\": 32}}'; got {raw!r} ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object (name: value), got {raw!r}")
    return value


def _builder_kwargs(model_name: str, known: dict, given: dict) -> dict:
    """``known`` (num_classes, in_channels) where the builder takes them, then the user's ``given``."""
    import inspect

    builder = import_callable(model_name) if ":" in model_name else MODELS.get(model_name.lower())
    try:
        accepted = inspect.signature(builder).parameters if builder is not None else {}
    except (TypeError, ValueError):
        accepted = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    return {**{k: v for k, v in known.items() if takes_any or k in accepted}, **given}


def _floats(option: str, raw: str | None) -> tuple[float, ...] | None:
    if raw is None:
        return None
    try:
        return tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise ValueError(f"{option} must be numbers separated by commas, e.g. 0.5,0.5,0.5; got {raw!r}") from None


def _run_folder(args: argparse.Namespace, objective: Objective, config: TrainConfig, model_name: str,
                model_kwargs: dict, out: Path) -> int:
    """``explainreg train --data folder:PATH``: the image-folder path (methods.md A.12)."""
    from ..data.folder import folder_splits, random_subset

    kind, _, path = args.data.partition(":")
    if kind != "folder" or not path:
        raise ValueError(f"--data must be folder:PATH (an image folder or a CSV list), got {args.data!r}")
    mean, std = _floats("--mean", args.mean), _floats("--std", args.std)
    options = dict(mode=args.mode, size=args.image_size, crop=args.crop, mean=mean, std=std)
    train_set, test_set = folder_splits(path, args.masks, test_fraction=args.test_fraction, split_seed=args.seed,
                                        **options, num_workers=args.workers, pin_memory=True)
    train_set = random_subset(train_set, args.limit_train, args.seed)
    test_set = random_subset(test_set, args.limit_test, args.seed)
    for split, data in (("train", train_set), ("test", test_set)):
        print(f"{split}: {data.source}")
    torch.manual_seed(args.seed)
    known = {"num_classes": train_set.num_classes, "in_channels": 3 if args.mode == "RGB" else 1}
    model_kwargs = _builder_kwargs(model_name, known, model_kwargs)
    model = build_model(model_name, **model_kwargs)
    settings = {"path": str(Path(path).resolve()), "masks": str(Path(args.masks).resolve()) if args.masks else None,
                **options, "test_fraction": args.test_fraction, "split_seed": args.seed, "classes": train_set.classes,
                "limit_train": args.limit_train, "limit_test": args.limit_test}
    info = {"dataset": "folder", "image_folder": settings, "model": model_name, "model_kwargs": model_kwargs,
            **({"model_path": module_folder(model_name)} if ":" in model_name else {}),
            "normalize": mean is not None, "train_source": train_set.source, "test_source": test_set.source,
            "command": "explainreg " + " ".join(sys.argv[1:])}
    result = train(model, objective, train_set, test_set, config=config, run_dir=out, resume=args.resume,
                   run_info=info, on_epoch_end=lambda e, r: print(_epoch_line(r), flush=True))
    print(f"test accuracy: {100 * result.final['test_accuracy']:.2f}%  (run folder: {out})")
    return 0
