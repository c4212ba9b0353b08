"""Image folders with annotation masks, read lazily (methods.md A.12).

Layout::

    ROOT/<class>/<image>.png|.jpg|.jpeg|.bmp      classes sorted by name -> labels 0, 1, ...
    MASKS/<class>/<same stem>.png                 optional; non-zero = the region the model must not use

or a CSV file with a header ``image,label[,mask]`` (paths relative to the CSV's folder; labels
class names or integers; an empty mask cell = no mask). Images without a mask get an empty
(all-zero) one, so CDEP / RRR / ExpectedGradients leave them out of their penalty.

Items are ``(x, y, {"mask": m})``: x C×H×W float (pixels in [0, 1], or normalised), y a long
scalar, m a 1×H×W bool. The data set is an ordinary ``torch.utils.data.Dataset``: the trainer
reads it through a ``DataLoader`` with :attr:`ImageFolder.loader_options` (workers, pinned memory).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .image_ops import ImageTransform, Size

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
MODES = ("RGB", "L")


class ImageReadError(ValueError):
    """An image or mask file could not be read (corrupt, not an image, or unreadable)."""


@dataclass(frozen=True)
class Sample:
    image: Path
    label: int
    mask: Path | None


def read_image(path: str | os.PathLike, mode: str = "RGB") -> torch.Tensor:
    """The image at ``path`` as a C×H×W float tensor on [0, 1] (C = 3 for ``"RGB"``, 1 for ``"L"``).

    Grey, palette and RGBA files are converted to ``mode`` by Pillow (RGBA → RGB drops alpha).
    Raises :class:`ImageReadError` naming the file when it cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image file {path}: {exc}. Replace or remove the file.") from exc
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def read_mask(path: str | os.PathLike) -> torch.Tensor:
    """The mask at ``path`` as a 1×H×W bool tensor: True where any colour channel is non-zero
    (an alpha channel is ignored)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("1", "L", "I", "I;16", "F", "RGB"):
                img = img.convert("RGB")
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read mask file {path}: {exc}. Replace or remove the file.") from exc
    nonzero = array != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(-1)
    return torch.from_numpy(np.ascontiguousarray(nonzero))[None]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))


def _mask_for(mask_root: Path, class_name: str, image: Path) -> Path | None:
    folder = mask_root / class_name
    for ext in (".png", ".PNG", *IMAGE_EXTENSIONS):
        candidate = folder / f"{image.stem}{ext}"
        if candidate.is_file():
            return candidate
    return None


def scan_folder(root: str | os.PathLike, masks: str | os.PathLike | None = None,
                classes: Sequence[str] | None = None) -> tuple[list[str], list[Sample]]:
    """``(classes, samples)`` of an image folder ``ROOT/<class>/<image>`` (classes sorted, or as given)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist (or is not a folder); give ROOT holding "
                                "one sub-folder of images per class, ROOT/<class>/<image>.png")
    mask_root = Path(masks) if masks is not None else None
    if mask_root is not None and not mask_root.is_dir():
        raise FileNotFoundError(f"mask folder {mask_root} does not exist; give MASKS laid out as the images, "
                                "MASKS/<class>/<image stem>.png")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = found
        if not classes:
            raise ValueError(f"image folder {root} has no class sub-folders; lay it out as ROOT/<class>/<image>")
    else:
        missing = [c for c in classes if c not in found]
        if missing:
            raise ValueError(f"classes {missing} have no folder under {root} (found: {found})")
    samples: list[Sample] = []
    for label, name in enumerate(classes):
        images = _images_in(root / name)
        if not images:
            raise ValueError(f"class folder {root / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                             "add images or remove the folder")
        for image in images:
            mask = _mask_for(mask_root, name, image) if mask_root is not None else None
            samples.append(Sample(image, label, mask))
    return list(classes), samples


def scan_csv(path: str | os.PathLike, classes: Sequence[str] | None = None) -> tuple[list[str], list[Sample]]:
    """``(classes, samples)`` from a CSV with columns ``image,label[,mask]`` (paths relative to its folder)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {path} does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "image" not in rows[0] or "label" not in rows[0]:
        raise ValueError(f"{path}: the CSV needs a header with columns image,label[,mask] and at least one row")
    labels = [r["label"].strip() for r in rows]
    if classes is None:
        if all(lbl.lstrip("-").isdigit() for lbl in labels):
            classes = [str(i) for i in range(max(int(lbl) for lbl in labels) + 1)]
        else:
            classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    samples = []
    for line, (row, label) in enumerate(zip(rows, labels), start=2):
        if label not in index:
            raise ValueError(f"{path} line {line}: label {label!r} is not one of the classes {list(classes)}")
        image = path.parent / row["image"].strip()
        if not image.is_file():
            raise FileNotFoundError(f"{path} line {line}: image {image} does not exist")
        mask_cell = (row.get("mask") or "").strip()
        mask = path.parent / mask_cell if mask_cell else None
        if mask is not None and not mask.is_file():
            raise FileNotFoundError(f"{path} line {line}: mask {mask} does not exist")
        samples.append(Sample(image, index[label], mask))
    return list(classes), samples


class ImageFolder(Dataset):
    """A lazily read image data set with annotation masks (see the module doc for the layout).

    Args:
        root: ``ROOT`` folder of class sub-folders, or a ``.csv`` file listing image, label, mask.
        masks: ``MASKS`` folder with the layout of ``ROOT`` (ignored for a CSV, which names masks).
        mode: ``"RGB"`` (3 channels) or ``"L"`` (grey, 1 channel); files are converted.
        size, crop, mean, std: the :class:`~explainreg.data.image_ops.ImageTransform`.
        classes: class names in label order (default: the sorted folder names).
        num_workers, pin_memory: DataLoader settings used by the trainer (``loader_options``).

    Shape: items ``(C×H×W float, () long, {"mask": 1×H×W bool})``.
    """

    def __init__(self, root: str | os.PathLike, masks: str | os.PathLike | None = None, *, mode: str = "RGB",
                 size: Size | None = None, crop: Size | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, classes: Sequence[str] | None = None,
                 num_workers: int = 0, pin_memory: bool = False, name: str | None = None,
                 samples: list[Sample] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (RGB: 3 channels, L: grey), got {mode!r}")
        if int(num_workers) < 0:
            raise ValueError(f"num_workers must be ≥ 0, got {num_workers}")
        self.root = Path(root)
        self.masks = Path(masks) if masks is not None else None
        if samples is not None:
            if classes is None:
                raise ValueError("classes must be given with samples")
            self.classes, self.samples = list(classes), list(samples)
        elif self.root.suffix.lower() == ".csv":
            self.classes, self.samples = scan_csv(self.root, classes)
        else:
            self.classes, self.samples = scan_folder(self.root, self.masks, classes)
        self.mode = mode
        self.transform = ImageTransform(size, crop, tuple(mean) if mean is not None else None,
                                        tuple(std) if std is not None else None)
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.name = name or self.root.name
        n_masks = sum(s.mask is not None for s in self.samples)
        self.source = f"{self.root} ({len(self.samples)} images, {len(self.classes)} classes, {n_masks} masks)"

    @property
    def loader_options(self) -> dict[str, Any]:
        """Keyword arguments for ``torch.utils.data.DataLoader`` (read by ``iterate_batches``)."""
        options: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            options["persistent_workers"] = False
        return options

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def targets(self) -> torch.Tensor:
        """All labels (N,), without reading any image."""
        return torch.tensor([s.label for s in self.samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        x = read_image(sample.image, self.mode)
        if sample.mask is not None:
            m = read_mask(sample.mask)
            if m.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"mask {sample.mask} is {m.shape[-1]}×{m.shape[-2]} (W×H) but its image "
                                 f"{sample.image} is {x.shape[-1]}×{x.shape[-2]}; masks must have the size "
                                 "of their image")
        else:
            m = torch.zeros(1, *x.shape[-2:], dtype=torch.bool)
        x = self.transform.image(x)
        m = self.transform.mask(m)
        return x, torch.tensor(sample.label, dtype=torch.long), {"mask": m}

    def subset(self, indices: Sequence[int] | torch.Tensor | int) -> "ImageFolder":
        """The same folder restricted to ``indices`` (an int ``n``: the first n)."""
        if isinstance(indices, int):
            indices = range(min(indices, len(self)))
        picked = [self.samples[int(i)] for i in indices]
        t = self.transform
        return ImageFolder(self.root, self.masks, mode=self.mode, size=t.size, crop=t.crop, mean=t.mean, std=t.std,
                           classes=self.classes, num_workers=self.num_workers, pin_memory=self.pin_memory,
                           name=self.name, samples=picked)

    def settings(self) -> dict[str, Any]:
        """What rebuilds this data set (for run configs)."""
        return {"root": str(self.root), "masks": str(self.masks) if self.masks else None, "mode": self.mode,
                **self.transform.to_dict(), "classes": self.classes}

    def to_memory(self, batch_size: int = 256):
        """Read every image once into an :class:`~explainreg.data.ArrayDataset` (x, y, mask)."""
        from torch.utils.data import DataLoader

        from .datasets import ArrayDataset

        xs, ys, ms = [], [], []
        for x, y, extras in DataLoader(self, batch_size=batch_size, num_workers=self.num_workers):
            xs.append(x)
            ys.append(y)
            ms.append(extras["mask"])
        return ArrayDataset(torch.cat(xs), torch.cat(ys), {"mask": torch.cat(ms)}, name=self.name,
                            source=f"{self.source}, in memory")


def image_folder(root: str | os.PathLike, masks: str | os.PathLike | None = None, **options: Any) -> ImageFolder:
    """Open ``ROOT/<class>/<image>`` (or a CSV) with optional ``MASKS/<class>/<stem>.png``; see :class:`ImageFolder`."""
    return ImageFolder(root, masks, **options)


def folder_splits(path: str | os.PathLike, masks: str | os.PathLike | None = None, *, test_fraction: float = 0.2,
                  split_seed: int = 0, **options: Any) -> tuple[ImageFolder, ImageFolder]:
    """``(train, test)`` image folders from ``PATH``.

    ``PATH/train/<class>/…`` and ``PATH/test/<class>/…`` (masks ``MASKS/train/…``, ``MASKS/test/…``)
    are used as they are; otherwise ``PATH/<class>/…`` is split at random (``split_seed``) with
    ``test_fraction`` of the images held out for testing. ``options`` as :class:`ImageFolder`.
    """
    path = Path(path)
    mask_root = Path(masks) if masks is not None else None
    if (path / "train").is_dir() and (path / "test").is_dir():
        train_masks = test_masks = None
        if mask_root is not None:
            train_masks = mask_root / "train" if (mask_root / "train").is_dir() else mask_root
            test_masks = mask_root / "test" if (mask_root / "test").is_dir() else None
        train = ImageFolder(path / "train", train_masks, **options)
        test = ImageFolder(path / "test", test_masks, **{**options, "classes": train.classes})
        return train, test
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction} ({path} has no train/ and test/ "
                         "sub-folders, so a random part is held out for testing)")
    full = ImageFolder(path, mask_root, **options)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(split_seed))
    n_test = max(1, int(round(test_fraction * len(full))))
    return full.subset(order[n_test:].sort().values), full.subset(order[:n_test].sort().values)


def random_subset(data: ImageFolder, n: int | None, seed: int = 0) -> ImageFolder:
    """``n`` images of ``data`` drawn at random (``seed``), kept in folder order; ``None``: all."""
    if n is None or n >= len(data):
        return data
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return data.subset(order.sort().values)


def folder_from_settings(settings: dict[str, Any], split: str) -> ImageFolder:
    """Rebuild the ``split`` (``"train"``/``"test"``) folder recorded by ``explainreg train --data folder:…``."""
    options = {k: settings[k] for k in ("mode", "size", "crop", "mean", "std") if settings.get(k) is not None}
    for key in ("size", "crop"):
        if isinstance(options.get(key), list):
            options[key] = tuple(options[key])
    train, test = folder_splits(settings["path"], settings.get("masks"), test_fraction=settings["test_fraction"],
                                split_seed=settings["split_seed"], **options)
    data = train if split == "train" else test
    limit = settings.get(f"limit_{split}")
    return random_subset(data, limit, settings.get("split_seed", 0))


__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "ImageReadError", "MODES", "Sample", "folder_from_settings",
           "folder_splits", "image_folder", "random_subset", "read_image", "read_mask", "scan_csv",
           "scan_folder"]
