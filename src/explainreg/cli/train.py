"""``explainreg train``: train a model with explanation penalties and print its test accuracy."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Container, Iterable, Mapping

import torch

from .._validation import nonnegative_float, nonnegative_int, positive_float, positive_int
from ..data import ENV_VAR, load_dataset
from ..data import DATASETS, STATS, CarriedMask, carrying_masks, dataset_family
from ..data.sources import resolve_data_root
from ..inputs import CONVERSIONS, EVIDENCE, MASK_MEANINGS, MUST_NOT_USE, MaskRoute, stated_mask_meanings
from ..models import MODELS, build_model, import_callable, module_folder
from ..objective import Objective
from ..penalties import PENALTIES, build_penalty
from ..runs import default_run_name
from ..training import TrainConfig, resolve_device, train
from ..training.config import OPTIMIZERS
from ._common import (HelpFormatter, add_data_arguments, add_threads_argument, check_penalty_options,
                      parse_penalties, parse_settings, set_threads)
from ..data.folder import folder_splits, random_subset

__all__ = ["DEFAULT_MODEL", "EvidenceFolder", "check_masks", "register", "run", "trainable_dataset"]

#: the reference model of each data set ``train --dataset`` takes (a family's sets, ``ucr/NAME``: the family's)
DEFAULT_MODEL = {family.name: family.model for family in DATASETS.values() if family.model}
#: penalties that read the batch's ``mask`` (HINT reads ``reward_mask``, from --evidence-masks)
MASK_PENALTIES = ("cdep", "rrr", "expected_gradients", "rrr_gradcam", "rbr")


def _dataset_help() -> str:
    """``--dataset``'s help from :data:`~explainreg.data.DATASETS`: the sets train takes, then those a study prepares."""
    takes = [f"{f.name}/NAME" if f.members else f.name for f in DATASETS.values() if f.model]
    prepared: dict[str, list[str]] = {}
    for f in DATASETS.values():
        if not f.model:
            prepared.setdefault(f.prepared_by, []).append(f.name)
    return (f"a registered data set (`explainreg datasets` lists them and their files): {', '.join(takes)} "
            f"({', '.join(carrying_masks(MUST_NOT_USE, trainable=True))} with annotation masks)"
            + "".join(f"; {', '.join(names)} train through {by}" for by, names in prepared.items()))


def register(subparsers) -> None:
    """Add ``explainreg train`` to the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a model with explanation penalties", formatter_class=HelpFormatter,
        description="Train a classifier on a real data set with cross-entropy plus weighted explanation "
                    "penalties; writes config, per-epoch metrics, checkpoint and log into --out.",
        epilog="example: explainreg train --dataset mnist --penalty smoothness=0.1 --penalty fidelity=1 --epochs 8")
    p.add_argument("--dataset", default="mnist", metavar="NAME",
                   help=_dataset_help())
    p.add_argument("--model", default=None, help=f"one of {', '.join(sorted(MODELS))} (default: the data set's "
                                                 "reference model: "
                                                 + ", ".join(f"{m} for {d}" + ("/NAME" if DATASETS[d].members else "")
                                                             for d, m in DEFAULT_MODEL.items())
                                                 + ", vgg_small for --data folder:...), "
                                                 "or MODULE:CALLABLE, your own model class or builder (importable: "
                                                 "on PYTHONPATH); it gets num_classes / in_channels if it takes them")
    p.add_argument("--model-kwargs", default=None, metavar="JSON",
                   help='keyword arguments for the model builder, e.g. \'{"width": 32}\'')
    images = p.add_argument_group("image folders (documentation: guide/images)")
    images.add_argument("--data", default=None, metavar="folder:PATH",
                        help="train on your images instead of --dataset: PATH/<class>/<image> (a random "
                             "--test-fraction held out) or PATH/train/<class>/… and PATH/test/<class>/…; a .csv "
                             "with columns image,label[,mask] also works")
    images.add_argument("--masks", default=None, metavar="PATH",
                        help="annotation masks laid out as the images (MASKS/<class>/<stem>.png, or MASKS/train/…); "
                             "non-zero = the region the model must not use (for cdep, rrr, expected_gradients)")
    images.add_argument("--evidence-masks", default=None, metavar="PATH|object",
                        help="HINT's reward masks (non-zero = where the right reasons are): for --data folder:PATH, "
                             "a folder laid out as the images (as --masks); for decoy-mnist / decoy-fmnist, 'object' "
                             "(the digit's or garment's own pixels, XIL's HINT masks)")
    images.add_argument("--mask-meaning", default=None, choices=MASK_MEANINGS,
                        help="what the masks mark (documentation: guide/concepts): must_not_use (the default for "
                             "--masks) or evidence; a data set that states its own (decoy-mnist) refuses the other")
    images.add_argument("--image-size", type=positive_int, default=None, metavar="N",
                        help="resize the shorter side to N pixels")
    images.add_argument("--crop", type=positive_int, default=None, metavar="N", help="centre crop N×N after resizing")
    images.add_argument("--mode", default="RGB", choices=("RGB", "L"), help="colour (RGB) or grey (L) input")
    images.add_argument("--mean", default=None, metavar="M[,M,M]", help="per-channel mean to subtract (with --std)")
    images.add_argument("--std", default=None, metavar="S[,S,S]", help="per-channel std to divide by")
    images.add_argument("--test-fraction", type=float, default=0.2, help="held out when PATH has no test/")
    images.add_argument("--workers", type=nonnegative_int, default=2, help="DataLoader worker processes")
    tuning = p.add_argument_group("optimisation")
    tuning.add_argument("--freeze", action="append", metavar="MODULE", default=None,
                        help="a submodule not to train, e.g. layer1 (repeatable)")
    tuning.add_argument("--grad-clip", type=positive_float, default=None, metavar="NORM",
                        help="clip the gradients' global L2 norm")
    tuning.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    p.add_argument("--penalty", action="append", metavar="NAME[=WEIGHT]",
                   help=f"add a penalty (repeatable); names: {', '.join(sorted(PENALTIES))}")
    p.add_argument("--mask-convert", default=None, choices=CONVERSIONS,
                   help="a penalty defined for the other mask meaning (hint on shortcut masks, rrr on evidence "
                        "masks) trains on the complement 1 − m; without it such a penalty is refused")
    p.add_argument("--weight", type=nonnegative_float, default=0.1, help="weight of penalties given without =WEIGHT")
    p.add_argument("--penalty-option", action="append", metavar="NAME.OPTION=VALUE",
                   help="a penalty setting, e.g. smoothness.convention=seed or symmetry.angles=[5,10]")
    p.add_argument("--epochs", type=positive_int, default=8, help="passes over the training images")
    p.add_argument("--batch-size", type=positive_int, default=30, help="images per training step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="the optimiser")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0, help="the optimiser's weight decay")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the model's initialisation, the batch order and the penalties' draws")
    p.add_argument("--log-every", type=positive_int, default=50, metavar="N",
                   help="log the training terms into steps.json every N steps")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    add_threads_argument(p)
    p.add_argument("--normalize", action="store_true", help="standardise inputs with the train mean/std "
                                                            "(default: pixels in [0, 1], as the seed)")
    p.add_argument("--limit-train", type=positive_int, default=None, metavar="N",
                   help="use N train images: a seeded subset, stratified by label for the named data sets")
    p.add_argument("--limit-test", type=positive_int, default=None, metavar="N",
                   help="use N test images: a seeded subset, stratified by label for the named data sets")
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
    set_threads(args.threads)
    penalties = parse_penalties(args.penalty, args.weight)
    settings = parse_settings(args.penalty_option)
    unknown = set(settings) - set(penalties)
    if unknown:
        raise ValueError(f"--penalty-option given for {sorted(unknown)} which are not among the --penalty list")
    for name, options in settings.items():
        check_penalty_options(name, options)
    resolve_device(args.device)  # a bad --device fails before the data are loaded
    if not args.data:
        args.dataset = trainable_dataset(args.dataset)
        _check_dataset_options(args, penalties)
    model_name = args.model or ("vgg_small" if args.data else _default_model(args.dataset))
    model_kwargs = _json_object("--model-kwargs", args.model_kwargs)
    tag = "+".join(f"{n}{w:g}" for n, w in penalties.items()) or "plain"
    data_tag = Path(args.data.partition(":")[2]).stem if args.data else args.dataset.replace("/", "-")
    stem = f"runs/{data_tag}-{model_name.replace(':', '.')}-{tag}-s{args.seed}"
    out = Path(args.out or default_run_name(stem, vars(args)))  # other settings (an lr sweep): another folder
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a run folder; choose a folder name")
    objective = Objective({build_penalty(n, **settings.get(n, {})): w for n, w in penalties.items()}, seed=args.seed,
                          mask_meanings={"mask": args.mask_meaning} if args.mask_meaning else None,
                          mask_convert=args.mask_convert)
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
    train_set, test_set = (_load_split(args, split, limit, load)
                           for split, limit in (("train", args.limit_train), ("test", args.limit_test)))
    for split, data in (("train", train_set), ("test", test_set)):
        bundled = " [BUNDLED SUBSET: for a quick try only]" if "bundled" in data.source else ""
        print(f"{split}: {len(data)} images from {data.source}{bundled}")
    check_masks(penalties, train_set.extras, args.dataset,
                objective.check_masks(stated_mask_meanings(train_set), source=f"--dataset {args.dataset}"))
    torch.manual_seed(args.seed)
    features = train_set.x.dim() == 2                   # tabular B×F: an MLP's in_features
    known = {"in_channels": train_set.x.shape[1], **({"in_features": train_set.x.shape[1]} if features else {}),
             **({"num_classes": train_set.num_classes} if args.dataset.startswith("ucr/") or features else {})}
    model_kwargs = _builder_kwargs(model_name, known, model_kwargs)
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


def trainable_dataset(name: str) -> str:
    """The name ``train --dataset`` trains under (``mnist``, ``decoy-mnist``, ``ucr/GunPoint``, ...): a registered
    data set (:data:`~explainreg.data.DATASETS`) with a reference model; a ``ValueError`` pointing to what prepares
    one without (the text sets: a study), or listing the names for an unknown one."""
    try:
        family, key = dataset_family(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"--dataset {name!r} is not a data set train knows: {exc}; or --data folder:PATH for your "
                         "own images") from None
    if family.model is None:
        raise ValueError(f"--dataset {name}: {family.name} needs preparing before a model can train on it (text "
                         f"sets: a vocabulary and word vectors), which {family.prepared_by} does; run that, or train "
                         "from Python with explainreg.data and explainreg.models")
    return key


def _default_model(dataset: str) -> str:
    return dataset_family(dataset)[0].model


def _check_dataset_options(args: argparse.Namespace, penalties: dict[str, float]) -> None:
    """Options that only some data sets take, refused where they would be ignored."""
    if args.normalize and args.dataset not in STATS:
        raise ValueError(f"--normalize standardises {' and '.join(STATS)}; {args.dataset} comes in "
                         "its own fixed scaling (see explainreg.data), so leave --normalize out")
    evidence = _evidence_sets()
    if args.masks or args.evidence_masks not in (None, "object"):
        raise ValueError("--masks and --evidence-masks PATH go with --data folder:PATH (masks laid out as the images); "
                         f"for --dataset {args.dataset} use --evidence-masks object ({', '.join(evidence)})")
    if args.evidence_masks == "object" and _evidence_mask(args.dataset) is None:
        raise ValueError(f"--evidence-masks object takes the object's pixels of {' or '.join(evidence)}; "
                         f"{args.dataset} has no such masks")
    if args.evidence_masks and "hint" not in penalties:
        raise ValueError("--evidence-masks gives HINT its reward masks; add --penalty hint=WEIGHT, or leave it out")


def _evidence_sets() -> list[str]:
    """The data sets ``--evidence-masks object`` takes: those whose evidence masks a load option adds."""
    return carrying_masks(EVIDENCE, on_request=True, trainable=True)


def _evidence_mask(name: str) -> CarriedMask | None:
    """The evidence mask the data set ``name`` adds on request (its registered :class:`CarriedMask`), or None."""
    family = dataset_family(name)[0]
    return next((m for m in family.masks if m.meaning == EVIDENCE and m.option), None)


def _load_split(args: argparse.Namespace, split: str, limit: int | None, load: dict):
    """One split of ``--dataset`` (with HINT's reward masks for ``--evidence-masks object``)."""
    if args.evidence_masks == "object":
        family, canonical = dataset_family(args.dataset)
        return family.load(canonical, split, load["root"], limit=limit, subset_seed=0,
                           **{_evidence_mask(args.dataset).option: True})
    return load_dataset(args.dataset, split, limit=limit, **load)


def _sets_with_masks(meaning: str, on_request: bool) -> str:
    """``--dataset A or B (what the masks mark)``: the data sets :data:`~explainreg.data.DATASETS` records as
    carrying masks of ``meaning`` (added by a load option: ``on_request``), for the mask messages."""
    names = carrying_masks(meaning, on_request=on_request, trainable=True)
    marks = {m.help for name in names for m in DATASETS[name].masks if m.meaning == meaning
             and (m.option is not None) == on_request and m.help}
    return f"--dataset {' or '.join(names)}" + (f" ({', '.join(sorted(marks))})" if marks else "")


def check_masks(penalties: Iterable[str], extras: Container[str], data: str,
                routes: Mapping[str, MaskRoute] | None = None) -> None:
    """A ``ValueError`` before training when a penalty needs masks the data's batches do not carry:
    ``mask`` (cdep, rrr, expected_gradients, rrr_gradcam, rbr) or ``reward_mask`` (hint), saying
    which data sets carry them and how to pass them. ``routes``: where each penalty reads its mask
    (:meth:`~explainreg.objective.Objective.check_masks`; hint's from the complement of ``mask``
    with ``--mask-convert complement``)."""
    for name in penalties:
        key = "reward_mask" if name == "hint" else "mask" if name in MASK_PENALTIES else None
        if routes and name in routes:
            key = routes[name].read
        if key is None or key in extras:
            continue
        if key == "mask":
            raise ValueError(f"--penalty {name} needs annotation masks (1 = the region the model must not use), and "
                             f"{data} has none. Data sets with masks: {_sets_with_masks(MUST_NOT_USE, False)}, or your images with --data folder:PATH --masks MASKS (MASKS/<class>/"
                             "<stem>.png laid out as the images, or a CSV with a mask column)")
        raise ValueError(f"--penalty hint needs reward masks (where the right reasons are), and {data} has none: "
                         f"pass --evidence-masks object with {_sets_with_masks(EVIDENCE, True)}, or "
                         "--evidence-masks PATH (laid out as the images) with --data folder:PATH, or train on the "
                         "complement of the data's shortcut masks with --mask-convert complement")


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


class EvidenceFolder(torch.utils.data.Dataset):
    """An image folder whose items also carry HINT's reward masks (extras ``reward_mask``), read from
    ``evidence``: the same images opened with the evidence mask folder as their masks.

    Args:
        data: the image folder (its own ``mask`` extras stay).
        evidence: the same samples, in the same order, opened with the evidence masks.
    """

    def __init__(self, data, evidence) -> None:
        if [s.image for s in data.samples] != [s.image for s in evidence.samples]:
            raise ValueError("the evidence masks' folder lists other images than the data's; lay them out as the images")
        self.data, self.evidence = data, evidence
        n = sum(s.mask is not None for s in evidence.samples)
        #: what the masks mark: the folder's own (``mask``), and the evidence (``reward_mask``)
        self.mask_meanings = {**stated_mask_meanings(data), "reward_mask": EVIDENCE}
        self.samples, self.name, self.loader_options = data.samples, data.name, data.loader_options
        self.source = f"{data.source}, {n} evidence masks from {evidence.masks}"

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def classes(self) -> list[str]:
        return self.data.classes

    @property
    def targets(self) -> torch.Tensor:
        return self.data.targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        x, y, extras = self.data[index]
        return x, y, {**extras, "reward_mask": self.evidence[index][2]["mask"]}


def _floats(option: str, raw: str | None) -> tuple[float, ...] | None:
    if raw is None:
        return None
    try:
        return tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise ValueError(f"{option} must be numbers separated by commas, e.g. 0.5,0.5,0.5; got {raw!r}") from None


def _run_folder(args: argparse.Namespace, objective: Objective, config: TrainConfig, model_name: str,
                model_kwargs: dict, out: Path) -> int:
    """``explainreg train --data folder:PATH``: the image-folder path (documentation: guide/images)."""
    kind, _, path = args.data.partition(":")
    if kind != "folder" or not path:
        raise ValueError(f"--data must be folder:PATH (an image folder or a CSV list), got {args.data!r}")
    if args.evidence_masks and not Path(args.evidence_masks).is_dir():
        raise ValueError(f"--evidence-masks {args.evidence_masks}: with --data folder:PATH it is a folder of masks laid "
                         "out as the images (EVIDENCE/<class>/<stem>.png, or EVIDENCE/train/…), and this is none")
    mean, std = _floats("--mean", args.mean), _floats("--std", args.std)
    options = dict(mode=args.mode, size=args.image_size, crop=args.crop, mean=mean, std=std)
    if args.masks:  # documented as the region the model must not use unless --mask-meaning says otherwise
        options["mask_meaning"] = args.mask_meaning or MUST_NOT_USE
    train_set, test_set = folder_splits(path, args.masks, test_fraction=args.test_fraction, split_seed=args.seed,
                                        **options, num_workers=args.workers, pin_memory=True)
    train_set = random_subset(train_set, args.limit_train, args.seed)
    test_set = random_subset(test_set, args.limit_test, args.seed)
    carried = {"mask"} if any(s.mask is not None for s in train_set.samples) else set()
    if args.evidence_masks:
        evidence = folder_splits(path, args.evidence_masks, test_fraction=args.test_fraction, split_seed=args.seed,
                                 **{**options, "mask_meaning": EVIDENCE})
        train_set = EvidenceFolder(train_set, random_subset(evidence[0], args.limit_train, args.seed))
        test_set = EvidenceFolder(test_set, random_subset(evidence[1], args.limit_test, args.seed))
        carried.add("reward_mask")
    meanings = {**({"mask": options["mask_meaning"]} if "mask" in carried else {}),
                **({"reward_mask": EVIDENCE} if "reward_mask" in carried else {})}
    check_masks([p.name for p in objective.penalties], carried, f"--data {args.data}" +
                ("" if args.masks or "mask" in carried else " without --masks"),
                objective.check_masks(meanings, source=f"--data {args.data}"))
    for split, data in (("train", train_set), ("test", test_set)):
        print(f"{split}: {data.source}")
    torch.manual_seed(args.seed)
    known = {"num_classes": train_set.num_classes, "in_channels": 3 if args.mode == "RGB" else 1}
    model_kwargs = _builder_kwargs(model_name, known, model_kwargs)
    model = build_model(model_name, **model_kwargs)
    settings = {"path": str(Path(path).resolve()), "masks": str(Path(args.masks).resolve()) if args.masks else None,
                **({"evidence_masks": str(Path(args.evidence_masks).resolve())} if args.evidence_masks else {}),
                # --masks' default meaning unrecorded, as before --mask-meaning existed (such runs resume)
                **{k: v for k, v in options.items() if k != "mask_meaning" or args.mask_meaning},
                "test_fraction": args.test_fraction, "split_seed": args.seed, "classes": train_set.classes,
                "limit_train": args.limit_train, "limit_test": args.limit_test}
    info = {"dataset": "folder", "image_folder": settings, "model": model_name, "model_kwargs": model_kwargs,
            **({"model_path": module_folder(model_name)} if ":" in model_name else {}),
            "normalize": mean is not None, "train_source": train_set.source, "test_source": test_set.source,
            "command": "explainreg " + " ".join(sys.argv[1:])}
    result = train(model, objective, train_set, test_set, config=config, run_dir=out, resume=args.resume,
                   run_info=info, on_epoch_end=lambda e, r: print(_epoch_line(r), flush=True))
    print(f"test accuracy: {100 * result.final['test_accuracy']:.2f}%  (run folder: {out})")
    return 0
