"""ROAR as functions: RemOve And Retrain (Hooker, Erhan, Kindermans & Kim 2019, "A benchmark for interpretability
methods in deep neural networks"), as the seed (the IPL-UV xAI-constrained-losses code) runs it.

For each fraction f: in every train and test image, the entries above the (100·(1 − f))-th
percentile of the image's non-zero attributions (of the evaluated model, on correctly scaled
inputs, for the true label) are set to the baseline; a fresh model of the same architecture is
trained on the masked train set and its accuracy on the masked test set is the curve's point at f.
f = 0 is the evaluated model's own test accuracy. AUC by the trapezoid rule over f; lower is better.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ...attribution import attribute
from ...data import ArrayDataset
from ...modes import eval_mode, model_device
from .._core import above_percentile_masks, check_fractions, prepare
from .._stack import fill_value

ROAR_FRACTIONS = (0.2, 0.5, 0.8, 0.9)


def fresh_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A re-initialised copy of ``model`` (same architecture): every submodule with ``reset_parameters`` is reset, under
    a seeded, forked random state.

    Args:
        model: the model to copy (left unchanged).
        seed: the seed of the new initialisation.

    Shape:
        (no tensors)

    Returns:
        The new model.

    Example::

    >>> import torch; from torch import nn; from explainreg.metrics.functional.retraining import fresh_copy
    >>> m = nn.Linear(3, 2); c = fresh_copy(m, seed=1)
    >>> torch.equal(c.weight, m.weight), torch.equal(c.weight, fresh_copy(m, seed=1).weight)
    (False, True)
    """
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return clone


def remove_top(x: torch.Tensor, attributions: torch.Tensor, fraction: float, baseline: Any = 0.0) -> torch.Tensor:
    """x with its entries above the (100·(1 − fraction))-th percentile of each image's non-zero attributions set to
    ``baseline`` (the seed's ROAR/MoRF rule).

    Args:
        x: the images.
        attributions: the maps (the shape of x, or broadcastable over channels).
        fraction: the fraction f of the non-zero attributions removed.
        baseline: the fill value.

    Shape:
        x, attributions: (B, ...); output: the shape of x.

    Returns:
        The masked copy of x.

    Example::

    >>> import torch; from explainreg.metrics.functional.retraining import remove_top
    >>> remove_top(torch.ones(1, 4), torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 0.5)
    tensor([[1., 1., 0., 0.]])
    """
    masks = above_percentile_masks(attributions.expand_as(x), [100.0 * (1.0 - fraction)])[:, 0]
    return torch.where(masks, fill_value(x, baseline)[:, 0], x)


def roar_accuracies(model: nn.Module, train_set: ArrayDataset, test_set: ArrayDataset, *,
                    fractions: Sequence[float] = ROAR_FRACTIONS, method: str = "saliency",
                    train_attributions: torch.Tensor | None = None, test_attributions: torch.Tensor | None = None,
                    model_factory: Callable[[], nn.Module] | None = None, epochs: int = 6, batch_size: int = 30,
                    lr: float = 1e-3, optimizer: str = "adam", seed: int = 0, baseline: Any = 0.0,
                    progress: bool = False, attribution_options: dict[str, Any] | None = None) -> torch.Tensor:
    """ROAR's accuracy curve over ``(0, *fractions)``: the model's own test accuracy, then the test accuracy of
    a fresh model retrained on the masked train set for each fraction (see the module doc; lower is better).

    Hooker, Erhan, Kindermans & Kim (2019), "A benchmark for interpretability methods in deep neural networks".

    Args:
        model: the evaluated model (f = 0 is its own test accuracy).
        train_set, test_set: :class:`~explainreg.data.ArrayDataset` s.
        fractions: the fractions removed.
        method, attribution_options: the attribution (on the true labels) unless ``train_attributions``
            / ``test_attributions`` are given.
        model_factory: builds the fresh model (default: a re-initialised copy of ``model``).
        epochs, batch_size, lr, optimizer, seed: retraining with :func:`explainreg.training.train` (the
            seed: Adam, 6 epochs, batch 30).
        baseline, progress: the fill value; a progress bar.

    Shape:
        train_set.x, test_set.x: (N, C, H, W); output: (1 + len(fractions),), float64.

    Example:
        >>> import torch; from torch import nn; from explainreg.data import ArrayDataset
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> train = ArrayDataset(torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,)))
        >>> test = ArrayDataset(torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,)))
        >>> from explainreg.metrics.functional.retraining import roar_accuracies
        >>> roar_accuracies(model, train, test, fractions=(0.5,), epochs=1, batch_size=10).shape
        torch.Size([2])
    """
    from ...training import TrainConfig, evaluate_accuracy, train

    fr = check_fractions("fractions", fractions, 0.0, 1.0)
    opts = attribution_options or {}
    device = model_device(model)
    with eval_mode(model):
        if train_attributions is None:
            train_attributions = attribute(model, train_set.x, train_set.y, method, **opts)
        if test_attributions is None:
            test_attributions = attribute(model, test_set.x, test_set.y, method, **opts)
        xtr, _, atr = prepare(model, train_set.x, train_set.y, train_attributions)
        xte, yte, ate = prepare(model, test_set.x, test_set.y, test_attributions)
        accuracies = [evaluate_accuracy(model, ArrayDataset(xte, yte))]
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                         device=str(device), progress=progress)
    for i, f in enumerate(fr):
        masked_train = ArrayDataset(remove_top(xtr, atr, f, baseline), train_set.y.to(device), name="roar-train")
        masked_test = ArrayDataset(remove_top(xte, ate, f, baseline), yte, name="roar-test")
        fresh = model_factory() if model_factory is not None else fresh_copy(model, seed + i)
        fresh.to(device)
        train(fresh, None, masked_train, None, config=config)
        accuracies.append(evaluate_accuracy(fresh, masked_test))
    return torch.tensor(accuracies, dtype=torch.float64)


__all__ = ["ROAR_FRACTIONS", "fresh_copy", "remove_top", "roar_accuracies"]
