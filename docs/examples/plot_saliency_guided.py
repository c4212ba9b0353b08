"""
Saliency Guided Training
========================

Saliency Guided Training (Ismail et al. 2021) masks the features with the lowest saliency and asks
the prediction on the masked copy to match the original. The paper's evaluation masks the features
with the *highest* saliency and records the accuracy: the faster it falls, the better the saliency
finds what the model needs. This example trains a regular and a guided model on 1,000 real MNIST
digits and plots their masked-accuracy curves on 200 test digits. Full results: :doc:`/saliency_guided`.
"""
import matplotlib.pyplot as plt
import torch

import explainreg as er
from explainreg.data import load_dataset
from explainreg.metrics import MaskedAccuracy
from explainreg.penalties import SaliencyGuided
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
train_set = load_dataset("mnist", "train", limit=1000)
test_set = load_dataset("mnist", "test", limit=200)

# %%
curves = {}
for name, penalties in {"regular": {}, "guided": {SaliencyGuided(fraction=0.5, by="signed"): 1.0}}.items():
    torch.manual_seed(0)
    model = er.models.build_model("sgt_mnist_cnn")
    train(model, er.Objective(penalties, seed=0), train_set,
          config=TrainConfig(epochs=2, batch_size=64, seed=0, progress=False))
    maps = er.attribute(model, test_set.x, test_set.y, "saliency")
    curves[name] = MaskedAccuracy()(model, test_set.x, test_set.y, maps)
    print(f"{name:8s} area under the masked-accuracy curve {curves[name].value:.3f} (lower is better)")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for name, result in curves.items():
    ax.plot(result.steps, result.curve, marker="o", label=name)
ax.set_xlabel("% of pixels masked (most salient first)")
ax.set_ylabel("test accuracy")
ax.legend()
fig.tight_layout()
plt.show()
