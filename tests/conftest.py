"""Shared fixtures: real data from ``../shared/data`` (or ``$EXPLAINREG_DATA``) and small trained models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("EXPLAINREG_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

from explainreg.data import load_dataset  # noqa: E402
from explainreg.models import cnn3b  # noqa: E402


@pytest.fixture(scope="session")
def mnist_test():
    return load_dataset("mnist", "test", limit=512)


@pytest.fixture(scope="session")
def mnist_train_small():
    return load_dataset("mnist", "train", limit=10_000)


@pytest.fixture(scope="session")
def trained_cnn3b(mnist_train_small):
    """CNN3b trained for one epoch on 5,000 real MNIST images with a plain Adam loop (about 98 % train acc)."""
    torch.manual_seed(0)
    model = cnn3b()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = mnist_train_small.x[:5000], mnist_train_small.y[:5000]
    for start in range(0, len(x), 50):
        loss = torch.nn.functional.cross_entropy(model(x[start:start + 50]), y[start:start + 50])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def pytest_collection_modifyitems(config, items):
    """Every test reads the real data sets unless it is marked ``synthetic``: it gets the ``data``
    marker, so that ``pytest -m "not data"`` runs the synthetic-tensor layer without the data sets."""
    for item in items:
        if item.get_closest_marker("synthetic") is None:
            item.add_marker(pytest.mark.data)
