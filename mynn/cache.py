"""The download cache: files named by the SHA-256 of their bytes, never edited in place.

Layout (``cache_dir`` defaults to :func:`mynn.paths.cache_dir`)::

    files/<sha256>/<filename>     the bytes, named by their digest
    .fetch-<pid>-<random>.part    a file being written (removed if anything fails)

A file is written to a temporary file in the cache (:func:`staging`), hashed on the way, and
moved to its place (:func:`entry`) only once complete and checked. Nothing is ever written
outside the cache folder, not even through a symlink inside it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mynn import paths
from mynn.files import AtomicWrite
from mynn.sources import FetchError

__all__ = ["cache_root", "cached", "entry", "forget", "sha256_file", "staging"]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder, resolved (default :func:`mynn.paths.cache_dir`)."""
    return Path(cache_dir if cache_dir is not None else paths.cache_dir()).resolve()


def entry(cache: Path, digest: str, name: str) -> Path:
    """Where the file ``name`` with these bytes lives: ``files/<digest>/<name>``, checked to be
    inside the cache (FetchError otherwise)."""
    path = cache / "files" / digest / name
    if not path.resolve().is_relative_to(cache):
        raise FetchError(f"refusing path {path}: it is outside the cache dir {cache}")
    return path


def staging(cache: Path) -> AtomicWrite:
    """A temporary file in the cache, moved to the ``target`` set on it when its block completes
    (errors are re-raised as they are: the caller names them)."""
    return AtomicWrite(None, folder=cache, prefix=".fetch-", suffix=".part", name_errors=False)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(cache: Path, name: str, digest: str) -> Path | None:
    """The cached file ``files/<digest>/<name>`` if its bytes have that digest (re-hashed), else None.
    A corrupt copy is removed."""
    path = entry(cache, digest, name)
    try:
        if path.is_file() and not path.is_symlink() and sha256_file(path) == digest:
            return path
    except OSError:
        pass
    if path.exists() or path.is_symlink():  # corrupt: drop it, it will be fetched again
        path.unlink(missing_ok=True)
    return None


def forget(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove a cached file (``files/<sha256>/<name>``) and its folder if that is left empty:
    for bytes that were refused after they were cached (malformed data)."""
    cache = cache_root(cache_dir)
    target = Path(path)
    if not target.resolve().is_relative_to(cache / "files"):
        raise ValueError(f"forget: {path} is not a file in the cache {cache}")
    target.unlink(missing_ok=True)
    try:
        target.parent.rmdir()
    except OSError:
        pass
