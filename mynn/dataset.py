"""What a data set is: MNIST records as two read-only uint8 arrays, with content digests.

:class:`Dataset` holds ``labels`` (n,) and ``pixels`` (n, 784). Digests: ``labels_digest`` and
``pixels_digest`` are the SHA-256 of the arrays as C-ordered uint8 bytes (as listed in
``data/mnist/README.md``); ``digest`` combines both, and :data:`KNOWN_DIGESTS` /
:func:`identify` name the four shipped sets by it. :class:`DataFormatError` is the error of
every reader of data files (the CSV reader, the ``.npy`` store, the prepared-data cache).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Union

import numpy as np

__all__ = ["DataFormatError", "Dataset", "KNOWN_DIGESTS", "N_CLASSES", "N_PIXELS", "array_digest", "identify"]

PathLike = Union[str, os.PathLike]

N_PIXELS = 784  # 28 x 28
N_CLASSES = 10

#: Combined content digest (:attr:`Dataset.digest`) of each shipped set, by name. The full
#: sets' labels and pixels digests are those listed in data/mnist/README.md.
KNOWN_DIGESTS: dict[str, str] = {
    "mnist_train": "e2b419c6bdc63122739d8d56e45009a328e2467294bb17a85311bcc183a79c9b",
    "mnist_test": "fb16ab0d9db30101e4cd50e8b5cbac4a9addff0f9f20e9cb55883df9cd8b3cdd",
    "mnist_train_100": "6a8f1c9d004a9a3f5f2ce518db06b208d5e857a1b6e96cb08e6431fd2fd91b87",
    "mnist_test_10": "309bcf155e7f1a58c71224d8c78ceb91b24fca177df2c93dc1d2d71abe236b4a",
}


class DataFormatError(ValueError):
    """A data file is not what it must be.

    ``path`` is the file (as given), ``line`` the 1-based line of the (decompressed) text or
    None when the problem is not on one line, ``value`` the offending value (cut to 40
    characters) or None. The message always starts with the path, then ``line N`` if known,
    e.g. ``mnist_train.csv line 17: field 3 is 'abc', not an integer 0..255``.
    """

    def __init__(self, path: PathLike, reason: str, line: int | None = None,
                 value: str | None = None) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.line = line
        self.value = value
        where = self.path if line is None else f"{self.path} line {line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep it picklable despite the custom signature
        return (type(self), (self.path, self.reason, self.line, self.value))


def array_digest(array: np.ndarray) -> str:
    """Hex SHA-256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _read_only(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, read-only version: the array itself if it already is, else a copy."""
    if array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C", copy=True)
        array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Dataset:
    """MNIST records: ``labels`` (n,) uint8 in 0..9 and ``pixels`` (n, 784) uint8.

    Both arrays are C-contiguous and read-only (writeable arrays are copied on the way in),
    so the digests are cached. Equality is identity; compare ``digest`` for content.
    """

    labels: np.ndarray  # (n,) uint8, 0..9
    pixels: np.ndarray  # (n, 784) uint8, 0..255, row-major 28x28 images
    name: str = ""  # where it came from, e.g. the file name

    def __post_init__(self) -> None:
        for field, ndim in (("labels", 1), ("pixels", 2)):
            array = getattr(self, field)
            if not isinstance(array, np.ndarray):
                raise TypeError(f"Dataset.{field} must be a numpy array, not {type(array).__name__}")
            if array.dtype != np.uint8:
                raise TypeError(f"Dataset.{field} must be uint8, not {array.dtype}")
            if array.ndim != ndim:
                raise ValueError(f"Dataset.{field} must have {ndim} dimension(s), has shape {array.shape}")
        n = self.labels.shape[0]
        if self.pixels.shape != (n, N_PIXELS):
            raise ValueError(f"Dataset.pixels has shape {self.pixels.shape}, expected ({n}, {N_PIXELS})")
        if n and int(self.labels.max()) >= N_CLASSES:
            raise ValueError(f"Dataset.labels has {int(self.labels.max())}, labels are 0..9")
        if not isinstance(self.name, str):
            raise TypeError(f"Dataset.name must be a str, not {type(self.name).__name__}")
        object.__setattr__(self, "labels", _read_only(self.labels))
        object.__setattr__(self, "pixels", _read_only(self.pixels))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={len(self)}, digest={self.digest[:12]}...)"

    @cached_property
    def labels_digest(self) -> str:
        """Hex SHA-256 of ``labels`` as C-ordered uint8 bytes, shape (n,)."""
        return array_digest(self.labels)

    @cached_property
    def pixels_digest(self) -> str:
        """Hex SHA-256 of ``pixels`` as C-ordered uint8 bytes, shape (n, 784)."""
        return array_digest(self.pixels)

    @cached_property
    def digest(self) -> str:
        """Hex SHA-256 of ``(labels_digest + pixels_digest).encode()``: one content id."""
        return hashlib.sha256((self.labels_digest + self.pixels_digest).encode()).hexdigest()

    def head(self, n: int) -> Dataset:
        """The first ``n`` records (all of them if there are fewer), sharing memory."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"Dataset.head: n must be an integer >= 0, not {n!r}")
        n = min(int(n), len(self))
        return Dataset(self.labels[:n], self.pixels[:n], name=f"{self.name}[:{n}]")


def identify(dataset: Dataset) -> str | None:
    """The name in :data:`KNOWN_DIGESTS` of a dataset with this content, else None."""
    for name, digest in KNOWN_DIGESTS.items():
        if digest == dataset.digest:
            return name
    return None
