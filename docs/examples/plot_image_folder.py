"""
Your own image folder, with annotation masks
============================================

:class:`~explainreg.data.ImageFolder` reads ``ROOT/<class>/<image>`` lazily and, with ``masks=``,
the annotation ``MASKS/<class>/<same stem>.png`` (non-zero = the region the model must not use).
This example writes a small folder from real Fashion-MNIST T-shirts and shirts with a coloured patch
on every training T-shirt — a shortcut — trains a small CNN unpenalised and with RRR on the patch
masks, and measures on patched test shirts how often the patch fools the model.
"""
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch import nn

import explainreg as er
from explainreg.data import ImageFolder, load_dataset
from explainreg.penalties import RRR
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
root = Path(tempfile.mkdtemp())
source = load_dataset("fashion-mnist", "train", limit=3000)


def write(split: str, patched_class: str | None, n: int, start: int) -> None:
    """Save n T-shirts (class 0) and n shirts (class 6) as RGB PNGs, a red patch on ``patched_class``."""
    for label, name in ((0, "tshirt"), (6, "shirt")):
        rows = (source.y == label).nonzero().flatten()[start:start + n]
        for i, row in enumerate(rows.tolist()):
            image = (source.x[row, 0].numpy() * 255).astype(np.uint8)
            rgb, mask = np.stack([image] * 3, -1), np.zeros((28, 28), np.uint8)
            if name == patched_class:
                rgb[1:7, 1:7] = (255, 0, 0)
                mask[1:7, 1:7] = 255
            for folder, array in ((root / split / name, rgb), (root / f"{split}-masks" / name, mask)):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / f"{i}.png")


write("train", "tshirt", 150, 0)          # the patch gives the T-shirts away during training
write("test", "shirt", 50, 150)           # at test time it sits on shirts
train_set = ImageFolder(root / "train", masks=root / "train-masks", mask_meaning="must_not_use")
test_set = ImageFolder(root / "test")
print(train_set.classes, len(train_set), "training images")

# %%
results = {}
for name, penalties in {"unpenalised": {}, "RRR": {RRR(): 1000.0}}.items():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 12 * 12, 2))
    train(model, er.Objective(penalties, seed=0), train_set,
          config=TrainConfig(epochs=4, batch_size=32, seed=0, progress=False))
    x = torch.stack([test_set[i][0] for i in range(len(test_set))])
    y = torch.tensor([test_set[i][1] for i in range(len(test_set))])
    with torch.no_grad():
        predicted = model(x).argmax(1)
    shirt = train_set.classes.index("shirt")
    results[name] = (predicted[y == shirt] == shirt).float().mean().item()
    print(f"{name:12s} patched test shirts called shirts: {results[name]:.2f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, i in zip(axes, (0, 1, len(train_set) - 2, len(train_set) - 1)):
    image, label, extras = train_set[i]
    ax.imshow(image.permute(1, 2, 0))
    ax.set_title(train_set.classes[label], fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
