"""Tests of mynn.encoding: the book's inputs and targets, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from mynn.encoding import INPUT_OFFSET, make_targets, pixel_part_table, scale_inputs


def test_scale_inputs():
    pixels = np.arange(256, dtype=np.uint8).repeat(4)[: 784].reshape(1, 784)
    pixels = np.vstack([pixels, np.full((1, 784), 255, np.uint8), np.zeros((1, 784), np.uint8)])
    scaled = scale_inputs(pixels)
    assert scaled.shape == (3, 784) and scaled.dtype == np.float64
    assert scaled.min() == 0.01 and scaled.max() == 1.0
    assert np.all((scaled >= 0.01) & (scaled <= 1.0))
    assert np.array_equal(scaled, pixels / 255.0 * 0.99 + 0.01)  # the book's expression, bit for bit
    single = scale_inputs(pixels[0])
    assert single.shape == (784,) and np.array_equal(single, scaled[0])
    scaled32 = scale_inputs(pixels, dtype="float32")
    assert scaled32.dtype == np.float32 and np.array_equal(scaled32, scaled.astype(np.float32))
    with pytest.raises(TypeError):
        scale_inputs(pixels.astype(np.int64))
    with pytest.raises(ValueError):
        scale_inputs(pixels[:, :10])
    with pytest.raises(ValueError):
        scale_inputs(pixels, dtype="float16")


def test_make_targets():
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    targets = make_targets(labels)
    assert targets.shape == (5, 10) and targets.dtype == np.float64
    assert np.array_equal(targets.argmax(axis=1), labels)
    assert np.all(targets[np.arange(5), labels] == 0.99)
    assert np.count_nonzero(targets == 0.01) == 5 * 9
    assert make_targets(labels, dtype="float32").dtype == np.float32
    assert make_targets(np.zeros(0, np.uint8)).shape == (0, 10)
    with pytest.raises(ValueError):
        make_targets(np.array([10]))
    with pytest.raises(TypeError):
        make_targets(np.array([1.0]))


def test_pixel_part_table_is_the_input_less_its_offset():
    """The sparse fast path of mynn.train adds INPUT_OFFSET back: the same values, bit for bit."""
    pixels = np.arange(256, dtype=np.uint8).repeat(4)[:784]
    assert np.array_equal(INPUT_OFFSET + pixel_part_table()[pixels], scale_inputs(pixels))
    assert pixel_part_table()[0] == 0.0 and pixel_part_table("float32").dtype == np.float32
    assert np.array_equal(pixel_part_table("float32"), pixel_part_table().astype(np.float32))
    with pytest.raises(ValueError):
        pixel_part_table("int8")
