"""
Time series: saliency against a known ground truth
==================================================

Ismail et al.'s (2020) benchmark hides the class signal in a box of time steps × features, so the
right saliency is known. This example regenerates a small SmallMiddle benchmark, trains a TCN
regularly and with Saliency Guided Training, and scores integrated-gradients maps against the box
by AUP and AUR, each as the difference to a random ranking (:doc:`/timeseries`).
"""
import matplotlib.pyplot as plt
import torch

import explainreg as er
from explainreg.data.synthetic_ts import saliency_benchmark
from explainreg.metrics.functional.ground_truth import aup_aur
from explainreg.models import build_model
from explainreg.penalties import SaliencyGuided
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
train_set = saliency_benchmark("SmallMiddle", "box", n=400, seed=0)
test_set = saliency_benchmark("SmallMiddle", "box", n=60, seed=1)
truth = test_set.extras["ground_truth"]

# %%
maps = {}
for name, penalties in {"regular": {}, "guided": {SaliencyGuided(fraction=0.5): 1.0}}.items():
    torch.manual_seed(0)
    model = build_model("tcn", in_channels=50, num_classes=2)
    train(model, er.Objective(penalties, seed=0), train_set,
          config=TrainConfig(epochs=4, batch_size=32, seed=0, progress=False))
    maps[name] = er.attribute(model, test_set.x, test_set.y, "integrated_gradients", n_steps=16)
    scores = aup_aur(maps[name], truth)
    print(f"{name}: Diff(AUP) {scores['diff_aup']:.3f}, Diff(AUR) {scores['diff_aur']:.3f} (over a random ranking)")

# %%
# The first test sample: the box (left) and the absolute IG map of each model, features × time.
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(truth[0].squeeze(), aspect="auto", cmap="gray")
axes[0].set_title("ground truth")
for ax, (name, a) in zip(axes[1:], maps.items()):
    ax.imshow(a[0].abs().squeeze(), aspect="auto", cmap="inferno")
    ax.set_title(name)
for ax in axes:
    ax.set_xlabel("time")
axes[0].set_ylabel("feature")
fig.tight_layout()
plt.show()
