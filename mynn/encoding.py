"""The network's input encoding: the book's scaled pixels and one-hot-ish targets.

The one definition of ``input = 0.01 + pixel / 255 * 0.99`` (:func:`scale_inputs`, and
:func:`pixel_part_table` for the sparse fast path in :mod:`mynn.train`) and of the targets
(:func:`make_targets`), used by training, evaluation, serving and the model flavour.
"""
from __future__ import annotations

import numpy as np

from mynn.dataset import N_CLASSES, N_PIXELS

__all__ = ["INPUT_OFFSET", "make_targets", "pixel_part_table", "scale_inputs"]


def _float_dtype(dtype) -> np.dtype:
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    return resolved


INPUT_OFFSET = 0.01  # the book's input is INPUT_OFFSET + pixel / 255 * 0.99
_PIXEL_TABLE = np.arange(256, dtype=np.float64) / 255 * 0.99  # pixel value -> input - offset
_SCALE_TABLE = _PIXEL_TABLE + INPUT_OFFSET  # pixel value -> input
_PIXEL_TABLE.flags.writeable = False
_SCALE_TABLE.flags.writeable = False


def pixel_part_table(dtype="float64") -> np.ndarray:
    """(256,) pixel value -> ``pixel / 255 * 0.99``, the input less ``INPUT_OFFSET`` (0 for a
    zero pixel), computed in float64 and cast to ``dtype``. ``scale_inputs`` adds the offset
    to the float64 values, so ``INPUT_OFFSET + table`` is its table bit for bit in float64.
    """
    return _PIXEL_TABLE.astype(_float_dtype(dtype))


def scale_inputs(pixels: np.ndarray, dtype="float64") -> np.ndarray:
    """The book's inputs: ``pixels / 255 * 0.99 + 0.01``, in [0.01, 1.0].

    ``pixels`` is uint8, (n, 784) (or one record, (784,)); the result has the same shape,
    in ``dtype`` ("float64" or "float32"). It is computed in float64 and then cast, so the
    float32 values are the roundings of the float64 ones. (A 256-entry lookup table of that
    expression, so the values are bit-identical to evaluating it element by element.)
    """
    table = _SCALE_TABLE.astype(_float_dtype(dtype))
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise TypeError(f"scale_inputs: pixels must be uint8, not {pixels.dtype}")
    if pixels.shape[-1:] != (N_PIXELS,) or pixels.ndim not in (1, 2):
        raise ValueError(f"scale_inputs: pixels must be (n, {N_PIXELS}), not {pixels.shape}")
    return table[pixels]


def make_targets(labels: np.ndarray, dtype="float64") -> np.ndarray:
    """The book's targets: (n, 10), 0.01 everywhere and 0.99 at each record's label.

    ``labels`` is an integer array (n,) of values 0..9; the result is in ``dtype``.
    """
    resolved = _float_dtype(dtype)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"make_targets: labels must be integers of shape (n,), "
                        f"not {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError("make_targets: labels must be 0..9")
    targets = np.full((labels.shape[0], N_CLASSES), 0.01, dtype=resolved)
    targets[np.arange(labels.shape[0]), labels] = 0.99
    return targets
