"""Shared fixtures. The book's small subsets ship in data/mnist, so nothing here needs more."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mynn import paths

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def small_train() -> tuple[np.ndarray, np.ndarray]:
    """The book's 100 training records: (pixels (100, 784) uint8, labels (100,) uint8)."""
    d = np.loadtxt(paths.data_dir() / "mnist_train_100.csv", delimiter=",", dtype=np.uint8)
    return d[:, 1:].copy(), d[:, 0].copy()


@pytest.fixture(scope="session")
def small_test() -> tuple[np.ndarray, np.ndarray]:
    """The book's 10 test records: (pixels (10, 784) uint8, labels (10,) uint8)."""
    d = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)
    return d[:, 1:].copy(), d[:, 0].copy()
