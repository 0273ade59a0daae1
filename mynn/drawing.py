"""A drawn digit, made into an MNIST record the way MNIST's own were made.

MNIST's digits were size-normalised to fit a 20x20 box (keeping their aspect ratio, with
anti-aliasing, hence grey levels), then placed in a 28x28 field so that their centre of mass
lies at the field's centre. :func:`to_mnist` does the same to a drawing: ink 0..255 of any size
in, a (28, 28) uint8 image out, ready for :meth:`mynn.network.Network.query` after
:func:`mynn.encoding.scale_inputs`.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

BOX = 20  # the longer side of the digit, in pixels
FIELD = 28  # the image's side


class EmptyDrawing(ValueError):
    """A drawing with no ink: nothing to read."""


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """(h, w) ink, 0 (paper) .. 255 (ink), -> (28, 28) uint8 as MNIST's records.

    The ink's bounding box is scaled so its longer side is 20 pixels (smoothed first in
    proportion to the reduction, so thin strokes leave grey, not gaps), its brightest pixel set
    to 255, then it is placed in the 28x28 field with its centre of mass at the centre (14, 14),
    shifted by whole pixels. Raises :class:`EmptyDrawing` when no pixel has ink."""
    image = np.asarray(ink, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"a drawing is a 2-d array of ink values, not shape {image.shape}")
    rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
    if rows.size == 0:
        raise EmptyDrawing("the drawing is empty: draw a digit first")
    crop = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # (h', w')
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
    if scale < 1:
        crop = ndimage.gaussian_filter(crop, sigma=0.5 / scale - 0.5)
    small = ndimage.zoom(crop, (size[0] / crop.shape[0], size[1] / crop.shape[1]), order=1, grid_mode=True,
                         mode="grid-constant")  # (<=20, <=20)
    small = np.clip(small, 0, None)
    if small.max() > 0:
        small *= 255.0 / small.max()
    field = np.zeros((FIELD, FIELD))
    top, left = (FIELD - small.shape[0]) // 2, (FIELD - small.shape[1]) // 2
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    cy, cx = ndimage.center_of_mass(field)
    dy, dx = int(round(FIELD / 2 - cy)), int(round(FIELD / 2 - cx))
    shifted = np.zeros_like(field)
    src = field[max(0, -dy):FIELD - max(0, dy), max(0, -dx):FIELD - max(0, dx)]
    shifted[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
