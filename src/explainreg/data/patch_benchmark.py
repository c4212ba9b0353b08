"""A patch-shortcut benchmark from real images, written as an image folder in CDEP's ISIC layout
(the skin-lesion images of Rieger et al. 2020, "Interpretations are useful: penalizing explanations to
align neural networks with prior knowledge", whose benign lesions often carry coloured patches): real
Fashion-MNIST (or MNIST) images upscaled to RGB, with coloured square
patches planted on the benign class in training only, and their segmentation masks.

Layout written under ``OUT`` (the layout :mod:`explainreg.studies.isic` reads)::

    OUT/processed/no_cancer/<id>.png    class 0 ("benign"): ``patch_fraction`` of them carry a patch
    OUT/processed/cancer/<id>.png       class 1 ("malignant"): never a patch in training
    OUT/segmentation/<id>.png           the patch masks (255 = patch) of the patched benign images
    OUT/test/processed/{no_cancer,cancer}/<id>.png, OUT/test/segmentation/<id>.png
                                        test images; ``patch_fraction`` of *both* classes patched

A model that learned "patch ⇒ benign" calls the patched malignant test images benign.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .datasets import load_dataset

CLASS_FOLDERS = ("no_cancer", "cancer")
#: bright patch colours (RGB), like the coloured plasters and rulers of ISIC
PATCH_COLOURS = ((230, 40, 40), (40, 200, 60), (40, 90, 230), (240, 200, 30), (220, 60, 200))


def _plant(images: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator, size: int,
           patch: tuple[int, int]) -> torch.Tensor:
    """Paint a square patch of side in [patch[0], patch[1]] and a random colour at a random place
    on the ``chosen`` images (uint8 N×3×S×S, in place); returns the N×S×S uint8 masks (255 = patch)."""
    n = len(images)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in chosen.tolist():  # a few thousand images once, at generation time
        side = int(torch.randint(patch[0], patch[1] + 1, (1,), generator=generator))
        top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=generator))
        colour = PATCH_COLOURS[int(torch.randint(len(PATCH_COLOURS), (1,), generator=generator))]
        images[i, :, top:top + side, left:left + side] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
        masks[i, top:top + side, left:left + side] = 255
    return masks


def write_patch_benchmark(out: str | os.PathLike, *, dataset: str = "fashion-mnist", classes: tuple[int, int] = (0, 6),
                          n_train: int = 1000, n_test: int = 500, size: int = 64, patch_fraction: float = 0.5,
                          patch: tuple[int, int] = (12, 18), seed: int = 0,
                          root: str | os.PathLike | None = None) -> Path:
    """Write the benchmark (see the module doc) and return ``OUT``.

    Args:
        dataset, classes: the real source images; ``classes[0]`` becomes ``no_cancer`` (patched in
            training), ``classes[1]`` ``cancer``. Default: Fashion-MNIST T-shirt/top vs shirt.
        n_train, n_test: images per class and split (the first ones of the official splits).
        size: side of the RGB images (the 28×28 sources are upscaled bilinearly).
        patch_fraction: share of the benign training images, and of each class's test images, patched.
        patch: the patch side range in pixels.
        seed: seed of the patch placement, colour and choice.
        root: the data root of the source images (as :func:`~explainreg.data.load_dataset`; never downloaded).

    Returns:
        ``OUT`` (with ``benchmark.json`` recording the settings and counts).

    Raises:
        ValueError: ``patch_fraction`` outside (0, 1).
        DataNotFoundError: the source images are not under ``root``.

    Example::

        >>> import json, os, tempfile, torch
        >>> from explainreg.data.idx import write_idx
        >>> from explainreg.data.patch_benchmark import patch_counts, write_patch_benchmark
        >>> tmp = tempfile.TemporaryDirectory()              # a tiny stand-in for Fashion-MNIST's IDX files
        >>> os.makedirs(os.path.join(tmp.name, "fashion-mnist"))
        >>> for prefix in ("train", "t10k"):
        ...     for kind, array in (("images-idx3", torch.randint(0, 256, (8, 28, 28))),
        ...                         ("labels-idx1", torch.tensor([0, 6] * 4))):
        ...         path = os.path.join(tmp.name, "fashion-mnist", f"{prefix}-{kind}-ubyte.gz")
        ...         write_idx(path, array.to(torch.uint8))
        >>> out = write_patch_benchmark(os.path.join(tmp.name, "bench"), n_train=4, n_test=2, size=32,
        ...                             patch=(6, 8), root=tmp.name)
        >>> patch_counts(out), patch_counts(out / "test")
        ({'no_cancer': 4, 'cancer': 4, 'segmentation': 2}, {'no_cancer': 2, 'cancer': 2, 'segmentation': 2})
        >>> json.loads((out / "benchmark.json").read_text())["counts"]["train"]["cancer"]
        {'images': 4, 'patched': 0}
        >>> tmp.cleanup()
    """
    if not 0.0 < patch_fraction < 1.0:
        raise ValueError(f"patch_fraction must be in (0, 1), got {patch_fraction}")
    out = Path(out)
    generator = torch.Generator().manual_seed(seed)
    written = {}
    for split in ("train", "test"):
        data = load_dataset(dataset, split, root, download=False)
        base = out if split == "train" else out / "test"
        (base / "segmentation").mkdir(parents=True, exist_ok=True)
        counts = {}
        for label, source_class in enumerate(classes):
            index = torch.nonzero(data.y == source_class).flatten()[: (n_train if split == "train" else n_test)]
            x = F.interpolate(data.x[index], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            images = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
            patched = torch.zeros(0, dtype=torch.long)
            if split == "test" or label == 0:
                k = int(round(patch_fraction * len(images)))
                patched = torch.randperm(len(images), generator=generator)[:k].sort().values
            masks = _plant(images, patched, generator, size, patch)
            folder = base / "processed" / CLASS_FOLDERS[label]
            folder.mkdir(parents=True, exist_ok=True)
            patched_set = set(patched.tolist())
            for j, i in enumerate(index.tolist()):
                stem = f"{split}_{dataset}_{i:05d}"
                Image.fromarray(images[j].permute(1, 2, 0).numpy()).save(folder / f"{stem}.png")
                if j in patched_set:
                    Image.fromarray(masks[j].numpy()).save(base / "segmentation" / f"{stem}.png")
            counts[CLASS_FOLDERS[label]] = {"images": len(images), "patched": len(patched_set)}
        written[split] = counts
    info = {"dataset": dataset, "classes": list(classes), "size": size, "patch_fraction": patch_fraction,
            "patch": list(patch), "seed": seed, "counts": written}
    (out / "benchmark.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def patch_counts(folder: str | os.PathLike) -> dict[str, int]:
    """Images per class folder and patch masks under an ISIC-layout ``folder`` (for reports).

    Args:
        folder: holds ``processed/{no_cancer,cancer}/`` and, optionally, ``segmentation/``.

    Returns:
        ``{"no_cancer": n, "cancer": n, "segmentation": n}``.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> from explainreg.data.patch_benchmark import patch_counts
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for c in ("no_cancer", "cancer"):
        ...         Path(tmp, "processed", c).mkdir(parents=True)
        ...     Path(tmp, "processed", "cancer", "a.png").touch()
        ...     print(patch_counts(tmp))
        {'no_cancer': 0, 'cancer': 1, 'segmentation': 0}
    """
    folder = Path(folder)
    counts = {c: len(list((folder / "processed" / c).glob("*"))) for c in CLASS_FOLDERS}
    counts["segmentation"] = len(list((folder / "segmentation").glob("*"))) if (folder / "segmentation").is_dir() else 0
    return counts


__all__ = ["CLASS_FOLDERS", "patch_counts", "write_patch_benchmark"]
