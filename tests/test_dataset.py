"""Tests of mynn.dataset: the Dataset type, its digests and head()."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tests.datakit import synthetic
from mynn.dataset import Dataset


def test_dataset_validates_and_freezes():
    labels = np.zeros(3, np.uint8)
    pixels = np.zeros((3, 784), np.uint8)
    dataset = Dataset(labels, pixels, name="zeros")
    pixels[0, 0] = 9  # a writeable input is copied: the dataset does not change
    assert dataset.pixels[0, 0] == 0 and not dataset.pixels.flags.writeable
    with pytest.raises(Exception):
        dataset.name = "other"
    with pytest.raises(TypeError):
        Dataset(labels.astype(np.int64), pixels)
    with pytest.raises(TypeError):
        Dataset(labels, pixels.astype(np.float64))
    with pytest.raises(ValueError):
        Dataset(labels, pixels[:, :783])
    with pytest.raises(ValueError):
        Dataset(labels[:2], pixels)
    with pytest.raises(ValueError):
        Dataset(np.full(3, 10, np.uint8), pixels)
    with pytest.raises(TypeError):
        Dataset(list(labels), pixels)


def test_dataset_digests_and_head():
    dataset = synthetic(7)
    assert dataset.labels_digest == hashlib.sha256(dataset.labels.tobytes()).hexdigest()
    assert dataset.pixels_digest == hashlib.sha256(dataset.pixels.tobytes()).hexdigest()
    assert dataset.digest == hashlib.sha256(
        (dataset.labels_digest + dataset.pixels_digest).encode()).hexdigest()
    head = dataset.head(3)
    assert len(head) == 3 and head.name == "synthetic[:3]"
    assert np.array_equal(head.pixels, dataset.pixels[:3]) and not head.pixels.flags.writeable
    assert len(dataset.head(100)) == 7 and len(dataset.head(0)) == 0
    with pytest.raises(ValueError):
        dataset.head(-1)
    assert "n=7" in repr(dataset)
