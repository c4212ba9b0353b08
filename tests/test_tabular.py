"""Tabular features (methods A.16) on scikit-learn's bundled breast cancer and wine tables: the data
module, penalties with feature masks, attributions, metrics (behavioural ones included) and
contextual decomposition on an MLP."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import explainreg as er
from explainreg.attribution import attribute
from explainreg.data import load_dataset, load_tabular
from explainreg.metrics import FlipRate, MoRF, functional as MF
from explainreg.penalties import RRR
from explainreg.training import TrainConfig, train

torch.set_num_threads(1)


def _mlp(features: int, classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, classes))


@pytest.mark.parametrize("name,rows,features,classes", [("breast-cancer", 569, 30, 2), ("wine", 178, 13, 3)])
def test_tables_split_standardised_with_a_planted_feature(name, rows, features, classes):
    from sklearn import datasets

    train_set, test = load_tabular(name, "train"), load_tabular(name, "test")
    assert len(train_set) + len(test) == rows and train_set.x.shape[1] == features
    assert torch.allclose(train_set.x.mean(0), torch.zeros(features), atol=1e-5)
    assert torch.allclose(train_set.x.std(0), torch.ones(features), atol=1e-4)
    raw = torch.tensor(getattr(datasets, {"breast-cancer": "load_breast_cancer", "wine": "load_wine"}[name])().data)
    restored = train_set.x.double() * raw.std(0) / train_set.x.double().std(0)   # a column's scale is the raw one
    assert set(train_set.y.unique().tolist()) == set(range(classes))
    assert torch.equal(load_dataset(name, "test").x, test.x) and restored.shape[1] == features
    planted = load_tabular(name, "test", shortcut=True)
    assert torch.equal(planted.x[:, :-1], test.x)
    assert torch.allclose(planted.x[:, -1], 2 * test.y.float() / (classes - 1) - 1)
    assert planted.extras["mask"].sum(1).eq(1).all() and planted.mask_meanings == {"mask": "must_not_use"}
    with pytest.raises(ValueError, match="name"):
        load_tabular("iris")


@pytest.fixture(scope="module")
def shortcut_models():
    """Two MLPs on breast cancer with the planted label feature: plain, and RRR on the feature mask."""
    data = load_tabular("breast-cancer", "train", shortcut=True, shortcut_noise=0.1)
    config = TrainConfig(epochs=8, batch_size=32, seed=0, progress=False)
    models = {}
    for label, objective in (("plain", er.Objective(None, seed=0)), ("rrr", er.Objective({RRR(): 10.0}, seed=0))):
        model = _mlp(data.x.shape[1], 2)
        train(model, objective, data, config=config)
        models[label] = model.eval()
    return models, load_tabular("breast-cancer", "test", shortcut=True, shortcut_noise=0.1)


def test_feature_mask_penalty_removes_the_shortcut(shortcut_models):
    models, test = shortcut_models
    mask = test.extras["mask"]
    flips = {k: FlipRate("other_class")(m, test.x, test.y, mask=mask[0]).value for k, m in models.items()}
    reliance = {k: float(attribute(m, test.x, test.y, "saliency")[:, -1].mean()
                         / attribute(m, test.x, test.y, "saliency").mean()) for k, m in models.items()}
    # seen: flips 0.049 → 0.007, the planted column's saliency over the mean 2.4 → 0.7
    assert flips["plain"] > 0.03 and flips["rrr"] < flips["plain"] / 3
    assert reliance["plain"] > 1.5 and reliance["rrr"] < reliance["plain"] / 2
    with torch.no_grad():
        accuracy = (models["rrr"](test.x).argmax(1) == test.y).float().mean()
    assert accuracy > 0.85                                  # the real features carry the task


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "smoothgrad", "gradient_shap",
                                    "input_x_gradient", "deeplift", "random"])
def test_attributions_on_features(shortcut_models, method):
    models, test = shortcut_models
    model, x, y = models["plain"], test.x[:40], test.y[:40]
    a = attribute(model, x, y, method, seed=1)
    assert a.shape == x.shape and torch.isfinite(a).all()
    if method in ("smoothgrad", "gradient_shap", "random"):                 # keyed: batching does not matter
        torch.testing.assert_close(a[20:], attribute(model, x[20:], y[20:], method, seed=1, index=torch.arange(20, 40)))
    if method == "integrated_gradients":                                    # completeness from the zero row
        with torch.no_grad():
            gap = model(x).gather(1, y[:, None]).squeeze(1) - model(torch.zeros_like(x))[:, y].diagonal()
        fine = attribute(model, x, y, method, n_steps=512, integration="riemann_trapezoid")
        torch.testing.assert_close(fine.sum(1), gap, atol=5e-3, rtol=1e-3)


def test_removal_metric_and_cd_on_features(shortcut_models):
    models, test = shortcut_models
    model, x, y = models["plain"], test.x, test.y
    a = attribute(model, x, y, "saliency")
    metric = MoRF()
    metric(model, x[:50], y[:50], a[:50])
    metric(model, x[50:], y[50:], a[50:])
    assert metric.compute().value == pytest.approx(float(MF.morf(model, x, y, a)), rel=1e-6)
    rel, irrel = er.decompose(model, x, test.extras["mask"][0])
    with torch.no_grad():
        torch.testing.assert_close(rel + irrel, model(x), atol=1e-4, rtol=1e-4)
    assert float(rel.abs().mean()) > 0                      # the plain model reads the planted feature
