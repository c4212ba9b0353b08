"""
Text: a decoy word in SST-2
===========================

CDEP's SST decoy inserts "text" into every positive and "video" into every negative training
sentence; the test set is clean. The model takes token ids; what is explained is its embedding
output, and masks are per token (:doc:`/guide/text`). This example trains CDEP's LSTM with GloVe
vectors on 1,500 biased training sentences, unpenalised and with RRR on the decoy tokens, and then
plants each class's decoy word into 400 clean test sentences
(:class:`~explainreg.data.shortcuts.TokenDecoyShortcut`) to measure how much the model relies on
it. Full results: :doc:`/text-results`.
"""
import matplotlib.pyplot as plt
import torch

import explainreg as er
from explainreg.data import load_dataset
from explainreg.data.shortcuts import TokenDecoyShortcut
from explainreg.data.text import glove_vectors
from explainreg.metrics import ShortcutReliance
from explainreg.models import build_model
from explainreg.penalties import RRR
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)
train_set = load_dataset("sst-decoy", "train")
train_set = train_set.take(torch.randperm(len(train_set), generator=generator)[:1500])
test_set = load_dataset("sst-decoy", "test")
test_set = test_set.take(torch.randperm(len(test_set), generator=generator)[:400])
vectors, _ = glove_vectors(train_set.vocab)
hook = TokenDecoyShortcut.for_vocab(train_set.vocab)

# %%
results = {}
for name, penalties in {"unpenalised": {}, "RRR": {RRR(): 100.0}}.items():
    torch.manual_seed(0)
    model = build_model("cdep_lstm", vocab_size=len(train_set.vocab), vectors=vectors)
    train(model, er.Objective(penalties, seed=0), train_set,
          config=TrainConfig(epochs=2, batch_size=64, seed=0, progress=False))
    ids, y, extras = test_set.batch(torch.arange(len(test_set)))
    reliance = ShortcutReliance(hook)(model, ids, y, mask=torch.zeros_like(ids))
    results[name] = reliance
    with torch.no_grad():
        accuracy = (model(ids).argmax(1) == y).float().mean().item()
    print(f"{name}: clean test accuracy {accuracy:.3f}\n  accuracy with the decoy agreeing / disagreeing: "
          f"{reliance.extra['accuracy_agreeing']:.3f} / {reliance.extra['accuracy_disagreeing']:.3f} "
          f"(reliance {reliance.value:.3f})")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(list(results), [r.value for r in results.values()], color=["tab:gray", "tab:blue"])
ax.set_ylabel("reliance on the decoy word")
fig.tight_layout()
plt.show()
