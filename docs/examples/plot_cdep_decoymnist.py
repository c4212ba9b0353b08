"""
CDEP on DecoyMNIST, checked by behaviour
=========================================

DecoyMNIST paints a grey 5×5 corner into every digit whose shade gives the label away during
training; the test set reverses the shades. CDEP (Rieger et al. 2020) penalises the corner's share
of every logit, computed by contextual decomposition. An explanation share is not the same as use:
this example measures both for an unpenalised and a CDEP model trained on 2,000 real training
digits — the corner's CD share of the logits (what the penalty optimises) and, asking the model,
the accuracy with each class's corner planted (:class:`~explainreg.metrics.ShortcutReliance`:
agreeing minus disagreeing) and the share of predictions that flip when the corner is taken from
a digit of another class (:class:`~explainreg.metrics.FlipRate`). On full data, over five epochs,
the unpenalised net learns the decoy and scores 64 % on the reversed test set, CDEP 97.5 %
(:doc:`/cdep`); this miniature is too short for the decoy to be learnt, and the behavioural
measures say so even where the explanation share differs.
"""
import matplotlib.pyplot as plt
import torch

import explainreg as er
from explainreg.data import load_dataset
from explainreg.data.shortcuts import DecoyShortcut
from explainreg.decomposition import decompose
from explainreg.metrics import FlipRate, ShortcutReliance
from explainreg.penalties import CDEP
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
train_set = load_dataset("decoy-mnist", "train", limit=2000)
test_set = load_dataset("decoy-mnist", "test", limit=500)
corner = test_set.extras["mask"]

# %%
# Train both models with the same seed, then measure the explanation and the behaviour.
rows = {}
for name, penalties in {"unpenalised": {}, "CDEP λ 1": {CDEP(): 1.0}}.items():
    torch.manual_seed(0)
    model = er.models.build_model("cdep_decoymnist")
    train(model, er.Objective(penalties, seed=0), train_set,
          config=TrainConfig(epochs=1, batch_size=64, seed=0, progress=False))
    model.eval()
    rel, irrel = decompose(model, test_set.x, corner)
    share = (rel.abs() / (rel.abs() + irrel.abs())).mean().item()
    reliance = ShortcutReliance(DecoyShortcut(rule="train"))(model, test_set.x, test_set.y, mask=corner)
    flips = FlipRate("other_class")(model, test_set.x, test_set.y, mask=corner).value
    with torch.no_grad():
        accuracy = (model(test_set.x).argmax(1) == test_set.y).float().mean().item()
    rows[name] = {"corner's CD share of the logits": share, "reliance": reliance.value, "flip rate": flips}
    print(f"{name}: reversed-test accuracy {accuracy:.3f}, the corner's CD share {share:.3f}\n"
          f"  accuracy with the corner agreeing / disagreeing {reliance.extra['accuracy_agreeing']:.3f} / "
          f"{reliance.extra['accuracy_disagreeing']:.3f}, flip rate {flips:.3f}")

# %%
# The test digits with their decoy corner: the shade of the corner is the one a *different* class had
# during training, so a model that uses the corner fails on them.
fig, axes = plt.subplots(1, 6, figsize=(9, 1.9))
for ax, image, label in zip(axes, test_set.x, test_set.y):
    ax.imshow(image[0], cmap="gray", vmin=-1, vmax=1)
    ax.set_title(f"label {int(label)}", fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
