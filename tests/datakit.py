"""Helpers of the data tests (test_csvfile, test_dataset, test_arrays): the shipped 100-record
subset as lines to edit, and synthetic data sets."""
from __future__ import annotations

import numpy as np
import pytest

from mynn import paths
from mynn.dataset import Dataset

SHIPPED = paths.data_dir()
TRAIN_100 = SHIPPED / "mnist_train_100.csv"
TEST_10 = SHIPPED / "mnist_test_10.csv"
needs_shipped = pytest.mark.skipif(
    not TRAIN_100.is_file() or not TEST_10.is_file(), reason="the shipped data/mnist folder is not present"
)
needs_full = pytest.mark.skipif(
    not (SHIPPED / "mnist_train.csv.gz").is_file() or not (SHIPPED / "mnist_test.csv.gz").is_file(),
    reason="the shipped full MNIST is not present",
)


@pytest.fixture
def lines() -> list[bytes]:
    """The 100 records of mnist_train_100.csv, without line ends."""
    if not TRAIN_100.is_file():
        pytest.skip("the shipped data/mnist folder is not present")
    return TRAIN_100.read_bytes().split(b"\n")


def set_field(line: bytes, k: int, value: bytes) -> bytes:
    """``line`` with its 1-based field ``k`` replaced by ``value``."""
    fields = line.split(b",")
    fields[k - 1] = value
    return b",".join(fields)


def synthetic(n: int = 7, seed: int = 0, name: str = "synthetic") -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 10, n, dtype=np.uint8),
                   rng.integers(0, 256, (n, 784), dtype=np.uint8), name=name)
