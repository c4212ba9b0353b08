"""1-NN references on the UCR sets: exact DTW against a plain dynamic-programming loop, and explainreg's
1-NN ED / DTW reproducing the archive's published error rates (DataSummary.csv, Dau et al. 2019)."""
from __future__ import annotations

import pytest
import torch

from explainreg.data.ucr import load_ucr
from explainreg.data.ucr_reference import PUBLISHED, dtw_distances, nearest_neighbour_accuracy, pairwise_distances


def _plain_dtw(a: list[list[float]], b: list[list[float]]) -> float:
    """D(i, j) = Σ_c (a_ci − b_cj)² + min(D(i−1, j), D(i, j−1), D(i−1, j−1)), D(−1, −1) = 0."""
    inf = float("inf")
    n, m = len(a[0]), len(b[0])
    d = [[inf] * (m + 1) for _ in range(n + 1)]
    d[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = sum((a[c][i - 1] - b[c][j - 1]) ** 2 for c in range(len(a)))
            d[i][j] = cost + min(d[i - 1][j], d[i][j - 1], d[i - 1][j - 1])
    return d[n][m]


def test_dtw_matches_a_plain_loop_with_lengths():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 2, 9, generator=g), torch.randn(4, 2, 7, generator=g)
    la, lb = torch.tensor([9, 5, 1]), torch.tensor([7, 3, 6, 2])
    d = dtw_distances(a, b, la, lb, chunk=2)
    for i in range(3):
        for j in range(4):
            want = _plain_dtw(a[i, :, :la[i]].tolist(), b[j, :, :lb[j]].tolist())
            assert abs(float(d[i, j]) - want) < 1e-9
    # DTW_I is the sum of the per-channel DTWs; on equal lengths DTW ≤ ED (the diagonal is one path)
    di = pairwise_distances(b, a, "dtw_i", lb, la)
    for i in range(3):
        want = sum(_plain_dtw(a[i, c:c + 1, :la[i]].tolist(), b[0, c:c + 1, :lb[0]].tolist()) for c in range(2))
        assert abs(float(di[i, 0]) - want) < 1e-9
    x = torch.randn(5, 3, 12, generator=g)
    assert bool((pairwise_distances(x, x[:2], "dtw_d") <= pairwise_distances(x, x[:2], "ed") + 1e-9).all())
    with pytest.raises(ValueError, match="metric must be one of ed, dtw_d, dtw_i"):
        pairwise_distances(x, x, "dtw")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_one_nn_euclidean_reproduces_the_archive(name):
    acc = nearest_neighbour_accuracy(load_ucr(name, "train"), load_ucr(name, "test"), "ed")
    assert acc == pytest.approx(1 - PUBLISHED[name]["ed"], abs=6e-5)       # the archive rounds to 4 digits


def test_one_nn_dtw_reproduces_the_archive_italy_power_demand():
    acc = nearest_neighbour_accuracy(load_ucr("ItalyPowerDemand", "train"), load_ucr("ItalyPowerDemand", "test"),
                                     "dtw_d")
    assert acc == pytest.approx(1 - PUBLISHED["ItalyPowerDemand"]["dtw_full"], abs=6e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["GunPoint", "ArrowHead"])
def test_one_nn_dtw_reproduces_the_archive_slow(name):
    acc = nearest_neighbour_accuracy(load_ucr(name, "train"), load_ucr(name, "test"), "dtw_d")
    assert acc == pytest.approx(1 - PUBLISHED[name]["dtw_full"], abs=6e-5)


def test_variable_length_needs_one_length_for_ed():
    train, test = load_ucr("JapaneseVowels", "train"), load_ucr("JapaneseVowels", "test")
    with pytest.raises(ValueError, match="ed needs one length for both splits"):
        nearest_neighbour_accuracy(train, test, "ed")
