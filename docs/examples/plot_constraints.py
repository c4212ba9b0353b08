"""
The six explanation constraints in miniature
=============================================

The xAI-constrained-losses study trains one CNN3b per penalty beside an unpenalised baseline and
scores each with six tests. This miniature trains each model for two epochs on 1,000 real MNIST
digits, compares the MoRF AUC of their saliency maps on 200 test digits and shows the maps. The full
study is ``explainreg study constraints --dataset mnist`` (:doc:`/constraints`).
"""
import matplotlib.pyplot as plt
import torch

import explainreg as er
from explainreg.data import load_dataset
from explainreg.metrics import functional as MF
from explainreg.penalties import Consistency, Fidelity, GradientL1, Locality, Smoothness, Symmetry
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
train_set = load_dataset("mnist", "train", limit=1000)
test_set = load_dataset("mnist", "test", limit=200)
penalties = {"baseline": None, "gradient_l1": GradientL1(), "smoothness": Smoothness(), "locality": Locality(),
             "fidelity": Fidelity(), "consistency": Consistency(), "symmetry": Symmetry()}

# %%
# One model per penalty, each at weight 0.1 (the study's default), the same seed for all.
models, rows = {}, []
for name, penalty in penalties.items():
    torch.manual_seed(0)
    model = er.models.cnn3b()
    objective = er.Objective({penalty: 0.1} if penalty is not None else {}, seed=0)
    result = train(model, objective, train_set, test_set,
                   config=TrainConfig(epochs=2, batch_size=30, seed=0, progress=False))
    maps = er.attribute(model, test_set.x, test_set.y, "saliency")
    morf = MF.morf(model, test_set.x, test_set.y, maps).item()
    models[name] = (model, maps)
    rows.append((name, result.history[-1]["test_accuracy"], morf))
    print(f"{name:12s} test accuracy {rows[-1][1]:.3f}   MoRF AUC {morf:.3f}")

# %%
# The saliency maps of the first test digit: locality pulls the map onto the digit's strokes.
fig, axes = plt.subplots(1, len(models) + 1, figsize=(2 * (len(models) + 1), 2.3))
axes[0].imshow(test_set.x[0, 0], cmap="gray")
axes[0].set_title("digit")
for ax, (name, (_, maps)) in zip(axes[1:], models.items()):
    ax.imshow(maps[0, 0], cmap="inferno")
    ax.set_title(name, fontsize=8)
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
