"""MNIST in the book's CSV format: strict parsing, scaling, content digests, an .npy cache.

The format (the book's ``mnist_train.csv`` and friends): one record per line, the label
(0..9) first, then the 784 pixel values (0..255) of a 28x28 image row by row, comma
separated, no header. :func:`read_csv` returns a :class:`Dataset` of ``labels`` (n,) and
``pixels`` (n, 784), both uint8 and read-only, or raises :class:`DataFormatError`.

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

How: the whole file is read into memory, every byte is checked (vectorised) to be a digit,
a comma or a line end, numpy's C parser reads the checked text and the ranges are checked
vectorised (about 1 s for the 60,000 training records, a third of it gunzip). Only when a
check fails does :func:`_parse_exact` run: a line-by-line reader that is the definition of
the format and finds the first bad line and value.

Digests: ``labels_digest`` and ``pixels_digest`` are the SHA-256 of the arrays as C-ordered
uint8 bytes (as listed in ``data/mnist/README.md``); ``digest`` combines both, and
:data:`KNOWN_DIGESTS` / :func:`identify` name the four shipped sets by it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import sys
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Union

import numpy as np

__all__ = [
    "DataFormatError",
    "Dataset",
    "KNOWN_DIGESTS",
    "N_CLASSES",
    "N_PIXELS",
    "identify",
    "load_npy",
    "make_targets",
    "read_csv",
    "save_npy",
    "scale_inputs",
]

PathLike = Union[str, os.PathLike]

N_PIXELS = 784  # 28 x 28
N_CLASSES = 10
N_FIELDS = 1 + N_PIXELS  # the label, then the pixels

#: Combined content digest (:attr:`Dataset.digest`) of each shipped set, by name. The full
#: sets' labels and pixels digests are those listed in data/mnist/README.md.
KNOWN_DIGESTS: dict[str, str] = {
    "mnist_train": "e2b419c6bdc63122739d8d56e45009a328e2467294bb17a85311bcc183a79c9b",
    "mnist_test": "fb16ab0d9db30101e4cd50e8b5cbac4a9addff0f9f20e9cb55883df9cd8b3cdd",
    "mnist_train_100": "6a8f1c9d004a9a3f5f2ce518db06b208d5e857a1b6e96cb08e6431fd2fd91b87",
    "mnist_test_10": "309bcf155e7f1a58c71224d8c78ceb91b24fca177df2c93dc1d2d71abe236b4a",
}

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ALLOWED_BYTES = b"0123456789,\r\n"
_SHOW_CHARS = 40  # offending values are cut to this many characters in messages
# A canonical record (no leading zeros, every value in range): lines that match it need no
# further checking in the exact pass.
_CANONICAL_RECORD = re.compile(
    rb"[0-9](?:,(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){%d}" % N_PIXELS
)

_LABELS_FILE = "labels.npy"
_PIXELS_FILE = "pixels.npy"
_META_FILE = "meta.json"
_META_FORMAT = "mynn.data/1"


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


def _sha256(array: np.ndarray) -> str:
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
        return _sha256(self.labels)

    @cached_property
    def pixels_digest(self) -> str:
        """Hex SHA-256 of ``pixels`` as C-ordered uint8 bytes, shape (n, 784)."""
        return _sha256(self.pixels)

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


# ---------------------------------------------------------------------------------- reading

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


def read_csv(path: PathLike, *, label: str | None = None, max_bytes: int | None = None) -> Dataset:
    """Read a CSV file (plain or gzip) of MNIST records into a :class:`Dataset`.

    Returns labels (n,) and pixels (n, 784), uint8, named after the file (``Path.name``).
    Raises :class:`DataFormatError` for anything but well-formed records (see the module
    docstring for what is tolerated and what is refused); never returns partial data.
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
        arrays = _parse_exact(shown, text)  # raises the first problem (see _parse_fast)
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


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode``: "a FIFO", "a directory", ..."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _parse_fast(text: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels (n,) and pixels (n, 784), read-only uint8, or None if any check fails.

    Accepts exactly what :func:`_parse_exact` accepts (or less, never more): only digits,
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


def _show(raw: bytes) -> str:
    """A bytes value as text for messages, cut to about 40 characters."""
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "..."


def _parse_exact(path: PathLike, text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The definition of the format: a slow line-by-line reader of a non-empty text.

    Raises :class:`DataFormatError` for the first bad line, else returns labels (n,) and
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

    shown = _show(line)
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
            value = _show(field)
            fail(f"field {k} is {value!r}: a carriage return not directly before a "
                 "newline (only LF or CRLF line ends are accepted)", value)
    if len(fields) != N_FIELDS:
        fail(f"{len(fields)} fields, not {N_FIELDS} (a label and {N_PIXELS} pixels): "
             f"{shown!r}", shown)
    for k, field in enumerate(fields, start=1):
        value = _show(field)
        if not field:
            fail(f"field {k} is empty", "")
        ok = field.isdigit()  # ASCII digits only, for bytes
        if k == 1:
            if not ok or int(field) >= N_CLASSES:
                fail(f"field 1 (the label) is {value!r}, not a digit 0..9", value)
        elif not ok or int(field) > 255:
            fail(f"field {k} is {value!r}, not an integer 0..255", value)


# -------------------------------------------------------------------------- network inputs

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


# --------------------------------------------------------------------------------- .npy cache

def save_npy(dataset: Dataset, directory: PathLike) -> Path:
    """Store ``dataset`` as ``directory``/{labels.npy, pixels.npy, meta.json}; return it.

    Atomic: everything is written (and fsynced) into a hidden temporary sibling directory,
    which is then renamed into place, so ``directory`` is either absent, the previous
    version or complete. An existing ``directory`` is replaced only if it holds nothing but
    those three files (else FileExistsError). After a failure nothing is left behind, and a
    failed write (a full disk) raises an ``OSError`` (same errno) naming ``directory``.
    """
    target = Path(directory)
    if target.name in ("", ".", ".."):
        raise ValueError(f"save_npy: {directory!r} does not name a directory to create")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(target)
    tmp = parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    meta = {
        "format": _META_FORMAT,
        "name": dataset.name,
        "n": len(dataset),
        "labels_sha256": dataset.labels_digest,
        "pixels_sha256": dataset.pixels_digest,
        "digest": dataset.digest,
    }
    old: Path | None = None
    try:
        for file_name, array in ((_LABELS_FILE, dataset.labels), (_PIXELS_FILE, dataset.pixels)):
            with open(tmp / file_name, "wb") as f:
                # (seen by numpy as a plain object with a write method, the file is written through
                # Python: numpy's C write of a real file loses the errno of a full disk)
                np.save(SimpleNamespace(write=f.write), array, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        with open(tmp / _META_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if target.exists():
            old = parent / f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.replace(old, target)  # put the previous version back
        if isinstance(exc, OSError):  # a full disk, a file size limit: name the directory
            raise (OSError(f"{target}: {exc}") if exc.errno is None
                   else OSError(exc.errno, f"{target}: {exc.strerror or exc}")) from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)
    return target


def _check_replaceable(target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a saved dataset directory")
    unexpected = set(os.listdir(target)) - {_LABELS_FILE, _PIXELS_FILE, _META_FILE}
    if unexpected:
        raise FileExistsError(f"{target} exists and holds other files ({sorted(unexpected)[:3]}); "
                              "refusing to replace it")


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_npy(directory: PathLike) -> Dataset:
    """Load what :func:`save_npy` stored: labels (n,) and pixels (n, 784), uint8, read-only.

    Checks dtypes and shapes against meta.json and recomputes every digest; any mismatch,
    missing or unreadable file raises :class:`DataFormatError` naming that file. A missing
    ``directory`` raises FileNotFoundError.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"no saved dataset at {folder}")
    meta_path = folder / _META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(meta_path, "missing: not a complete saved dataset") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(meta_path, f"not valid JSON: {exc}") from None
    expected = {"format": str, "name": str, "n": int, "labels_sha256": str,
                "pixels_sha256": str, "digest": str}
    if not isinstance(meta, dict):
        raise DataFormatError(meta_path, "is not a JSON object")
    for key, kind in expected.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise DataFormatError(meta_path, f"{key!r} is missing or not a {kind.__name__}",
                                  value=_show(repr(meta.get(key)).encode()))
    if meta["format"] != _META_FORMAT:
        raise DataFormatError(meta_path, f"unknown format {meta['format']!r}, "
                              f"expected {_META_FORMAT!r}", value=meta["format"])
    n = meta["n"]
    labels = _load_array(folder / _LABELS_FILE, (n,), meta["labels_sha256"])
    pixels = _load_array(folder / _PIXELS_FILE, (n, N_PIXELS), meta["pixels_sha256"])
    try:
        dataset = Dataset(labels, pixels, name=meta["name"])
    except ValueError as exc:  # labels outside 0..9 behind a matching digest
        raise DataFormatError(folder / _LABELS_FILE, str(exc)) from None
    if dataset.digest != meta["digest"]:
        raise DataFormatError(meta_path, f"digest {meta['digest']!r} does not match the "
                              f"arrays' {dataset.digest!r}", value=meta["digest"])
    return dataset


def _load_array(path: Path, shape: tuple[int, ...], sha256: str) -> np.ndarray:
    """One .npy file, checked to be uint8 of ``shape`` with content digest ``sha256``."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataFormatError(path, "missing: not a complete saved dataset") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(path, f"not a readable .npy file: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise DataFormatError(path, "not a .npy array file")
    if array.dtype != np.uint8:
        raise DataFormatError(path, f"dtype is {array.dtype}, expected uint8", value=str(array.dtype))
    if array.shape != shape:
        raise DataFormatError(path, f"shape is {array.shape}, expected {shape} (from meta.json)",
                              value=str(array.shape))
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    got = _sha256(array)
    if got != sha256:
        raise DataFormatError(path, f"content digest {got} does not match meta.json's {sha256}",
                              value=got)
    return array


def _main(argv: list[str]) -> int:
    """``python -m mynn.data FILE...``: parse each file and print its size, digest and time."""
    import time

    for arg in argv or [str(Path(__file__).resolve().parent.parent / "data/mnist/mnist_train.csv.gz")]:
        start = time.perf_counter()
        dataset = read_csv(arg)
        seconds = time.perf_counter() - start
        print(f"{arg}: {len(dataset)} records in {seconds:.3f} s; labels {dataset.labels_digest}"
              f" pixels {dataset.pixels_digest} digest {dataset.digest} ({identify(dataset)})")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
