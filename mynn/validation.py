"""The validation set: training records held out, chosen by the seed, to choose and stop by.

The book chooses by the test score. With ``validation_records = k`` (:class:`~mynn.config.NetworkConfig`)
training holds out k of the n training records, drawn without replacement by numpy's Generator
seeded with ``[VALIDATION_STREAM, seed]`` (a stream of its own: the initial weights' draw from
``seed`` is unchanged), trains on the other n - k in file order and scores the k after every
epoch. The indices' digest names the split, so a run records exactly which records it held out.
"""
from __future__ import annotations

import hashlib

import numpy as np

#: Second word of the validation draw's seed: keeps it apart from the initial weights' draw.
VALIDATION_STREAM = 0x76616C  # "val"


def split(records: int, validation_records: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices), both ascending int64 and disjoint, together
    ``0..records-1``: ``validation_records`` of them drawn by ``seed``.

    Raises ValueError when the held-out records would leave no training record."""
    if not 0 < validation_records < records:
        raise ValueError(f"validation_records {validation_records} must be between 1 and {records - 1}: "
                         f"the training set has {records} records")
    rng = np.random.default_rng([VALIDATION_STREAM, seed])
    held = np.zeros(records, dtype=bool)
    held[rng.choice(records, size=validation_records, replace=False)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def indices_digest(indices: np.ndarray) -> str:
    """SHA-256 of the held-out indices (little-endian int64): what a run records of its split."""
    return hashlib.sha256(np.ascontiguousarray(indices, dtype="<i8").tobytes()).hexdigest()


def split_digest(train_digest: str, records: int, validation_records: int, seed: int) -> str:
    """The validation set's identity: SHA-256 of the training set's content digest and the
    held-out indices' digest (the same records of the same data give the same digest)."""
    _, held = split(records, validation_records, seed)
    return hashlib.sha256(f"{train_digest}:{indices_digest(held)}".encode()).hexdigest()
