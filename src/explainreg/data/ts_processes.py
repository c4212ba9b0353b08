"""Background processes of the Ismail et al. 2020 saliency benchmark (documentation: methods/saliency-guided), in torch.

The benchmark (``createSimulationDataProcesses.py``, defaults of ``run_benchmark.py``) draws every
feature of a sample from one TimeSynth process, sampled on one irregular time grid per sample, and
adds N(0, 0.3²) noise. Written here from the processes' definitions (TimeSynth is not a dependency):

====================  ==========================================================================
``harmonic``          sin(2π f t), f = 2 (TimeSynth ``Sinusoidal``)
``gaussian_process``  GP(0, k) with the Matérn ν = 3/2 kernel, lengthscale ℓ = 1, variance 1:
                      k(r) = (1 + √3 r/ℓ) exp(−√3 r/ℓ), r = |t − t'|; one draw per feature
                      (TimeSynth ``GaussianProcess(kernel="Matern", nu=3/2)``)
``pseudo_periodic``   a_t sin(ω_t t) with ω_t ~ N(2, 0.01²) and a_t ~ N(1, 0.5²) drawn afresh at
                      every time step (TimeSynth ``PseudoPeriodic(frequency=2, freqSD=0.01,
                      ampSD=0.5)``: no 2π in this one)
``autoregressive``    AR(1): v_t = 0.9 v_{t−1} + N(0, 0.5²), v_{−1} = 0
``car``               continuous AR: v_t = 0.9^{Δt} v_{t−1} + 0.01 √(1 − 0.9^{Δt}) ε_t, v_0 = 0.01
``narma``             NARMA of order n = 10 (Atiya & Parlos 2000, TimeSynth's documented formula):
                      y_{k+1} = 0.3 y_k + 0.05 y_k Σ_{i=0}^{n−1} y_{k−i} + 1.5 u_{k−n+1} u_k + 0.1,
                      u ~ U(0, 0.5), y = 0 before the series starts; regular steps (the grid's
                      times are not used, as in TimeSynth)
====================  ==========================================================================

Known differences from running TimeSynth itself: its ``NARMA`` sums ``y[i-n:n]`` (the zero initial
values only, so the 0.05 term vanishes), pairs u_{k−n+1} with u_{k+1}, and seeds every instance
with 42 (every feature of every sample then carries the same NARMA path); explainreg follows the
documented recursion with an independent input u per feature and sample. Its GP adds 1e-12 to the
covariance diagonal before ``multivariate_normal``; explainreg factorises K = VΛVᵀ (Λ clamped at 0),
which samples the same distribution.
"""
from __future__ import annotations

import math

import torch

__all__ = ["PROCESSES", "NARMA_COEFFICIENTS", "process_name", "irregular_times", "matern32_kernel",
           "gaussian_process", "pseudo_periodic", "narma_recursion", "narma", "autoregressive", "car",
           "process_background"]

PROCESSES = ("box", "harmonic", "gaussian_process", "pseudo_periodic", "autoregressive", "car", "narma")
NARMA_COEFFICIENTS = (0.3, 0.05, 1.5, 0.1)


def process_name(process: str) -> str:
    """The canonical name of ``process``; the benchmark's spellings (``"GaussianProcess"``,
    ``"PseudoPeriodic"``, ``"NARMA"``, ``"AutoRegressive"``, ``"CAR"``, ``"Harmonic"``) are accepted.

    Example:
        >>> process_name("GaussianProcess"), process_name("NARMA")
        ('gaussian_process', 'narma')
    """
    key = str(process).lower().replace("_", "").replace("-", "")
    for name in PROCESSES:
        if name.replace("_", "") == key:
            return name
    raise ValueError(f"process must be one of {', '.join(PROCESSES)}; got {process!r}")


def irregular_times(n: int, time_steps: int, generator: torch.Generator, stop: float = 20.0) -> torch.Tensor:
    """TimeSynth's irregular sampler: keep ``time_steps`` of linspace(0, stop, 2·time_steps) at random,
    jitter each by N(0, resolution²) with resolution = stop / (2·time_steps), sort (N×T, float64)."""
    grid = torch.linspace(0.0, stop, 2 * time_steps, dtype=torch.float64)
    keep = torch.rand(n, 2 * time_steps, generator=generator).argsort(1)[:, :time_steps].sort(1).values
    resolution = stop / (2 * time_steps)
    return (grid[keep] + resolution * torch.randn(n, time_steps, generator=generator, dtype=torch.float64)).sort(1).values


def matern32_kernel(t1: torch.Tensor, t2: torch.Tensor, lengthscale: float = 1.0, variance: float = 1.0) -> torch.Tensor:
    """Matérn ν = 3/2 covariance k(t, t') = σ² (1 + √3 r/ℓ) exp(−√3 r/ℓ), r = |t − t'|.

    Shape: t1 ...×T, t2 ...×S → ...×T×S.

    Example:
        >>> t = torch.tensor([0.0, 1.0], dtype=torch.float64)
        >>> round(float(matern32_kernel(t, t)[0, 1]), 4)          # (1 + √3) e^{−√3}
        0.4834
    """
    r = (t1[..., :, None] - t2[..., None, :]).abs() * (math.sqrt(3.0) / lengthscale)
    return variance * (1.0 + r) * torch.exp(-r)


def gaussian_process(times: torch.Tensor, features: int, generator: torch.Generator,
                     lengthscale: float = 1.0, variance: float = 1.0) -> torch.Tensor:
    """``features`` independent zero-mean GP draws per sample on its own times (Matérn 3/2).

    Args:
        times: N×T time stamps (one grid per sample). features: draws per sample.
        generator: the randomness. lengthscale, variance: the kernel's ℓ and σ².

    Returns:
        N×T×F float64, x[b, :, f] ~ N(0, K_b) with K_b = k(times[b], times[b]) (see
        :func:`matern32_kernel`); K_b = VΛVᵀ, x = V Λ^{1/2} z with z ~ N(0, I).
    """
    k = matern32_kernel(times, times, lengthscale, variance)
    evals, evecs = torch.linalg.eigh(k)
    root = evecs * evals.clamp_min(0.0).sqrt()[:, None, :]                                 # N×T×T, root rootᵀ = K
    z = torch.randn(times.shape[0], times.shape[1], features, generator=generator, dtype=torch.float64)
    return root @ z


def pseudo_periodic(times: torch.Tensor, features: int, generator: torch.Generator, frequency: float = 2.0,
                    freq_sd: float = 0.01, amplitude: float = 1.0, amp_sd: float = 0.5,
                    return_parameters: bool = False):
    """a·sin(ω·t) with ω ~ N(frequency, freq_sd²) and a ~ N(amplitude, amp_sd²) drawn per entry.

    Shape: times N×T → N×T×F float64 (and, with ``return_parameters``, the drawn ω and a, N×T×F each).
    """
    shape = (times.shape[0], times.shape[1], features)
    omega = frequency + freq_sd * torch.randn(shape, generator=generator, dtype=torch.float64)
    amp = amplitude + amp_sd * torch.randn(shape, generator=generator, dtype=torch.float64)
    signal = amp * torch.sin(omega * times[:, :, None])
    return (signal, omega, amp) if return_parameters else signal


def narma_recursion(u: torch.Tensor, order: int = 10,
                    coefficients: tuple[float, float, float, float] = NARMA_COEFFICIENTS) -> torch.Tensor:
    """The NARMA-n recursion driven by ``u`` (see the module docstring), zero initial state.

    Args:
        u: N×(order + T)×F inputs; the first ``order`` steps are the inputs before the series starts.
    Returns:
        N×T×F: y_k for the T steps, y_k = a0 y_{k−1} + a1 y_{k−1} Σ_{i=1}^{n} y_{k−i} + a2 u_{k−n} u_{k−1} + a3
        in the indexing of ``u`` (index ``order + k − 1`` of ``u`` is step k − 1).

    Example:
        >>> u = torch.full((1, 3, 1), 0.2, dtype=torch.float64)      # order 2, one step
        >>> round(float(narma_recursion(u, order=2)), 6)             # 1.5·0.2·0.2 + 0.1
        0.16
    """
    a0, a1, a2, a3 = coefficients
    n, total, f = u.shape
    steps = total - order
    y = torch.zeros(n, total, f, dtype=u.dtype)
    for k in range(order, total):                      # y[k] from y[k−order … k−1] and u[k−order], u[k−1]
        prev = y[:, k - 1]
        y[:, k] = a0 * prev + a1 * prev * y[:, k - order:k].sum(1) + a2 * u[:, k - order] * u[:, k - 1] + a3
    return y[:, order:order + steps] if steps > 0 else y[:, :0]


def narma(n: int, time_steps: int, features: int, generator: torch.Generator, order: int = 10,
          return_inputs: bool = False):
    """NARMA-``order`` series with inputs u ~ U(0, 0.5) independent per sample and feature.

    Shape: N×T×F float64 (and, with ``return_inputs``, u: N×(order + T)×F)."""
    u = 0.5 * torch.rand(n, order + time_steps, features, generator=generator, dtype=torch.float64)
    y = narma_recursion(u, order)
    return (y, u) if return_inputs else y


def autoregressive(n: int, time_steps: int, features: int, generator: torch.Generator, phi: float = 0.9,
                   sigma: float = 0.5) -> torch.Tensor:
    """AR(1): v_t = φ v_{t−1} + N(0, σ²), v_{−1} = 0 (N×T×F float64)."""
    eps = sigma * torch.randn(n, time_steps, features, generator=generator, dtype=torch.float64)
    steps, value = [], torch.zeros(n, features, dtype=torch.float64)
    for t in range(time_steps):
        value = phi * value + eps[:, t]
        steps.append(value)
    return torch.stack(steps, 1)


def car(times: torch.Tensor, features: int, generator: torch.Generator, phi: float = 0.9,
        sigma: float = 0.01) -> torch.Tensor:
    """Continuous AR on irregular ``times``: v_t = φ^{Δt} v_{t−1} + σ √(1 − φ^{Δt}) ε_t, v_0 = σ."""
    n, time_steps = times.shape
    eps = torch.randn(n, time_steps, features, generator=generator, dtype=torch.float64)
    decay = phi ** times.diff(dim=1)                                                       # N×(T−1)
    steps = [torch.full((n, features), sigma, dtype=torch.float64)]
    for t in range(1, time_steps):
        d = decay[:, t - 1, None]
        steps.append(d * steps[-1] + sigma * (1 - d).clamp_min(0).sqrt() * eps[:, t])
    return torch.stack(steps, 1)


def process_background(process: str, n: int, time_steps: int, features: int, generator: torch.Generator,
                       noise: float = 0.3) -> torch.Tensor:
    """N×T×F background series of ``process`` (see the module docstring) + N(0, noise²), float64;
    ``"box"`` is plain N(0, 1) without added noise."""
    process = process_name(process)
    if process == "box":
        return torch.randn(n, time_steps, features, generator=generator, dtype=torch.float64)
    times = irregular_times(n, time_steps, generator)          # N×T, drawn for every process (as the benchmark)
    if process == "autoregressive":
        signal = autoregressive(n, time_steps, features, generator)
    elif process == "narma":
        signal = narma(n, time_steps, features, generator)
    elif process == "harmonic":
        signal = torch.sin(2 * torch.pi * 2.0 * times)[:, :, None].expand(n, time_steps, features)
    elif process == "gaussian_process":
        signal = gaussian_process(times, features, generator)
    elif process == "pseudo_periodic":
        signal = pseudo_periodic(times, features, generator)
    else:
        signal = car(times, features, generator)
    return signal + noise * torch.randn(n, time_steps, features, generator=generator, dtype=torch.float64)
