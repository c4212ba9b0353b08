"""The benchmark's process types (Ismail et al. 2020, TimeSynth's definitions): statistics of each
process against its definition, the box shift on the mask only, determinism with a seed."""
from __future__ import annotations

import math

import pytest
import torch

from explainreg.data import saliency_benchmark
from explainreg.data.ts_processes import (PROCESSES, gaussian_process, matern32_kernel, narma, narma_recursion,
                                          process_background, process_name, pseudo_periodic)

NEW = ("gaussian_process", "pseudo_periodic", "narma")


def test_matern32_kernel_closed_form():
    t = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    k = matern32_kernel(t, t, lengthscale=1.5, variance=2.0)
    for i in range(3):
        for j in range(3):
            r = abs(float(t[i] - t[j]))
            want = 2.0 * (1 + math.sqrt(3) * r / 1.5) * math.exp(-math.sqrt(3) * r / 1.5)
            assert abs(float(k[i, j]) - want) < 1e-12


def test_gaussian_process_covariance_is_matern32():
    """20 000 draws on one grid: the empirical covariance matches k(t, t') within sampling error."""
    t = torch.linspace(0.0, 6.0, 16, dtype=torch.float64)
    x = gaussian_process(t.expand(400, 16), 50, torch.Generator().manual_seed(0))          # 400×16×50
    draws = x.permute(0, 2, 1).reshape(-1, 16)                                             # 20 000 × 16
    cov = draws.T @ draws / draws.shape[0]                                                 # zero mean known
    want = matern32_kernel(t, t)
    assert float((cov - want).abs().max()) < 0.05            # s.e. of each entry ≤ √(2/20 000) = 0.01
    assert abs(float(draws.mean())) < 0.02
    # not an exponential (OU) kernel: at lag 0.4 Matérn 3/2 gives 0.846, exp(−0.4) = 0.670
    assert abs(float(cov[0, 1]) - float(want[0, 1])) < 0.03 and float(want[0, 1]) > 0.8


def test_gaussian_process_on_irregular_times_is_valid():
    """Close irregular times make K near-singular: the draw stays finite, each sample on its own grid."""
    t = torch.tensor([[0.0, 1e-9, 0.3, 5.0], [0.0, 2.0, 2.0 + 1e-12, 4.0]], dtype=torch.float64)
    x = gaussian_process(t, 3, torch.Generator().manual_seed(1))
    assert x.shape == (2, 4, 3) and torch.isfinite(x).all()
    assert float((x[0, 0] - x[0, 1]).abs().max()) < 1e-3      # (almost) equal times, (almost) equal values


def test_pseudo_periodic_jitter_within_bounds():
    t = torch.linspace(0.0, 20.0, 50, dtype=torch.float64).expand(200, 50)
    signal, omega, amp = pseudo_periodic(t, 20, torch.Generator().manual_seed(2), return_parameters=True)
    assert signal.shape == omega.shape == amp.shape == (200, 50, 20)
    torch.testing.assert_close(signal, amp * torch.sin(omega * t[:, :, None]), rtol=0, atol=0)
    assert float((omega - 2.0).abs().max()) < 6 * 0.01       # 200 000 draws of N(2, 0.01²)
    assert abs(float(omega.mean()) - 2.0) < 1e-3 and abs(float(omega.std()) - 0.01) < 5e-4
    assert abs(float(amp.mean()) - 1.0) < 0.01 and abs(float(amp.std()) - 0.5) < 0.01
    # the mean signal is sin(2t) damped by the frequency jitter: E[sin(ωt)] = sin(2t) exp(−σ²t²/2)
    mean = signal.mean((0, 2))
    want = torch.sin(2.0 * t[0]) * torch.exp(-0.5 * (0.01 * t[0]) ** 2)
    assert float((mean - want).abs().max()) < 0.03


def _plain_narma(u: list[float], order: int, steps: int) -> list[float]:
    """y(k+1) = 0.3 y(k) + 0.05 y(k) Σ_{i=0}^{n−1} y(k−i) + 1.5 u(k−n+1) u(k) + 0.1, y = 0 before the
    start; u[j] is the input at step j − order (the first ``order`` inputs precede the series)."""
    y: dict[int, float] = {}

    def yy(k: int) -> float:
        return y.get(k, 0.0)

    def uu(k: int) -> float:
        return u[k + order]

    for m in range(steps):                       # y(m) with k = m − 1
        k = m - 1
        y[m] = (0.3 * yy(k) + 0.05 * yy(k) * sum(yy(k - i) for i in range(order))
                + 1.5 * uu(k - order + 1) * uu(k) + 0.1)
    return [y[m] for m in range(steps)]


@pytest.mark.parametrize("order", [10, 3])
def test_narma_is_the_recursion(order):
    y, u = narma(4, 50, 3, torch.Generator().manual_seed(3), order=order, return_inputs=True)
    assert y.shape == (4, 50, 3) and u.shape == (4, 50 + order, 3)
    assert float(u.min()) >= 0.0 and float(u.max()) < 0.5
    for b in range(4):
        for f in range(3):
            want = _plain_narma(u[b, :, f].tolist(), order, 50)
            assert max(abs(a - w) for a, w in zip(y[b, :, f].tolist(), want)) < 1e-12
    torch.testing.assert_close(narma_recursion(u, order), y)
    assert torch.isfinite(y).all() and float(y.min()) > 0.0


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("layout", ["SmallMiddle", "Moving_RareTime"])
def test_shift_on_the_box_only(process, layout):
    """x = the process background + s on the ground-truth box, exactly (the generator's draws replayed)."""
    d = saliency_benchmark(layout, process, n=12, seed=7)
    gen = torch.Generator().manual_seed(7)
    y = torch.randint(2, (12,), generator=gen)
    if layout.startswith("Moving"):                           # the box starts are drawn before the background
        torch.randint(50 - 6, (12,), generator=gen), torch.randint(50 - 40, (12,), generator=gen)
    background = process_background(process, 12, 50, 50, gen).transpose(1, 2)             # n×F×T
    shift = d.x.double() - background
    sign = (2 * y - 1).double()[:, None, None]
    gt = d.extras["ground_truth"]
    assert torch.equal(y, d.y)
    torch.testing.assert_close(shift, (sign * gt).expand_as(shift), atol=1e-5, rtol=0)   # float32 storage


@pytest.mark.parametrize("process", NEW)
def test_new_processes_deterministic_with_seed(process):
    a = saliency_benchmark("Moving_Middle", process, n=8, seed=5)
    b = saliency_benchmark("Moving_Middle", process, n=8, seed=5)
    c = saliency_benchmark("Moving_Middle", process, n=8, seed=6)
    assert torch.equal(a.x, b.x) and torch.equal(a.extras["ground_truth"], b.extras["ground_truth"])
    assert not torch.equal(a.x, c.x)
    assert a.name == f"Moving_Middle_{process}" and torch.isfinite(a.x).all()


def test_benchmark_spellings_and_background_variance():
    assert [process_name(p) for p in ("GaussianProcess", "PseudoPeriodic", "NARMA", "AutoRegressive", "CAR",
                                      "Harmonic")] == ["gaussian_process", "pseudo_periodic", "narma",
                                                       "autoregressive", "car", "harmonic"]
    with pytest.raises(ValueError, match="process must be one of box, harmonic, gaussian_process"):
        process_name("Gaussian")
    d = saliency_benchmark("SmallMiddle", "GaussianProcess", n=200, seed=0)
    outside = d.x[~d.extras["ground_truth"]]                  # GP variance 1 + noise 0.3²
    assert abs(float(outside.var()) - 1.09) < 0.08
