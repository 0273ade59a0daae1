"""The definition of the book's CSV format: a slow line-by-line reader naming the first bad line.

The format (the book's ``mnist_train.csv`` and friends): one record per line, the label
(0..9) first, then the 784 pixel values (0..255) of a 28x28 image row by row, comma
separated, no header. :func:`mynn.csvfile.read_csv` reads it into a
:class:`~mynn.dataset.Dataset` or raises :class:`~mynn.dataset.DataFormatError`.

Tolerated:

* a gzip-compressed file (recognised by its magic bytes ``1f 8b``, whatever the suffix);
* LF or CRLF line ends (even mixed), a newline after the last record or none;
* leading zeros in a field (``007`` is 7), as any decimal integer reader reads them.

Refused, with a :class:`DataFormatError` naming the file, the 1-based line (of the
decompressed text) and the offending value, the first such problem in the file:

* a wrong number of fields (the message says how many), an empty field;
* a field that is not a plain decimal integer: ``1.5``, ``-3``, ``+3``, `` 7``, ``abc``;
* a pixel outside 0..255, a label outside 0..9;
* a blank line, anywhere (in the middle, at the start, or a second newline at the end);
* a carriage return that is not directly before a newline (old Mac line ends);
* a header row, an HTML page saved as CSV (the line's start is shown, cut to 40 chars);
* a byte-order mark (UTF-8, said so explicitly; or UTF-16);
* an empty file (no records), and, with ``line`` None, a truncated or corrupt gzip.

Nothing half-parsed is ever returned. A missing file raises the usual ``OSError``.

:func:`mynn.csvfile.read_csv` runs :func:`parse_exact` only when its fast checks refuse a
text, to find and name the problem.
"""
from __future__ import annotations

import re

import numpy as np

from mynn.dataset import N_CLASSES, N_PIXELS, DataFormatError, PathLike

__all__ = ["N_FIELDS", "message_text", "parse_exact"]

N_FIELDS = 1 + N_PIXELS  # the label, then the pixels
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SHOW_CHARS = 40  # offending values are cut to this many characters in messages
# A canonical record (no leading zeros, every value in range): lines that match it need no
# further checking in the exact pass.
_CANONICAL_RECORD = re.compile(
    rb"[0-9](?:,(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){%d}" % N_PIXELS
)


def message_text(raw: bytes) -> str:
    """A bytes value as text for messages, cut to about 40 characters."""
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "..."


def parse_exact(path: PathLike, text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The definition of the format: a slow line-by-line reader of a non-empty text.

    Raises :class:`~mynn.dataset.DataFormatError` for the first bad line, else returns labels (n,) and
    pixels (n, 784), read-only uint8. (:func:`read_csv` calls it only when the fast path
    refused the text, so returning is not expected; if it happens, the answer is still
    right, only slow: about 10 s for 60,000 records.) Lines that match the canonical
    record pattern are taken at once, so finding an error costs at most ~1.5 s.
    """
    if text.startswith(_UTF8_BOM):
        raise DataFormatError(
            path, "the file starts with '\\ufeff', a UTF-8 byte-order mark (BOM, bytes "
            "EF BB BF); save it as plain ASCII without a BOM", line=1, value="\ufeff")
    if text.startswith(_UTF16_BOMS):
        bom = text[:2].decode("latin-1")
        raise DataFormatError(
            path, f"the file starts with {bom!r}, a UTF-16 byte-order mark: it is UTF-16 "
            "text, expected ASCII", line=1, value=bom)
    lines = text.split(b"\n")
    ends_with_newline = lines[-1] == b""
    if ends_with_newline:
        lines.pop()
    last = len(lines)
    records: list[bytes] = []
    for number, line in enumerate(lines, start=1):
        if line.endswith(b"\r") and (number < last or ends_with_newline):
            line = line[:-1]  # CRLF
        if not _CANONICAL_RECORD.fullmatch(line):
            _check_line(path, number, line)  # raises, unless the line is valid but odd
        records.append(line)
    labels = np.empty(len(records), dtype=np.uint8)
    pixels = np.empty((len(records), N_PIXELS), dtype=np.uint8)
    for i, line in enumerate(records):
        values = [int(field) for field in line.split(b",")]
        labels[i] = values[0]
        pixels[i] = values[1:]
    labels.flags.writeable = False
    pixels.flags.writeable = False
    return labels, pixels


def _check_line(path: PathLike, number: int, line: bytes) -> None:
    """Raise :class:`DataFormatError` for what is wrong with line ``number``, if anything."""
    def fail(reason: str, value: str) -> None:
        raise DataFormatError(path, reason, line=number, value=value)

    shown = message_text(line)
    if not line:
        fail("blank line; blank lines are not allowed (not even at the end)", "")
    fields = line.split(b",")
    if number == 1:
        if line.lstrip().startswith(b"<"):
            fail(f"{shown!r} is an HTML page, not CSV records "
                 "(an error or login page saved by a download?)", shown)
        words = sum(1 for field in fields if field and not field.isdigit())
        if 2 * words >= len(fields) and re.search(rb"[A-Za-z]", line):
            fail(f"{shown!r} looks like a header row; the format has none, "
                 "every line is a record (a label, then 784 pixels)", shown)
    for k, field in enumerate(fields, start=1):
        if b"\r" in field:
            value = message_text(field)
            fail(f"field {k} is {value!r}: a carriage return not directly before a "
                 "newline (only LF or CRLF line ends are accepted)", value)
    if len(fields) != N_FIELDS:
        fail(f"{len(fields)} fields, not {N_FIELDS} (a label and {N_PIXELS} pixels): "
             f"{shown!r}", shown)
    for k, field in enumerate(fields, start=1):
        value = message_text(field)
        if not field:
            fail(f"field {k} is empty", "")
        ok = field.isdigit()  # ASCII digits only, for bytes
        if k == 1:
            if not ok or int(field) >= N_CLASSES:
                fail(f"field 1 (the label) is {value!r}, not a digit 0..9", value)
        elif not ok or int(field) > 255:
            fail(f"field {k} is {value!r}, not an integer 0..255", value)
