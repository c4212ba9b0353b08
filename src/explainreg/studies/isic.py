"""CDEP's skin-lesion recipe (documentation: guide/images; the CDEP code): ``explainreg study isic --data-root DIR``.

1. A frozen feature extractor φ (a small random CNN, a ResNet-18-shaped net with random weights,
   or a user's ``module:callable``, e.g. VGG16 ``features`` + flatten) is applied once to every
   image; the features are cached on disk (``OUT/cache``).
2. For every training image with a patch segmentation m, contextual decomposition through φ
   gives the patch's features: ``(rel, irrel) = CD(φ, x, m)`` (once, cached).
3. Only the classifier head h is trained, on the cached features, with the class-weighted
   cross-entropy Σ_k w_k CE (w_k = N / (K N_k)) plus, for CDEP, λ · mean_{b∈patched, k}
   σ(rel_k − irrel_k) where (rel, irrel) = CD(h, (rel_φ, irrel_φ)).
   RRR (the gradient baseline) trains the same head on the images themselves, through the
   image-folder path: the net φ∘h with φ frozen, penalty Σ (m ⊙ ∂Σ_k log p_k/∂x)².
4. AUC and F1 (scikit-learn) of the malignant class on the test images without patches, with
   patches, and all, and the accuracy on the patched malignant test images (the shortcut's victims).

Expected layout of DIR (CDEP's ISIC preparation; the patch benchmark writes the same)::

    DIR/processed/no_cancer/<id>.jpg|png    benign lesions (label 0)
    DIR/processed/cancer/<id>.jpg|png       malignant lesions (label 1)
    DIR/segmentation/<id>.png               patch segmentation of image <id> (non-zero = patch);
                                            images without a file have no patch
    DIR/test/processed/…, DIR/test/segmentation/…   optional held-out test set; without it a
                                            seeded 20 % of DIR is held out (as CDEP's random split)
"""
from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.folder import ImageFolder, Sample, scan_folder
from ..data.patch_benchmark import CLASS_FOLDERS
from ..penalties.base import Penalty, PenaltyContext
from . import register_study
from .skeleton import settings_from_namespace, train_or_resume
from ..data import ArrayDataset
from ..data.folder import random_subset
from ..decomposition import decompose, Decomposed, run_rules
from ..metrics.functional.shortcut import flip_rate, group_accuracy
from ..models import build_model
from ..models.backbones import FeatureExtractor, resnet18
from ..objective import Objective
from ..penalties import RRR
from ..penalties.annotation import _zero, cdep_share
from ..runs import atomic_write_bytes
from ..training import iterate_batches, TrainConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ISICSettings", "METHODS", "PAPER", "FeatureCDEP", "WeightedCrossEntropy",
           "add_arguments", "build_extractor", "cached_features", "class_weights", "classification_scores",
           "evaluate_head", "isic_splits", "make_head", "run", "run_isic", "run_method", "small_cnn_extractor",
           "write_report"]

#: the seed's notebook, test images without patches (the CDEP code)
PAPER = {"vanilla": {"auc": 0.87, "f1": 0.56}, "cdep": {"auc": 0.89, "f1": 0.61}}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
METHODS = ("vanilla", "cdep", "rrr")


@dataclass
class ISICSettings:
    """The study's settings, named as the command line's options (``seeds`` and ``methods`` are
    comma-separated). ``quick`` makes a smoke test: seed 0, at most 3 head epochs, 1 RRR epoch,
    300 training images (unless ``limit`` says otherwise), 200 test images.

    Example::

        >>> s = ISICSettings(data_root="isic", quick=True)
        >>> s.seeds, s.epochs, s.rrr_epochs, s.limit, s.output
        ('0', 3, 1, 300, 'results/isic-quick')
    """

    data_root: str
    out: str | None = None
    quick: bool = False
    extractor: str = "cnn"
    methods: str = "vanilla,cdep,rrr"
    seeds: str = "0,1,2"
    epochs: int = 20
    rrr_epochs: int = 5
    lr: float = 1e-3
    cdep_lambda: float = 10.0
    rrr_lambda: float = 1000.0
    image_size: int | None = None
    workers: int = 2
    limit: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.quick:
            self.seeds, self.epochs, self.rrr_epochs = "0", min(self.epochs, 3), 1
            self.limit = self.limit or 300
        unknown = set(self.method_list) - set(METHODS)
        if unknown:
            raise ValueError(f"--methods: unknown {sorted(unknown)}; choose among vanilla, cdep, rrr")

    @property
    def output(self) -> str:
        """The results folder: ``out``, else ``results/isic[-quick]``."""
        return self.out or f"results/isic{'-quick' if self.quick else ''}"

    @property
    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ISICSettings:
        """The settings of a parsed ``explainreg study isic`` command line."""
        return settings_from_namespace(cls, args)


# ----------------------------------------------------------------------------------------------
# data


def _isic_folder(base: Path, size: int, workers: int) -> ImageFolder:
    processed = base / "processed"
    classes, samples = scan_folder(processed, classes=CLASS_FOLDERS)
    seg = base / "segmentation"
    with_masks = []
    for s in samples:
        mask = next((seg / f"{s.image.stem}{e}" for e in (".png", ".jpg") if (seg / f"{s.image.stem}{e}").is_file()),
                    None)
        with_masks.append(Sample(s.image, s.label, mask))
    return ImageFolder(processed, samples=with_masks, classes=classes, size=(size, size), mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, num_workers=workers, pin_memory=True, name=base.name)


def isic_splits(data_root: str | Path, size: int, *, split_seed: int = 0, test_fraction: float = 0.2,
                workers: int = 2) -> tuple[ImageFolder, ImageFolder]:
    """``(train, test)`` image folders of an ISIC-layout ``data_root`` (see the module doc)."""
    root = Path(data_root)
    if not (root / "processed").is_dir():
        raise FileNotFoundError(f"{root} does not look like CDEP's ISIC layout: {root / 'processed'} is missing. "
                                "Lay it out as DIR/processed/no_cancer/, DIR/processed/cancer/ and "
                                "DIR/segmentation/ (patch masks named as their image)")
    full = _isic_folder(root, size, workers)
    if (root / "test" / "processed").is_dir():
        return full, _isic_folder(root / "test", size, workers)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(split_seed))
    n_test = int(round(test_fraction * len(full)))
    return full.subset(order[n_test:].sort().values), full.subset(order[:n_test].sort().values)


# ----------------------------------------------------------------------------------------------
# extractor, cached features and CD


def small_cnn_extractor(in_channels: int = 3) -> nn.Sequential:
    """conv(16,5)–ReLU–pool–conv(32,5)–ReLU–pool–conv(64,3)–ReLU–AdaptiveAvgPool(4)–flatten: 1024 features."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())


def build_extractor(name: str, seed: int) -> nn.Module:
    """``cnn`` | ``resnet18`` (width 16, random weights) | ``module:callable`` (a user's extractor)."""
    torch.manual_seed(seed)
    if name == "cnn":
        return small_cnn_extractor().eval()
    if name == "resnet18":
        return FeatureExtractor(resnet18(num_classes=2, width=16)).eval()
    if ":" in name:
        return build_model(name).eval()
    raise ValueError(f"--extractor must be cnn, resnet18 or module:callable, got {name!r}")


@torch.no_grad()
def cached_features(extractor: nn.Module, data: ImageFolder, path: Path, *, batch_size: int = 64,
                    device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """φ(x), and CD(φ, x, m) for the images with a mask, for every image of ``data``; computed once
    (streamed through the DataLoader) and cached at ``path``."""
    if path.is_file():
        return torch.load(path, weights_only=True)
    extractor = extractor.to(device).eval()
    parts: dict[str, list[torch.Tensor]] = {"total": [], "rel": [], "irrel": [], "y": [], "patched": []}
    for x, y, extras in iterate_batches(data, batch_size, shuffle=False, device=device):
        total = extractor(x)
        m = extras["mask"].to(x.dtype)
        patched = m.flatten(1).any(1)
        rel, irrel = torch.zeros_like(total), total.clone()
        if bool(patched.any()):
            r, i = decompose(extractor, x[patched], m[patched])
            rel[patched], irrel[patched] = r, i
        for key, value in (("total", total), ("rel", rel), ("irrel", irrel), ("y", y), ("patched", patched)):
            parts[key].append(value.cpu())
    out = {k: torch.cat(v) for k, v in parts.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


# ----------------------------------------------------------------------------------------------
# the head's objective terms


class WeightedCrossEntropy(Penalty):
    """Σ_b w_{y_b} CE_b / Σ_b w_{y_b} with fixed class weights (use with ``Objective(cross_entropy=False)``)."""

    name = "weighted_ce"
    needs_input_grad = False

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32))

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        return F.cross_entropy(ctx.logits, ctx.y, weight=self.weight.to(ctx.logits.dtype))

    def settings(self) -> dict[str, Any]:
        return {"weight": self.weight.tolist()}


class FeatureCDEP(Penalty):
    """CDEP on the head only: mean_{b∈patched, k} σ(rel_bk − irrel_bk), (rel, irrel) = CD of the head's
    logits started from the cached decomposition of the features (extras ``rel``, ``irrel``, ``patched``)."""

    name = "cdep_head"
    needs_input_grad = False

    def compute(self, ctx: PenaltyContext) -> torch.Tensor:
        patched = ctx.extra("patched", self.name).bool()
        if not bool(patched.any()):
            return _zero(ctx.model, ctx.x)
        rel, irrel = ctx.extra("rel", self.name)[patched], ctx.extra("irrel", self.name)[patched]
        out = run_rules(ctx.model, Decomposed(rel, irrel, ctx.x[patched].detach()))
        return cdep_share(out.rel, out.irrel)


def make_head(num_features: int, hidden: int = 256, num_classes: int = 2) -> nn.Sequential:
    """The classifier head trained on the frozen features: Linear–ReLU–Dropout–Linear (VGG's head, shorter)."""
    return nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes))


def class_weights(y: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    """w_k = N / (K · N_k), the balanced class weights (a class without images counts as one)."""
    counts = torch.bincount(y, minlength=num_classes).float()
    return len(y) / (num_classes * counts.clamp_min(1))


# ----------------------------------------------------------------------------------------------
# metrics


def classification_scores(scores: torch.Tensor, y: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """AUC of ``scores`` (P(malignant)) and F1 / accuracy of ``scores > threshold`` (scikit-learn)."""
    from sklearn.metrics import f1_score, roc_auc_score

    s, t = scores.detach().cpu().double().numpy(), y.cpu().numpy()
    pred = (s > threshold).astype(int)
    auc = float(roc_auc_score(t, s)) if len(set(t.tolist())) == 2 else float("nan")
    return {"auc": auc, "f1": float(f1_score(t, pred, zero_division=0)), "accuracy": float((pred == t).mean()),
            "n": int(len(t))}


@torch.no_grad()
def evaluate_head(head: nn.Module, test: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """The scores per test subset: ``no_patch``, ``patched``, ``all``, and the patched malignant images."""
    head = head.cpu().eval()
    scores = F.softmax(head(test["total"]), 1)[:, 1]
    y, patched = test["y"], test["patched"].bool()
    out = {"no_patch": classification_scores(scores[~patched], y[~patched]),
           "all": classification_scores(scores, y)}
    if bool(patched.any()):
        out["patched"] = classification_scores(scores[patched], y[patched])
        victims = patched & (y == 1)
        if bool(victims.any()):
            out["patched_malignant"] = {"accuracy": float((scores[victims] > 0.5).float().mean()),
                                        "n": int(victims.sum())}
    return out


@torch.no_grad()
def patch_groups(head: nn.Module, test: dict[str, torch.Tensor]) -> dict[str, float]:
    """The behavioural shortcut evidence of the test set's patches (documentation: methods/shortcuts), in percent: the
    patch says "benign" (class 0), so it agrees with the label on patched benign and unpatched malignant
    images and disagrees on the others. ``acc_agree`` / ``acc_disagree`` and their gap ``reliance``
    (the test set patches the same share of each class, so the gap is not a class effect);
    ``worst_group`` / ``average_group`` over (class, patch present / absent)."""
    head = head.cpu().eval()
    y, patched = test["y"], test["patched"].bool()
    correct = head(test["total"]).argmax(1) == y
    agree = patched == (y == 0)
    acc = {k: 100 * float(correct[m].double().mean()) if bool(m.any()) else float("nan")
           for k, m in (("acc_agree", agree), ("acc_disagree", ~agree))}
    worst, average = (100 * v for v in group_accuracy(correct, y, patched.long(), 2).tolist())
    return {**acc, "reliance": acc["acc_agree"] - acc["acc_disagree"], "worst_group": worst, "average_group": average}


# ----------------------------------------------------------------------------------------------
# the study


def run_method(method: str, seed: int, features: dict, test: dict, train_folder: ImageFolder, extractor: nn.Module,
               args: ISICSettings, out: Path, patched: tuple | None = None) -> dict[str, Any]:
    """Train the head (or, for ``"rrr"``, the frozen extractor + head through the images) of one
    method and seed, resuming its run folder; the head's scores on the test features. ``patched``:
    the patched test images, labels and patch masks (:func:`patched_test_images`), for the share of
    predictions that change when the patch is removed (``flip_patch_removed``, %)."""
    weights = class_weights(features["y"])
    torch.manual_seed(seed)
    head = make_head(features["total"].shape[1])
    terms: dict[Penalty, float] = {WeightedCrossEntropy(weights): 1.0}
    config = TrainConfig(epochs=args.epochs, batch_size=32, lr=args.lr, optimizer="adam", seed=seed,
                         device=args.device, progress=False)
    started = time.perf_counter()
    if method == "rrr":  # through the images: φ frozen, the penalty needs ∂/∂x
        terms[RRR()] = args.rrr_lambda
        net = nn.Sequential(OrderedDict(extractor=extractor, head=head))
        config = TrainConfig(**{**config.to_dict(), "epochs": args.rrr_epochs, "freeze": ("extractor",)})
        train_or_resume(out / "runs" / f"rrr_seed{seed}", net, Objective(terms, seed=seed, cross_entropy=False),
                        train_folder, config=config)
    else:
        if method == "cdep":
            terms[FeatureCDEP()] = args.cdep_lambda
        data = ArrayDataset(features["total"], features["y"],
                            {"rel": features["rel"], "irrel": features["irrel"], "patched": features["patched"]},
                            name="features")
        train_or_resume(out / "runs" / f"{method}_seed{seed}", head, Objective(terms, seed=seed, cross_entropy=False),
                        data, config=config)
    result = {"method": method, "seed": seed, "seconds": time.perf_counter() - started, **{
        f"{subset}_{k}": v for subset, scores in evaluate_head(head, test).items() for k, v in scores.items()},
        **patch_groups(head, test)}
    if patched is not None:  # the patch removed: a mean fill of its region, through extractor and head

        net = nn.Sequential(OrderedDict(extractor=extractor, head=head)).cpu().eval()
        result["flip_patch_removed"] = 100 * float(flip_rate(net, *patched, "mean"))
    return result


def patched_test_images(test_folder: ImageFolder) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``(x, y, mask)`` of the test images that carry a patch (their segmentation non-empty), or None."""
    memory = test_folder.to_memory()
    has = memory.extras["mask"].flatten(1).any(1)
    if not bool(has.any()):
        return None
    return memory.x[has], memory.y[has], memory.extras["mask"][has]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, metavar="DIR", help="ISIC-layout folder (see the module doc)")
    parser.add_argument("--out", default=None, help="results folder (default results/isic[-quick])")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 seed, few epochs, 300 train images")
    parser.add_argument("--extractor", default="cnn", help="cnn | resnet18 | module:callable (default cnn)")
    parser.add_argument("--methods", default="vanilla,cdep,rrr")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20, help="head epochs on cached features (20)")
    parser.add_argument("--rrr-epochs", type=int, default=5, help="epochs of the RRR run through the images (5)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cdep-lambda", type=float, default=10.0, help="CDEP weight (the seed: 10)")
    parser.add_argument("--rrr-lambda", type=float, default=1000.0)
    parser.add_argument("--image-size", type=int, default=None,
                        help="resize to N×N (default: the benchmark's size, else 224 as VGG16)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use N random training images")
    parser.add_argument("--device", default="cpu")


def run_isic(settings: ISICSettings) -> list[dict[str, Any]]:
    """The study's Python API: cache the features, train every method and seed, write
    ``results.csv`` and ``summary.md`` into ``settings.output``; returns one row per run.

    Example::

        >>> rows = run_isic(ISICSettings(data_root="data/isic", quick=True))  # doctest: +SKIP
    """
    args = settings
    root = Path(args.data_root)
    bench = root / "benchmark.json"
    size = args.image_size or (json.loads(bench.read_text())["size"] if bench.is_file() else 224)
    out = Path(args.output)
    train_folder, test_folder = isic_splits(root, size, workers=args.workers)
    train_folder = random_subset(train_folder, args.limit, 0)
    if args.quick:
        test_folder = random_subset(test_folder, 200, 0)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.method_list
    print(f"isic: train {train_folder.source}; test {test_folder.source}; {size}×{size}; extractor "
          f"{args.extractor}; writing to {out}", flush=True)
    rows = []
    for seed in seeds:
        extractor = build_extractor(args.extractor, seed)
        for p in extractor.parameters():
            p.requires_grad_(False)
        tag = f"{args.extractor.replace(':', '.')}-s{seed}-{size}-n{len(train_folder)}"
        started = time.perf_counter()
        features = cached_features(extractor, train_folder, out / "cache" / f"train-{tag}.pt", device=args.device)
        test = cached_features(extractor, test_folder, out / "cache" / f"test-{tag}.pt", device=args.device)
        print(f"seed {seed}: features {tuple(features['total'].shape)} ({time.perf_counter() - started:.1f}s)",
              flush=True)
        patched = patched_test_images(test_folder) if seed == seeds[0] else patched
        for method in methods:
            row = run_method(method, seed, features, test, train_folder, extractor, args, out, patched)
            rows.append(row)
            print(f"  {method}: no-patch AUC {row['no_patch_auc']:.3f} F1 {row['no_patch_f1']:.3f}; patched malignant "
                  f"accuracy {row.get('patched_malignant_accuracy', float('nan')):.3f} ({row['seconds']:.0f}s)",
                  flush=True)
    write_report(rows, out, args)
    return rows


def run(args: argparse.Namespace) -> int:
    """``explainreg study isic``: :func:`run_isic` with the command line's settings."""
    run_isic(ISICSettings.from_args(args))
    return 0


def write_report(rows: list[dict[str, Any]], out: Path, args: ISICSettings) -> None:
    """``results.csv`` (one row per run) and ``summary.md`` (mean ± std per method) in ``out``."""
    import pandas as pd


    frame = pd.DataFrame(rows)
    atomic_write_bytes(out / "results.csv", frame.to_csv(index=False).encode())
    cols = [c for c in ("no_patch_auc", "no_patch_f1", "patched_auc", "patched_f1", "all_auc", "all_f1",
                        "patched_malignant_accuracy", "acc_agree", "acc_disagree", "reliance", "worst_group",
                        "average_group", "flip_patch_removed") if c in frame]
    lines = [f"# ISIC recipe on {args.data_root}" + (" (QUICK: a smoke test, not a result)" if args.quick else ""), "",
             f"extractor `{args.extractor}` (frozen), head epochs {args.epochs}, RRR epochs {args.rrr_epochs}, "
             f"CDEP λ {args.cdep_lambda:g}, RRR λ {args.rrr_lambda:g}; seeds {args.seeds}; mean ± std.", "",
             "| method | " + " | ".join(cols) + " | seed's no-patch AUC / F1 |",
             "|---|" + "---|" * (len(cols) + 1)]
    for method, group in frame.groupby("method", sort=False):
        cells = [f"{group[c].mean():.3f} ± {group[c].std(ddof=0):.3f}" for c in cols]
        paper = PAPER.get(method)
        seed_cell = f"{paper['auc']} / {paper['f1']}" if paper else "—"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {seed_cell} |")
    if "reliance" in frame:
        lines += ["", "Does the model still use the patch? (documentation: methods/shortcuts; %) The patch agrees with the label on "
                  "patched benign and unpatched malignant test images, disagrees on the others; reliance = accuracy "
                  "agreeing − disagreeing; worst / average accuracy over (class, patch present / absent); "
                  "flip_patch_removed: predictions on the patched test images that change when the patch is "
                  "replaced by the image's mean colour."]
    atomic_write_bytes(out / "summary.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


register_study("isic", "CDEP's skin-lesion recipe: frozen extractor, cached CD features, head with CDEP / RRR; "
                       "AUC and F1 with and without patches", add_arguments, run)
