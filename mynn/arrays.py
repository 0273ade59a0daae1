"""A folder store of data sets as ``.npy`` arrays, written atomically, checked when read.

``directory``/{labels.npy, pixels.npy, meta.json}: the arrays (uint8, no pickle) and their
name, size and digests. :func:`save_npy` writes a complete folder or nothing
(:class:`mynn.files.AtomicWrite`); :func:`load_npy` recomputes every digest.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mynn.csvformat import message_text
from mynn.dataset import N_PIXELS, DataFormatError, Dataset, PathLike, array_digest
from mynn.files import AtomicWrite

__all__ = ["load_npy", "save_npy"]

_LABELS_FILE = "labels.npy"
_PIXELS_FILE = "pixels.npy"
_META_FILE = "meta.json"
_META_FORMAT = "mynn.data/1"  # written into every meta.json: kept as it was (the module's old name)


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
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(target)
    meta = {
        "format": _META_FORMAT,
        "name": dataset.name,
        "n": len(dataset),
        "labels_sha256": dataset.labels_digest,
        "pixels_sha256": dataset.pixels_digest,
        "digest": dataset.digest,
    }
    with AtomicWrite(target, prefix=f".{target.name}.tmp-", suffix="", directory=True) as tmp:
        for file_name, array in ((_LABELS_FILE, dataset.labels), (_PIXELS_FILE, dataset.pixels)):
            with open(tmp / file_name, "wb") as f:
                # (seen by numpy as a plain object with a write method, the file is written through
                # Python: numpy's C write of a real file loses the errno of a full disk)
                np.save(SimpleNamespace(write=f.write), array, allow_pickle=False)
        with open(tmp / _META_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
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
                                  value=message_text(repr(meta.get(key)).encode()))
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
    got = array_digest(array)
    if got != sha256:
        raise DataFormatError(path, f"content digest {got} does not match meta.json's {sha256}",
                              value=got)
    return array
