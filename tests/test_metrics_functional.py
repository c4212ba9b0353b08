"""The functional metrics, the registry and the metric base on synthetic tensors: runs without the
data sets (``pytest -m "not data"``). Values are checked against plainly written loops, NumPy
percentiles and hand-counted cases; the real-data suite (test_metrics*.py) stays the default."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explainreg import metrics as M
from explainreg._validation import InvalidParameterError, Interval, Options, check_parameter
from explainreg.metrics import functional as MF

pytestmark = pytest.mark.synthetic


@pytest.fixture(scope="module")
def toy():
    """A small random conv net on random 1×8×8 inputs; attributions without ties."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(192, 4)).double().eval()
    x = torch.rand(5, 1, 8, 8, generator=g, dtype=torch.float64)
    a = torch.rand(5, 1, 8, 8, generator=g, dtype=torch.float64)
    y = model(x).argmax(1)
    return model, x, y, a


def test_complexity_sparseness_effective_complexity_by_hand():
    a = torch.zeros(3, 1, 4, 4)
    a[0, 0, 1, 2] = 3.0                      # one-hot
    a[1] = 1.0                               # uniform
    a[2, 0, 0, :] = torch.tensor([1e-6, -0.5, 2.0, 0.0])
    h = MF.complexity(a, reduction="none")
    assert h[0] == pytest.approx(0.0, abs=1e-12) and h[1] == pytest.approx(math.log(16))
    assert MF.sparseness(a, reduction="none")[0] == pytest.approx(15 / 16)
    counts = [sum(abs(float(v)) > 1e-5 for v in img.flatten()) for img in a]        # a loop over entries
    assert MF.effective_complexity(a, reduction="none").tolist() == counts == [1, 16, 2]
    assert float(MF.effective_complexity(a)) == pytest.approx(np.mean(counts))
    assert M.EffectiveComplexity()(None, None, None, a).value == pytest.approx(np.mean(counts))


def test_functional_morf_matches_numpy_percentile_loop(toy):
    model, x, y, a = toy
    percentiles = (90, 50, 10, 0)
    value = MF.morf(model, x, y, a, percentiles=percentiles)
    ratios = np.zeros((len(x), len(percentiles)))
    with torch.no_grad():
        for b in range(len(x)):
            p = model(x[b:b + 1]).softmax(1)[0]
            c = int(p.argmax())
            for s, q in enumerate(percentiles):
                flat = a[b].flatten().numpy()
                threshold = np.percentile(flat[flat != 0], q)
                masked = x[b].clone().flatten()
                masked[torch.from_numpy(flat > threshold)] = 0.0
                ratios[b, s] = float(model(masked.view(1, 1, 8, 8)).softmax(1)[0, c] / p[c])
    steps = 1 - np.array(percentiles) / 100.0
    order = np.argsort(steps)
    expected = np.trapezoid(1 - ratios.mean(0)[order], steps[order])
    assert float(value) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(MF.morf(model, x, y, a, percentiles=percentiles, reduction="none").numpy(), ratios,
                               rtol=1e-9)
    assert M.MoRF(percentiles=percentiles)(model, x, y, a).value == pytest.approx(float(value), rel=1e-12)


def test_pixel_flipping_one_step_is_the_blank_image(toy):
    model, x, y, a = toy
    curve = MF.pixel_flipping_curve(model, x, y, a, features_in_step=64)              # all 64 pixels at once
    with torch.no_grad():
        blank = model(torch.zeros_like(x)).softmax(1).gather(1, y[:, None])
    torch.testing.assert_close(curve, blank)
    # the value: mean per-image trapezoid AUC of a one-point curve is 0
    assert float(MF.pixel_flipping(model, x, y, a, features_in_step=64)) == 0.0


def test_gaussian_noise_clean_column_is_clean_accuracy(toy):
    model, x, y, _ = toy
    rows = MF.gaussian_noise(model, x, y, sigmas=(0.5,), reduction="none")
    assert rows.shape == (5, 2)
    with torch.no_grad():
        assert rows[:, 0].tolist() == (model(x).argmax(1) == y).double().tolist()
    assert float(MF.gaussian_noise(model, x, y, sigmas=(0.5,))) == pytest.approx(
        float(np.trapezoid(rows.mean(0).numpy(), [0.0, 0.5])))


def test_validate_args_false_skips_the_probe_forward(toy):
    model, x, y, a = toy
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        MF.morf(model, x, y, a, percentiles=(50,))
        with_probe = list(calls)
        calls.clear()
        MF.morf(model, x, y, a, percentiles=(50,), validate_args=False)
        without = list(calls)
        calls.clear()
        M.MoRF(percentiles=(50,), validate_args=False)(model, x, y, a)
        metric_without = list(calls)
    finally:
        handle.remove()
    assert with_probe.count(1) == without.count(1) + 1 and sum(with_probe) == sum(without) + 1
    assert metric_without == without


def test_registry_aliases_settings_and_duplicates():
    assert M.METRICS.resolve("Gaussian-Noise") == "gaussian" and M.METRICS.resolve("entropy") == "complexity"
    assert isinstance(M.build_metric("effective_complexity", eps=0.1), M.EffectiveComplexity)
    with pytest.raises(ValueError, match="unknown metric 'nope'; available: morf"):
        M.METRICS.resolve("nope")
    offered = {"max_batch": 64, "seed": 3, "convention": "seed", "method": "saliency", "epochs": 2}
    assert M.accepted_settings("complexity", offered) == {"convention": "seed"}
    assert M.accepted_settings("gaussian", offered) == {"max_batch": 64, "seed": 3, "convention": "seed"}
    assert M.accepted_settings("max_sensitivity", offered) == {"max_batch": 64, "seed": 3, "method": "saliency"}
    with pytest.raises(ValueError, match="'morf' is already registered"):
        M.METRICS.register("morf")(type("Other", (M.Metric,), {}))


def test_class_facts_read_only_and_variants():
    road = M.ROAD(order="lerf")
    assert type(road) is M.ROADLeRF and isinstance(road, M.ROAD)
    assert (road.name, road.higher_is_better) == ("road_lerf", True)
    assert (M.ROAD().name, M.ROAD().higher_is_better) == ("road_morf", False)
    assert not M.RegionPerturbation(order="lerf").higher_is_better and M.RegionPerturbation().higher_is_better
    with pytest.raises(AttributeError, match="higher_is_better is a fact of the class ROAD"):
        M.ROAD().higher_is_better = True


def test_settings_from_signature_and_declared_state():
    assert M.ROAD(order="lerf", tol=1e-4).settings() == {
        "percentages": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0], "order": "lerf", "noise": 0.01,
        "convention": "explainreg", "seed": 0, "tol": 1e-4}
    metric = M.Complexity()
    metric.update(None, None, None, torch.rand(3, 1, 4, 4))
    state = metric.state()
    assert {k: r for k, (_, r) in state.items()} == {"_rows": "cat", "_indices": "cat", "_n_degenerate": "sum",
                                                     "_batches": "sum"}
    assert len(state["_rows"][0]) == 1 and state["_batches"][0] == 1
    metric.reset()
    assert metric._rows == [] and metric._batches == 0 and metric._indices == []


def test_constraint_messages():
    with pytest.raises(InvalidParameterError, match=r"The 'eps' parameter of EffectiveComplexity must be a float in "
                                                    r"the range \[0.0, inf\). Got -1 instead."):
        M.EffectiveComplexity(eps=-1)
    with pytest.raises(ValueError, match=r"The 'order' parameter of f must be a str among \{'morf', 'lerf'\}. "
                                         r"Got 'up' instead."):
        check_parameter("f", "order", "up", Options(("morf", "lerf")))
    assert Interval(int, 1, None).is_satisfied_by(3) and not Interval(int, 1, None).is_satisfied_by(True)
    with pytest.raises(ValueError, match="percentiles must lie in"):          # the short checks keep their words
        M.MoRF(percentiles=(120,))


def test_functional_forms_take_the_classes_convention(toy):
    """``convention=`` as the classes take it: ROAD's Quantus percentages (1, 3, …, 99) and
    MaxSensitivity's (the same computation); a convention a metric lacks names the metric."""
    model, x, y, a = toy
    road = M.ROAD(convention="quantus")(model, x, y, a)
    assert float(MF.road(model, x, y, a, convention="quantus")) == pytest.approx(road.value, abs=1e-12)
    rows = MF.road_curve(model, x, y, a, convention="quantus")
    assert rows.shape == (5, 50) and torch.equal(rows, road.per_image)
    assert float(MF.road(model, x, y, a)) == pytest.approx(M.ROAD()(model, x, y, a).value, abs=1e-12)
    sensitivity = M.MaxSensitivity(nr_samples=4, convention="quantus")(model, x, y, a)
    got = MF.max_sensitivity(model, x, y, a, nr_samples=4, convention="quantus")
    assert float(got) == pytest.approx(sensitivity.value, abs=1e-12)
    with pytest.raises(InvalidParameterError, match="convention must be one of 'explainreg', 'quantus' for "
                                                    "max_sensitivity; got 'seed'"):
        MF.max_sensitivity(model, x, y, a, nr_samples=4, convention="seed")
    with pytest.raises(InvalidParameterError, match="for road; got 'seed'"):
        MF.road(model, x, y, a, convention="seed")


def test_unknown_settings_name_the_public_function_or_metric_and_what_it_takes(toy):
    model, x, y, a = toy
    with pytest.raises(TypeError, match=r"metrics\.functional\.road\(\) got unexpected setting\(s\) 'colour'; it "
                                        r"accepts percentages, convention, .*noise, seed"):
        MF.road(model, x, y, a, colour=1)
    with pytest.raises(TypeError, match=r"metrics\.functional\.max_sensitivity\(\) .* 'nr_sample'; .*nr_samples"):
        MF.max_sensitivity(model, x, y, a, nr_sample=3)
    with pytest.raises(TypeError, match=r"metrics\.functional\.complexity\(\) .* 'foo'; it accepts .*convention"):
        MF.complexity(a, foo=1)
    with pytest.raises(TypeError, match=r"ROAD got unexpected setting\(s\) 'compat'; it takes percentages, .*convention"):
        M.build_metric("road", compat=True)
    with pytest.raises(TypeError, match=r"MoRF got unexpected setting\(s\) 'compat'; it takes percentiles, baseline"):
        M.MoRF(compat=True)


def test_each_name_has_one_meaning():
    """``explainreg.metrics.road`` (and ``complexity``, ``roar``) is the submodule; the helpers live in their
    modules only; the tensor-returning functions are in ``functional``."""
    import types

    a = torch.rand(2, 1, 4, 4)
    for name in ("road", "complexity", "roar", "perturbation", "robustness"):
        assert isinstance(getattr(M, name), types.ModuleType), name
    for name in ("trapezoid", "solve_imputation", "morf", "morf_curve", "sparseness", "gaussian_noise"):
        assert not hasattr(M, name) or isinstance(getattr(M, name), types.ModuleType), name
    assert M.Complexity()(None, None, None, a).value == pytest.approx(float(MF.complexity(a)))
    assert "trapezoid" not in M.__all__ and "solve_imputation" not in M.__all__
    assert {"functional", "MoRF", "METRICS", "EffectiveComplexity"} <= set(M.__all__)
