"""mynn.drawing: a drawing made into an MNIST record as MNIST's were made (20x20 box, centre of
mass at the centre of 28x28). The reference is MNIST itself: its records already went through
that, so doing it again must leave them nearly as they are, and read the same."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mynn import paths
from mynn.drawing import EmptyDrawing, to_mnist


def _records() -> tuple[np.ndarray, np.ndarray]:
    d = np.loadtxt(paths.data_dir() / "mnist_train_100.csv", delimiter=",", dtype=np.uint8)
    return d[:, 1:].reshape(-1, 28, 28), d[:, 0]


def test_an_empty_drawing_is_refused():
    with pytest.raises(EmptyDrawing, match="the drawing is empty: draw a digit first"):
        to_mnist(np.zeros((280, 280)))


@pytest.mark.parametrize("shape, box", [((280, 280), (slice(40, 240), slice(120, 160))),   # a tall bar
                                        ((100, 300), (slice(10, 30), slice(20, 280))),     # a wide one
                                        ((50, 50), (slice(2, 6), slice(2, 6)))])           # a dot, scaled up
def test_the_ink_fits_a_20_pixel_box_centred_by_its_mass(shape, box):
    ink = np.zeros(shape)
    ink[box] = 255
    out = to_mnist(ink)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    rows, cols = np.flatnonzero(out.max(axis=1)), np.flatnonzero(out.max(axis=0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (20, 21)  # (21: a smoothed edge's grey)
    cy, cx = ndimage.center_of_mass(out.astype(float))
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_mnist_records_go_through_nearly_unchanged():
    images, _ = _records()
    for image in images[:50]:
        again = to_mnist(image).astype(float)
        ink = image.astype(float)
        corr = np.corrcoef(again.ravel(), ink.ravel())[0, 1]
        assert corr > 0.85, corr
