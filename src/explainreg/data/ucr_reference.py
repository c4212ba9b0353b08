"""1-nearest-neighbour reference classifiers for the UCR/UEA sets and the archive's published figures.

The UCR archive's standard baselines (Dau et al. 2019, "The UCR time series archive", IEEE/CAA J.
Autom. Sinica 6(6); the archive's ``DataSummary.csv``) are 1-NN with the Euclidean distance (ED) and
with dynamic time warping (DTW, full window "w=100", or a window learned on the training set); the
UEA multivariate archive (Bagnall et al. 2018, arXiv:1811.00075) adds the two multivariate DTWs:

- ED: d(a, b)² = Σ_{c,t} (a_ct − b_ct)² (series of one length);
- DTW_D (dependent): one warping path for all channels, cost(i, j) = Σ_c (a_ci − b_cj)²;
- DTW_I (independent): Σ_c DTW(a_c, b_c), one warping path per channel;
- DTW: D(i, j) = cost(i, j) + min(D(i−1, j), D(i, j−1), D(i−1, j−1)), D(0, 0) = cost(0, 0); the
  distance is D(L_a − 1, L_b − 1) on each series' own length (no padding enters).

``PUBLISHED`` holds the archive's error rates for the univariate sets in explainreg's shared data,
with the file they were read from; :func:`nearest_neighbour_accuracy` computes explainreg's own.
"""
from __future__ import annotations

import torch

__all__ = ["PUBLISHED", "PUBLISHED_SOURCE", "METRICS", "dtw_distances", "pairwise_distances",
           "nearest_neighbour_accuracy"]

#: DataSummary.csv of the UCR archive 2018 (Dau et al. 2019): test error rates of 1-NN ED (w=0),
#: 1-NN DTW with the learned window (the window in % in brackets) and 1-NN DTW with a full window.
#: Read from the copy in github.com/Chang-George-Dong/TrojanTime, DataSummary.csv (commit 72aef95);
#: the copy in github.com/sensorlab/KAN_TS (commit 5b57adf) has the same values.
PUBLISHED: dict[str, dict[str, float]] = {
    "ArrowHead": {"ed": 0.2000, "dtw_learned": 0.2000, "dtw_learned_window": 0, "dtw_full": 0.2971},
    "GunPoint": {"ed": 0.0867, "dtw_learned": 0.0867, "dtw_learned_window": 0, "dtw_full": 0.0933},
    "ItalyPowerDemand": {"ed": 0.0447, "dtw_learned": 0.0447, "dtw_learned_window": 0, "dtw_full": 0.0496},
}
PUBLISHED_SOURCE = ("UCR archive DataSummary.csv (Dau et al. 2019), copy at "
                    "github.com/Chang-George-Dong/TrojanTime/blob/72aef950d41f7888335919522effa645ba73eddf/DataSummary.csv")

METRICS = ("ed", "dtw_d", "dtw_i")


def dtw_distances(a: torch.Tensor, b: torch.Tensor, a_lengths: torch.Tensor | None = None,
                  b_lengths: torch.Tensor | None = None, chunk: int = 8) -> torch.Tensor:
    """Exact DTW (dependent over channels) between every series of ``a`` and every series of ``b``.

    Args:
        a: N×C×T, b: M×C×S (padded at the end when lengths are given).
        a_lengths, b_lengths: each series' real length (default: all of T / S).
        chunk: series of ``a`` per step (memory ≈ chunk·M·T·S·8 bytes).

    Returns:
        N×M float64: D(L_a − 1, L_b − 1) of the recursion in the module docstring, with the
        squared Euclidean cost over channels (the accumulated squared cost, as the UCR baselines).

    Example:
        >>> d = dtw_distances(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]]))
        >>> float(d)                    # the path must end on (2, 2): cost 1 there
        1.0
    """
    a, b = a.double(), b.double()
    n, _, t = a.shape
    m, _, s = b.shape
    la = torch.full((n,), t) if a_lengths is None else torch.as_tensor(a_lengths).long()
    lb = torch.full((m,), s) if b_lengths is None else torch.as_tensor(b_lengths).long()
    out = torch.empty(n, m, dtype=torch.float64)
    for start in range(0, n, chunk):
        qa = a[start:start + chunk]
        p = qa.shape[0]
        cost = ((qa[:, None, :, :, None] - b[None, :, :, None, :]) ** 2).sum(2)        # p×M×T×S
        acc = torch.full((p, m, t + 1, s + 1), float("inf"), dtype=torch.float64)      # acc[i+1, j+1] = D(i, j)
        acc[:, :, 0, 0] = 0.0
        for d in range(t + s - 1):                                                      # anti-diagonal i + j = d
            i = torch.arange(max(0, d - s + 1), min(d, t - 1) + 1)
            j = d - i
            best = torch.minimum(torch.minimum(acc[:, :, i, j + 1], acc[:, :, i + 1, j]), acc[:, :, i, j])
            acc[:, :, i + 1, j + 1] = cost[:, :, i, j] + best
        out[start:start + p] = acc[torch.arange(p)[:, None], torch.arange(m)[None, :],
                                   la[start:start + p, None], lb[None, :]]
    return out


def pairwise_distances(train: torch.Tensor, test: torch.Tensor, metric: str = "ed",
                       train_lengths: torch.Tensor | None = None, test_lengths: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """Test × train distances for ``metric`` in :data:`METRICS` (``"ed"`` squared Euclidean on the
    stored series, padding included; ``"dtw_d"``; ``"dtw_i"`` = Σ_c DTW of channel c)."""
    if metric == "ed":
        return torch.cdist(test.double().flatten(1), train.double().flatten(1)) ** 2
    if metric == "dtw_d":
        return dtw_distances(test, train, test_lengths, train_lengths)
    if metric == "dtw_i":
        return sum(dtw_distances(test[:, c:c + 1], train[:, c:c + 1], test_lengths, train_lengths)
                   for c in range(test.shape[1]))
    raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def nearest_neighbour_accuracy(train_set, test_set, metric: str = "ed", use_lengths: bool = True) -> float:
    """Test accuracy of the 1-NN classifier (ties: the first training series) on two
    :class:`~explainreg.data.ucr.SeriesDataset` splits; DTW on each series' real length (``lengths``
    extra) when ``use_lengths``. Example: ``nearest_neighbour_accuracy(load_ucr("GunPoint", "train"),
    load_ucr("GunPoint", "test"))`` is 1 − 0.0867 (the archive's ED error rate)."""
    xtr, xte = train_set.x, test_set.x
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train and test have {xtr.shape[1]} and {xte.shape[1]} channels")
    ltr = train_set.extras.get("lengths") if use_lengths else None
    lte = test_set.extras.get("lengths") if use_lengths else None
    if metric == "ed" and xtr.shape[2] != xte.shape[2]:
        raise ValueError(f"ed needs one length for both splits; got {xtr.shape[2]} and {xte.shape[2]} "
                         "(load both with the same pad_to)")
    d = pairwise_distances(xtr, xte, metric, ltr, lte)
    nearest = d.argmin(1)
    return float((train_set.y[nearest] == test_set.y).double().mean())
