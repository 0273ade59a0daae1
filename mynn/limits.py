"""What is accepted as a data file at all: a regular file of at most ``MYNN_MAX_DATA_BYTES``.

Shared by the download (:mod:`mynn.download`, before a byte is copied) and the CSV reader
(:mod:`mynn.csvfile`, before and after gunzip).
"""
from __future__ import annotations

import os
import stat

__all__ = ["DEFAULT_MAX_DATA_BYTES", "MAX_DATA_BYTES_ENV", "file_kind", "max_data_bytes"]

#: Default for :func:`max_data_bytes`: far above any MNIST-style set (full MNIST's training
#: CSV is 110 MB), far below what would exhaust memory.
DEFAULT_MAX_DATA_BYTES = 1 << 30
MAX_DATA_BYTES_ENV = "MYNN_MAX_DATA_BYTES"


def max_data_bytes() -> int:
    """The largest data file accepted, in bytes, before or after gunzip
    (``MYNN_MAX_DATA_BYTES``, default 1 GiB; read when called)."""
    raw = os.environ.get(MAX_DATA_BYTES_ENV)
    if raw is None or raw == "":
        return DEFAULT_MAX_DATA_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_DATA_BYTES_ENV}={raw!r}: not a whole number of bytes") from None
    if value < 1:
        raise ValueError(f"{MAX_DATA_BYTES_ENV}={raw!r}: must be at least 1")
    return value


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode``: "a FIFO", "a directory", ..."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"
