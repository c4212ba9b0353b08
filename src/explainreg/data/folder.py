"""Image folders with annotation masks, read lazily (torchvision's ``ImageFolder`` layout, plus masks
of the regions the model must not use, as CDEP's skin-lesion segmentations).

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

from ..inputs import check_mask_meaning
from .arrays import ArrayDataset
from .image_ops import ImageTransform, Size, resized_shape

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
MODES = ("RGB", "L")


class ImageReadError(ValueError):
    """An image or mask file could not be read (corrupt, not an image, or unreadable); a ValueError.

    Example::

        >>> import tempfile; from pathlib import Path
        >>> from explainreg.data.folder import ImageReadError, read_image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     bad = Path(tmp, "broken.png"); _ = bad.write_bytes(b"not a png")
        ...     try:
        ...         read_image(bad)
        ...     except ImageReadError as exc:
        ...         print(str(exc).startswith("cannot read image file"), "broken.png" in str(exc))
        True True
    """


@dataclass(frozen=True)
class Sample:
    """One entry of an image folder: the image file, its label and its mask file (None: no mask).

    Example::

        >>> from pathlib import Path
        >>> from explainreg.data.folder import Sample
        >>> Sample(Path("dog/dog1.png"), 1, None)
        Sample(image=PosixPath('dog/dog1.png'), label=1, mask=None)
    """

    image: Path
    label: int
    mask: Path | None


def read_image(path: str | os.PathLike, mode: str = "RGB") -> torch.Tensor:
    """The image at ``path`` as a C×H×W float tensor on [0, 1] (C = 3 for ``"RGB"``, 1 for ``"L"``).

    Grey, palette and RGBA files are converted to ``mode`` by Pillow (RGBA → RGB drops alpha).

    Args:
        path: an image file Pillow reads (PNG, JPEG, BMP, ...).
        mode: ``"RGB"`` or ``"L"``.

    Shape:
        output: (C, H, W), float32.

    Raises:
        ImageReadError: the file cannot be decoded (the message names it).

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> from explainreg.data.folder import read_image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("RGB", (5, 2), (255, 0, 51)).save(Path(tmp, "a.png"))
        ...     x, grey = read_image(Path(tmp, "a.png")), read_image(Path(tmp, "a.png"), "L")
        >>> x.shape, x[:, 0, 0], grey.shape
        (torch.Size([3, 2, 5]), tensor([1.0000, 0.0000, 0.2000]), torch.Size([1, 2, 5]))
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
    (an alpha channel is ignored).

    Args:
        path: an image file (grey, RGB, palette, ...).

    Shape:
        output: (1, H, W), bool.

    Raises:
        ImageReadError: the file cannot be decoded.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> from explainreg.data.folder import read_mask
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     m = Image.new("RGB", (3, 2)); m.putpixel((2, 1), (0, 7, 0)); m.save(Path(tmp, "m.png"))
        ...     print(read_mask(Path(tmp, "m.png")))
        tensor([[[False, False, False],
                 [False, False,  True]]])
    """
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
    """``(classes, samples)`` of an image folder ``ROOT/<class>/<image>`` (classes sorted, or as given).

    Args:
        root: ``ROOT``, one sub-folder of images per class.
        masks: ``MASKS/<class>/<image stem>.png`` (or another image extension); None: no masks.
        classes: class names in label order (a subset of the folders is allowed).

    Returns:
        The class names and one :class:`Sample` per image (images sorted by name in each class).

    Raises:
        FileNotFoundError: ``root`` or ``masks`` is not a folder.
        ValueError: no class folder, a named class without a folder, or a class folder without images.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import scan_folder
        >>> classes, samples = scan_folder(root, masks)
        >>> classes, [(s.image.name, s.label, s.mask is not None) for s in samples]
        (['cat', 'dog'], [('cat0.png', 0, False), ('cat1.png', 0, False), ('dog0.png', 1, False),
                          ('dog1.png', 1, True)])
        >>> first = scan_folder(root, classes=["dog", "cat"])[1][0]       # labels in the order given: dog = 0
        >>> first.image.name, first.label
        ('dog0.png', 0)
        >>> tmp.cleanup()
    """
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
    """``(classes, samples)`` from a CSV with columns ``image,label[,mask]`` (paths relative to its folder).

    Integer labels give the classes ``"0"``, ``"1"``, ... up to the largest; names give the sorted names.

    Args:
        path: the CSV file.
        classes: class names in label order (default: as above).

    Returns:
        The class names and one :class:`Sample` per row.

    Raises:
        FileNotFoundError: the CSV, an image or a mask does not exist (the line is named).
        ValueError: no header ``image,label`` or no row, or a label outside ``classes``.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import scan_csv
        >>> _ = Path(tmp.name, "list.csv").write_text("image,label,mask\\nimages/dog/dog1.png,dog,masks/dog/dog1.png\\n"
        ...                                           "images/cat/cat0.png,cat,\\n")
        >>> classes, samples = scan_csv(Path(tmp.name, "list.csv"))
        >>> classes, [(s.label, s.mask is not None) for s in samples]
        (['cat', 'dog'], [(1, True), (0, False)])
        >>> tmp.cleanup()
    """
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
        mask_meaning: what the masks mark (documentation: guide/concepts): ``"must_not_use"`` (a shortcut, for CDEP /
            RRR / the behavioural metrics) or ``"evidence"`` (the object, for HINT / pointing game);
            None: not stated, and consumers defined for one meaning refuse the masks until it is.

    Shape:
        items ``(C×H×W float, () long, {"mask": 1×H×W bool})``; ``targets``: (N,) long.

    Raises:
        ValueError: a bad mode or num_workers; (on reading) a mask of another size than its image.
        FileNotFoundError, ImageReadError: as :func:`scan_folder` / :func:`read_image`.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import ImageFolder
        >>> data = ImageFolder(root, masks, size=(2, 3))
        >>> x, y, extras = data[3]                                      # dog1.png, whose mask is its left half
        >>> len(data), data.classes, x.shape, int(y), extras["mask"][0].tolist()
        (4, ['cat', 'dog'], torch.Size([3, 2, 3]), 1, [[True, True, False], [True, True, False]])
        >>> data.targets, data[0][2]["mask"].any().item()              # no mask file: an empty mask
        (tensor([0, 0, 1, 1]), False)
        >>> memory = data.subset([1, 3]).to_memory()
        >>> memory.x.shape, memory.y.tolist(), data.settings()["classes"]
        (torch.Size([2, 3, 2, 3]), [0, 1], ['cat', 'dog'])
        >>> tmp.cleanup()
    """

    def __init__(self, root: str | os.PathLike, masks: str | os.PathLike | None = None, *, mode: str = "RGB",
                 size: Size | None = None, crop: Size | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, classes: Sequence[str] | None = None,
                 num_workers: int = 0, pin_memory: bool = False, name: str | None = None,
                 samples: list[Sample] | None = None, mask_meaning: str | None = None) -> None:
        self.mask_meaning = check_mask_meaning(mask_meaning)
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
        """Keyword arguments for ``torch.utils.data.DataLoader`` (read by ``iterate_batches``).

        Example::

            >>> from explainreg.data.folder import ImageFolder, Sample
            >>> ImageFolder("unused", classes=["a"], samples=[], num_workers=2).loader_options
            {'num_workers': 2, 'pin_memory': False, 'persistent_workers': False}
        """
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
                           name=self.name, samples=picked, mask_meaning=self.mask_meaning)

    def settings(self) -> dict[str, Any]:
        """What rebuilds this data set (for run configs)."""
        return {"root": str(self.root), "masks": str(self.masks) if self.masks else None, "mode": self.mode,
                **self.transform.to_dict(), "classes": self.classes, "mask_meaning": self.mask_meaning}

    def to_memory(self, batch_size: int = 256):
        """Read every image once into an :class:`~explainreg.data.ArrayDataset` (x, y, mask)."""
        from torch.utils.data import DataLoader

        xs, ys, ms = [], [], []
        for x, y, extras in DataLoader(self, batch_size=batch_size, num_workers=self.num_workers):
            xs.append(x)
            ys.append(y)
            ms.append(extras["mask"])
        return ArrayDataset(torch.cat(xs), torch.cat(ys), {"mask": torch.cat(ms)}, name=self.name,
                            source=f"{self.source}, in memory", mask_meanings={"mask": self.mask_meaning})


def image_folder(root: str | os.PathLike, masks: str | os.PathLike | None = None, **options: Any) -> ImageFolder:
    """Open ``ROOT/<class>/<image>`` (or a CSV) with optional ``MASKS/<class>/<stem>.png``; see :class:`ImageFolder`.

    Args:
        root, masks: as :class:`ImageFolder`.
        **options: the other :class:`ImageFolder` options (``mode``, ``size``, ``crop``, ``mean``, ``std``, ...).

    Returns:
        The :class:`ImageFolder`.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data import image_folder
        >>> data = image_folder(root, masks, mode="L", size=2)
        >>> data[0][0].shape, data.source.endswith("(4 images, 2 classes, 1 masks)")
        (torch.Size([1, 2, 3]), True)
        >>> tmp.cleanup()
    """
    return ImageFolder(root, masks, **options)


def check_one_size(*folders: ImageFolder) -> None:
    """Raise a ``ValueError`` when the images of ``folders`` do not all come out of their transform at
    one H×W (a batch needs one size); the sizes are read from the files' headers, not decoded.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root = Path(tmp.name, "images")
        >>> for c, size in (("cat", (6, 4)), ("dog", (5, 5))):
        ...     (root / c).mkdir(parents=True); Image.new("RGB", size).save(root / c / f"{c}.png")
        >>> check_one_size(ImageFolder(root, size=(4, 4)))        # resized to one size: fine
        >>> check_one_size(ImageFolder(root))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the images of .../images come in several sizes (H×W): .../cat.png is 4×6, .../dog.png is 5×5; ...
        >>> tmp.cleanup()
    """
    from PIL import Image


    seen: dict[tuple[int, int], Path] = {}
    for folder in folders:
        if folder.transform.crop is not None or isinstance(folder.transform.size, (tuple, list)):
            continue  # one output size whatever the input's
        for sample in folder.samples:
            try:
                with Image.open(sample.image) as img:
                    width, height = img.size
            except (OSError, SyntaxError, ValueError):
                continue  # read_image names an unreadable file when it is read
            size = (height, width) if folder.transform.size is None else \
                resized_shape(height, width, folder.transform.size)
            seen.setdefault(size, sample.image)
            if len(seen) > 1:
                (a, pa), (b, pb) = seen.items()
                resized = " after resizing the shorter side" if folder.transform.size is not None else ""
                raise ValueError(f"the images of {folder.root} come in several sizes{resized} (H×W): {pa} is "
                                 f"{a[0]}×{a[1]}, {pb} is {b[0]}×{b[1]}; a batch needs one size. Give one: on the "
                                 "command line --image-size N --crop N (resize the shorter side, then crop N×N), "
                                 "in Python size=(H, W) or crop=N")


def folder_splits(path: str | os.PathLike, masks: str | os.PathLike | None = None, *, test_fraction: float = 0.2,
                  split_seed: int = 0, **options: Any) -> tuple[ImageFolder, ImageFolder]:
    """``(train, test)`` image folders from ``PATH``.

    ``PATH/train/<class>/…`` and ``PATH/test/<class>/…`` (masks ``MASKS/train/…``, ``MASKS/test/…``)
    are used as they are; otherwise ``PATH/<class>/…`` is split at random (``split_seed``) with
    ``test_fraction`` of the images held out for testing. ``options`` as :class:`ImageFolder`.

    Args:
        path: ``PATH`` (with or without ``train/`` and ``test/``).
        masks: the mask folder, laid out as ``PATH``.
        test_fraction: in (0, 1); the share held out when ``PATH`` is not split already (at least one image).
        split_seed: seed of the random split.
        **options: as :class:`ImageFolder`.

    Returns:
        ``(train, test)``; the test folder uses the training folder's classes.

    Raises:
        ValueError: ``test_fraction`` outside (0, 1) where a random split is needed; images that come out
            of the transform in several sizes (:func:`check_one_size`).

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import folder_splits
        >>> train, test = folder_splits(root, masks, test_fraction=0.25, split_seed=0)
        >>> len(train), len(test), sorted(s.image.name for s in train.samples + test.samples)
        (3, 1, ['cat0.png', 'cat1.png', 'dog0.png', 'dog1.png'])
        >>> tmp.cleanup()
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
        check_one_size(train, test)
        return train, test
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction} ({path} has no train/ and test/ "
                         "sub-folders, so a random part is held out for testing)")
    full = ImageFolder(path, mask_root, **options)
    check_one_size(full)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(split_seed))
    n_test = max(1, int(round(test_fraction * len(full))))
    return full.subset(order[n_test:].sort().values), full.subset(order[:n_test].sort().values)


def random_subset(data: ImageFolder, n: int | None, seed: int = 0) -> ImageFolder:
    """``n`` images of ``data`` drawn at random (``seed``), kept in folder order; ``None``: all.

    Args:
        data: the folder.
        n: how many images (``n ≥ len(data)`` or None: ``data`` itself).
        seed: seed of the draw.

    Returns:
        An :class:`ImageFolder` of ``n`` images.

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import ImageFolder, random_subset
        >>> data = ImageFolder(root)
        >>> part = random_subset(data, 2, seed=0)
        >>> len(part), part.samples == sorted(part.samples, key=data.samples.index), random_subset(data, None) is data
        (2, True, True)
        >>> tmp.cleanup()
    """
    if n is None or n >= len(data):
        return data
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return data.subset(order.sort().values)


def folder_from_settings(settings: dict[str, Any], split: str) -> ImageFolder:
    """Rebuild the ``split`` (``"train"``/``"test"``) folder recorded by ``explainreg train --data folder:…``.

    Args:
        settings: the recorded data settings: ``path``, ``masks``, ``test_fraction``, ``split_seed``,
            optionally ``mode``, ``size``, ``crop``, ``mean``, ``std`` and ``limit_train`` / ``limit_test``.
        split: ``"train"`` or ``"test"``.

    Returns:
        The :class:`ImageFolder` of that split (the same images as when it was recorded).

    Example::

        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory(); root, masks = Path(tmp.name, "images"), Path(tmp.name, "masks")
        >>> for c, red in (("cat", 0), ("dog", 255)):              # 2 classes × 2 images of 6×4 pixels
        ...     (root / c).mkdir(parents=True); (masks / c).mkdir(parents=True)
        ...     for i in range(2):
        ...         Image.new("RGB", (6, 4), (red, 0, 0)).save(root / c / f"{c}{i}.png")
        >>> m = Image.new("L", (6, 4)); m.paste(255, (0, 0, 3, 4)); m.save(masks / "dog" / "dog1.png")  # left half
        >>> from explainreg.data.folder import folder_from_settings
        >>> settings = {"path": str(root), "masks": str(masks), "test_fraction": 0.5, "split_seed": 3,
        ...             "size": [2, 3], "limit_train": 1}
        >>> train, test = folder_from_settings(settings, "train"), folder_from_settings(settings, "test")
        >>> len(train), len(test), test[0][0].shape
        (1, 2, torch.Size([3, 2, 3]))
        >>> tmp.cleanup()
    """
    options = {k: settings[k] for k in ("mode", "size", "crop", "mean", "std", "mask_meaning")
               if settings.get(k) is not None}
    for key in ("size", "crop"):
        if isinstance(options.get(key), list):
            options[key] = tuple(options[key])
    train, test = folder_splits(settings["path"], settings.get("masks"), test_fraction=settings["test_fraction"],
                                split_seed=settings["split_seed"], **options)
    data = train if split == "train" else test
    limit = settings.get(f"limit_{split}")
    return random_subset(data, limit, settings.get("split_seed", 0))


__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "ImageReadError", "MODES", "Sample", "check_one_size",
           "folder_from_settings", "folder_splits", "image_folder", "random_subset", "read_image", "read_mask",
           "scan_csv",
           "scan_folder"]
