"""Reading a CSV file of MNIST records (plain or gzip) into a :class:`~mynn.dataset.Dataset`.

:func:`read_csv` returns ``labels`` (n,) and ``pixels`` (n, 784), both uint8 and read-only, or
raises :class:`~mynn.dataset.DataFormatError`; what is tolerated and what is refused is
defined in :mod:`mynn.csvformat`. Files larger than :func:`mynn.limits.max_data_bytes`, before
or after gunzip, and files that are not regular files are refused before they are read whole.

How: the whole file is read into memory, every byte is checked (vectorised) to be a digit,
a comma or a line end, numpy's C parser reads the checked text and the ranges are checked
vectorised (about 1 s for the 60,000 training records, a third of it gunzip). Only when a
check fails does :func:`mynn.csvformat.parse_exact` run: a line-by-line reader that is the
definition of the format and finds the first bad line and value.
"""
from __future__ import annotations

import io
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from mynn.csvformat import N_FIELDS, parse_exact
from mynn.dataset import N_CLASSES, DataFormatError, Dataset, PathLike
from mynn.limits import MAX_DATA_BYTES_ENV, file_kind, max_data_bytes

__all__ = ["read_csv"]

_GZIP_MAGIC = b"\x1f\x8b"
_ALLOWED_BYTES = b"0123456789,\r\n"


def read_csv(path: PathLike, *, label: str | None = None, max_bytes: int | None = None) -> Dataset:
    """Read a CSV file (plain or gzip) of MNIST records into a :class:`Dataset`.

    Returns labels (n,) and pixels (n, 784), uint8, named after the file (``Path.name``).
    Raises :class:`DataFormatError` for anything but well-formed records (see
    :mod:`mynn.csvformat` for what is tolerated and what is refused); never returns partial data.
    ``label`` is the name errors give the file (default: ``path``), e.g. the user's file or
    URL when ``path`` is the cache's copy of it. A file, or its gunzipped text, of more than
    ``max_bytes`` (default :func:`max_data_bytes`) is refused before it is read whole.
    """
    shown = os.fspath(path) if label is None else label
    text, compressed = _read_bytes(path, shown, max_data_bytes() if max_bytes is None else max_bytes)
    if not text:
        raise DataFormatError(shown, "no records: the file is empty"
                              + (" (once gunzipped)" if compressed else ""))
    arrays = _parse_fast(text)
    if arrays is None:
        arrays = parse_exact(shown, text)  # raises the first problem (see _parse_fast)
    labels, pixels = arrays
    return Dataset(labels, pixels, name=Path(path).name)


def _too_large(shown: str, what: str, limit: int) -> DataFormatError:
    return DataFormatError(shown, f"{what} more than {limit:,} bytes, the limit for a data file "
                           f"(raise it with {MAX_DATA_BYTES_ENV})")


def _read_bytes(path: PathLike, shown: str, limit: int) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped if it starts with the gzip magic bytes; and whether it did.

    Only regular files are read (a FIFO or a device is refused without reading), and no more
    than ``limit`` bytes, before or after gunzip."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataFormatError(shown, f"not a regular file ({file_kind(st.st_mode)})")
        raise _too_large(shown, f"the file is {st.st_size:,} bytes,", limit)
    with open(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _too_large(shown, "the file grew while read to", limit)
    if not data.startswith(_GZIP_MAGIC):
        return data, False
    out = []
    size = 0
    try:
        while data:  # concatenated gzip members, as gzip.decompress reads them
            z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = z.decompress(data, limit + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > limit or z.unconsumed_tail:
                raise _too_large(shown, "gunzipped, the file is", limit)
            if not z.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            data = z.unused_data.lstrip(b"\x00")  # gzip's trailing zero padding is allowed
            if data and not data.startswith(_GZIP_MAGIC):
                raise OSError("not a gzipped file (bytes after the last member)")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(
            shown, f"not a readable gzip file (truncated or corrupt download?): {exc}"
        ) from None
    return b"".join(out), True


def _parse_fast(text: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels (n,) and pixels (n, 784), read-only uint8, or None if any check fails.

    Accepts exactly what :func:`mynn.csvformat.parse_exact` accepts (or less, never more): only digits,
    commas and line ends; CR only in CRLF; as many rows as lines (loadtxt skips blank
    lines); and loadtxt itself refuses empty fields, values that are not uint8 and rows
    that are not all the same width.
    """
    if text.translate(None, _ALLOWED_BYTES):
        return None  # some other byte: a header, a BOM, '.', '-', ' ', ...
    if b"\r" in text:
        if text.count(b"\r") != text.count(b"\r\n"):
            return None
        text = text.replace(b"\r\n", b"\n")
    n_lines = text.count(b"\n") + (not text.endswith(b"\n"))
    try:
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.uint8, comments=None,
                           ndmin=2, encoding="latin1")
    except ValueError:
        return None
    if table.shape != (n_lines, N_FIELDS):
        return None  # a blank line, or not 785 fields
    labels = np.ascontiguousarray(table[:, 0])
    if labels.max() >= N_CLASSES:
        return None
    pixels = np.ascontiguousarray(table[:, 1:])
    labels.flags.writeable = False
    pixels.flags.writeable = False
    return labels, pixels
