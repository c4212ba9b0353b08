"""One ``reduction`` vocabulary: every ``reduction`` parameter of the library takes values of torch's
"mean", "sum", "none", and refuses others with an error naming the values it accepts."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch

import explainreg
from explainreg._validation import REDUCTIONS, check_reduction
from explainreg.penalties import HINT, RBR, RRRGradCAM
from explainreg.penalties import xil as X


def _library_modules():
    for info in pkgutil.walk_packages(explainreg.__path__, "explainreg."):
        if ".studies" in info.name or info.name.endswith(("hf", "lightning")):
            continue  # studies name their own settings; hf and lightning need optional packages
        yield importlib.import_module(info.name)


def test_every_reduction_default_is_of_the_vocabulary():
    seen = {}
    for module in _library_modules():
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or not callable(obj):
                continue
            try:
                parameters = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                continue
            if "reduction" in parameters and parameters["reduction"].default is not inspect.Parameter.empty:
                seen[f"{module.__name__}.{name}"] = parameters["reduction"].default
    assert len(seen) >= 10, seen                   # penalties and metrics both take one
    assert {v for v in seen.values()} <= set(REDUCTIONS), seen
    morf = [v for k, v in seen.items() if k.startswith("explainreg.metrics.functional") and k.endswith(".morf")]
    assert seen["explainreg.penalties.xil.HINT"] == "mean" and morf == ["mean"]


@pytest.mark.synthetic
def test_penalties_take_mean_or_sum_and_say_why_not_none():
    for penalty in (HINT, RBR, RRRGradCAM):
        with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum'; got 'none' \(a penalty is one"):
            penalty(reduction="none")
        with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum'; got 'batchmean'$"):
            penalty(reduction="batchmean")
    values = torch.arange(6.0).view(2, 3)          # the functional forms: "sum" is B times "mean"
    mask = torch.ones(2, 1, 1, 3)
    cam = values.view(2, 1, 1, 3)
    assert X.rrr_gradcam(cam, mask, reduction="sum") == 55.0
    assert X.rrr_gradcam(cam, mask, reduction="mean") == 27.5
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum'"):
        X.rbr(cam, cam, mask, reduction="none")


@pytest.mark.synthetic
def test_metrics_take_mean_or_none_with_the_same_spellings():
    from explainreg.metrics import functional as MF
    a = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    rows = MF.complexity(a, reduction="none")
    assert rows.shape == (2,) and torch.isclose(MF.complexity(a, reduction="mean"), rows.double().mean())
    with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'none'; got 'sum'"):
        MF.complexity(a, reduction="sum")


def test_check_reduction_refuses_a_value_outside_the_vocabulary():
    assert check_reduction("none") == "none"
    with pytest.raises(ValueError, match=r"must be one of 'mean', 'sum', 'none'; got 'elementwise_mean'"):
        check_reduction("elementwise_mean")
