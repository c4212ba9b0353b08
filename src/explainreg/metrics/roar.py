"""ROAR, RemOve And Retrain (Hooker, Erhan, Kindermans & Kim 2019), accumulated over test batches: the
:class:`ROAR` metric and :func:`roar_curve`, its result for one test set. The definition and the
computation (mask the top fraction of each image, retrain a fresh model, test it; AUC over the
fractions, lower is better) are :mod:`explainreg.metrics.functional.retraining`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..attribution import check_options, resolve_method
from ..data import ArrayDataset
from ._core import Metric, MetricResult, check_fractions, curve_result, prepare
from ._sync import row_index, sync_rows
from .functional.retraining import ROAR_FRACTIONS, roar_accuracies
from .registry import METRICS


def roar_curve(model: nn.Module, train_set: ArrayDataset, test_set: ArrayDataset, *,
               fractions: Sequence[float] = ROAR_FRACTIONS, method: str = "saliency",
               train_attributions: torch.Tensor | None = None, test_attributions: torch.Tensor | None = None,
               model_factory: Callable[[], nn.Module] | None = None, epochs: int = 6, batch_size: int = 30,
               lr: float = 1e-3, optimizer: str = "adam", seed: int = 0, baseline: Any = 0.0,
               progress: bool = False, attribution_options: dict[str, Any] | None = None) -> MetricResult:
    """ROAR's result for one test set: :func:`~explainreg.metrics.functional.retraining.roar_accuracies` (same
    arguments) as a :class:`~explainreg.metrics.MetricResult` with its AUC (lower is better).

        Shape:
            train_set.x, test_set.x: (N, C, H, W).

        Returns:
            A :class:`~explainreg.metrics.MetricResult` (``steps`` ``(0, *fractions)``, ``curve`` the test accuracies).

        Example::

        >>> import torch; from torch import nn; from explainreg.data import ArrayDataset
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> train = ArrayDataset(torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,)))
        >>> test = ArrayDataset(torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,)))
        >>> from explainreg.metrics.roar import roar_curve
        >>> r = roar_curve(model, train, test, fractions=(0.5,), epochs=1, batch_size=10)
        >>> r.steps.tolist(), r.higher_is_better
        ([0.0, 0.5], False)
    """
    fr = check_fractions("fractions", fractions, 0.0, 1.0)
    rows = roar_accuracies(model, train_set, test_set, fractions=fr, method=method,
                           train_attributions=train_attributions, test_attributions=test_attributions,
                           model_factory=model_factory, epochs=epochs, batch_size=batch_size, lr=lr,
                           optimizer=optimizer, seed=seed, baseline=baseline, progress=progress,
                           attribution_options=attribution_options)[None]
    result = curve_result(ROAR, rows, (0.0,) + fr, step_name="fraction_removed", curve_name="accuracy")
    result.n_images = len(test_set)
    result.per_image = None
    result.settings = {"fractions": list(fr), "method": method, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                       "optimizer": optimizer, "seed": seed, "n_train": len(train_set)}
    return result


@METRICS.register("roar")
class ROAR(Metric):
    """Accumulating ROAR: ``update`` collects test batches (with their attributions); ``compute`` attributes
        ``train_set`` with the model last seen, masks, retrains and evaluates (lower is better).

        Hooker, Erhan, Kindermans & Kim (2019), "A benchmark for interpretability methods in deep neural networks".

        Args:
            train_set: the data set to mask and retrain on.
            fractions, method, epochs, batch_size, lr, optimizer, seed, model_factory, baseline, progress:
                see :func:`roar_curve`.
            attribution_options: the method's options, checked against those it accepts.

        Shape:
            ``update(model, x, y, attributions)``: x (B, C, H, W), y (B,), attributions the shape of x (or (B, 1, H,
            W)).

        Returns:
            ``compute()`` / a call: a :class:`~explainreg.metrics.MetricResult`.

        Example::

        >>> import torch; from torch import nn; from explainreg.data import ArrayDataset
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> train = ArrayDataset(torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,)))
        >>> test = ArrayDataset(torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,)))
        >>> from explainreg.attribution import attribute; from explainreg.metrics import ROAR
        >>> metric = ROAR(train, fractions=(0.5,), epochs=1, batch_size=10)
        >>> metric(model, test.x, test.y, attribute(model, test.x, test.y)).curve.shape
        torch.Size([2])
    """

    name = "roar"
    higher_is_better = False
    unrecorded = ("train_set", "model_factory", "progress")

    def __init__(self, train_set: ArrayDataset, fractions: Sequence[float] = ROAR_FRACTIONS, method: str = "saliency",
                 epochs: int = 6, batch_size: int = 30, lr: float = 1e-3, optimizer: str = "adam", seed: int = 0,
                 model_factory: Callable[[], nn.Module] | None = None, baseline: Any = 0.0, progress: bool = False,
                 **attribution_options: Any) -> None:
        super().__init__()
        if isinstance(method, str):
            check_options(resolve_method(method), attribution_options)
        self.train_set = train_set
        self.kwargs = dict(fractions=check_fractions("fractions", fractions, 0.0, 1.0), method=method, epochs=epochs,
                           batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, model_factory=model_factory,
                           baseline=baseline, progress=progress, attribution_options=attribution_options)
        for name in ("_x", "_y", "_a"):  # the test batches, gathered across processes in compute
            self.add_state(name, [], "cat")
        self._model: nn.Module | None = None

    def update(self, model, x, y=None, attributions=None, *, index=None):
        if attributions is None:
            raise ValueError("roar needs attributions: call update(model, x, y, attributions)")
        x, y, a = prepare(model, x, y, attributions)
        self._begin_update(x, a, index)
        self._count_degenerate(a)
        self._model = model
        self._x.append(x), self._y.append(y), self._a.append(a)
        self._batches += 1
        return self

    def compute(self) -> MetricResult:
        if not self._x:
            raise RuntimeError("roar: call update(...) with at least one batch before compute()")
        # under torch.distributed: every rank's test images in data-set order (each rank retrains the same models)
        index = row_index(self._indices, sum(len(x) for x in self._x))
        x, y, a = (sync_rows(torch.cat(parts), index) for parts in (self._x, self._y, self._a))
        test = ArrayDataset(x, y, name="roar-test")
        result = roar_curve(self._model, self.train_set, test, test_attributions=a, **self.kwargs)
        self._report_degenerate(result)
        return result


__all__ = ["ROAR", "roar_curve"]
