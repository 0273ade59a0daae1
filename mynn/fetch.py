"""The download step of the MNIST pipeline: get the train and test CSV files into the cache.

A *source* names where the files live (:func:`mynn.sources.resolve_source`); :func:`fetch`
copies each file into the content-addressed cache (:mod:`mynn.cache`) and reports what it did::

    result = fetch("shipped")            # or "shipped-small", "book", a dir, file://, http(s)://
    result.train.path                    # cache_dir/files/<sha256>/mnist_train.csv.gz
    result.train.origin                  # the user's file or URL, for messages and records

Identity is a fact about bytes, never about a name:

* A *local* source (``shipped``, ``shipped-small``, a folder, ``file://``) is read on every
  fetch: its bytes are streamed to a temporary file in the cache, hashed on the way and moved
  into place with ``os.replace``. The digest a run records is therefore the SHA-256 of the
  bytes at the source at that moment, and the cached copy is exactly those bytes.
* A *remote* source is downloaded on every fetch, unless a digest for the file is known
  (pinned by a named source, or given by the caller): then an intact cached file with that
  digest (re-hashed) is used and nothing is transferred.
* Known digests belong to the named sources they came with: the shipped ``SHA256SUMS``
  pins ``shipped`` and ``shipped-small`` only, never a file of the same name elsewhere.

Only regular files of at most :func:`mynn.limits.max_data_bytes` are accepted (a FIFO, a device
or a huge file is refused at once, naming it); after a failure no temporary file is left.
The copying itself (HTTP with retries, local files) is :mod:`mynn.download`. The errors,
:class:`FetchError` and :class:`DigestMismatchError`, are defined in :mod:`mynn.sources` (the
first part that raises them) and are part of this entry point.
"""
from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mynn.cache import cache_root, cached
from mynn.download import NotFound, Options, Progress, copy_local, download
from mynn.limits import max_data_bytes
from mynn.sources import SPLITS, DigestMismatchError, FetchError, Source, check_name, is_sha256, resolve_source

__all__ = ["DigestMismatchError", "FetchError", "FetchResult", "FetchedFile", "UnverifiedDownloadWarning",
           "fetch"]


class UnverifiedDownloadWarning(UserWarning):
    """A file came over plain http and no digest was known to check it against."""


@dataclass(frozen=True)
class FetchedFile:
    """One file in the cache and how it got there."""

    split: str
    path: Path  # cache_dir/files/<sha256>/<filename>
    sha256: str
    bytes_transferred: int  # bytes read from the source: 0 on a cache hit
    cache_hit: bool  # the bytes came from the cache: nothing was read from the source
    verified: bool  # the digest was checked against a known one
    url: str  # where it came from (file:// for local sources)
    origin: str = ""  # how the user knows it: the local path, or the URL (no credentials)


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did for each split; ``result["train"]`` works too."""

    source: Source
    train: FetchedFile
    test: FetchedFile

    @property
    def bytes_transferred(self) -> int:
        """Bytes read from the source for both files (0 when both came from the cache)."""
        return self.train.bytes_transferred + self.test.bytes_transferred

    @property
    def verified(self) -> bool:
        """Both files had the digests the source pins."""
        return self.train.verified and self.test.verified

    def __getitem__(self, split: str) -> FetchedFile:
        if split not in SPLITS:
            raise KeyError(split)
        return self.train if split == "train" else self.test


# ----------------------------------------------------------------------------- fetch


def fetch(
    source: str | Source = "shipped",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    expected_sha256: Mapping[str, str] | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30,
    progress: Progress | None = None,
    max_bytes: int | None = None,
) -> FetchResult:
    """Bring the train and test files of ``source`` into the cache and return where they are.

    For each split the candidate names are tried in order (a missing file or HTTP 404 moves
    on to the next one). A local file is always read, hashed and copied; a remote file is
    downloaded unless its digest is known and an intact cached copy has it (see the module
    docstring).

    ``expected_sha256`` maps a file name (``"mnist_train.csv"``) or a split (``"train"``) to a
    hex digest; it overrides the source's pinned digests. A file with no known digest is
    accepted, marked unverified and, over plain http, warned about
    (:class:`UnverifiedDownloadWarning`). A file larger than ``max_bytes`` (default
    :func:`mynn.limits.max_data_bytes`) or not a regular file is refused at once.

    Network errors (connection errors, timeouts, truncated bodies, HTTP 5xx/408/429) are
    retried ``retries`` times after the first attempt, sleeping ``backoff * 2**n`` seconds.
    Raises :class:`DigestMismatchError` on a wrong digest (at once) and :class:`FetchError`
    for anything else that fails. ``progress(filename, done, total)`` is called about every
    MiB of a transfer and once at its end (not on cache hits).
    """
    src = source if isinstance(source, Source) else resolve_source(source)
    if retries < 0 or backoff < 0 or timeout <= 0:
        raise ValueError("retries and backoff must be >= 0 and timeout > 0")
    limit = max_data_bytes() if max_bytes is None else max_bytes
    if limit < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes!r}")
    caller = {}
    for key, digest in (expected_sha256 or {}).items():
        if not isinstance(digest, str) or not is_sha256(digest.lower()):
            raise ValueError(f"expected_sha256[{key!r}] is not a hex SHA-256: {digest!r}")
        caller[key] = digest.lower()
    cache = cache_root(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    opts = Options(retries, backoff, timeout, progress, src.auth, limit)
    done = {}
    for split in SPLITS:
        names = tuple(check_name(n) for n in src.candidates(split))
        if not names:
            raise FetchError(f"{src.spec}: no file names for {split!r}")
        expected = {n: caller.get(n, caller.get(split, src.pinned_digest(n))) for n in names}
        done[split] = _fetch_split(src, split, names, expected, cache, opts)
    return FetchResult(src, done["train"], done["test"])


def _fetch_split(src: Source, split: str, names: tuple[str, ...], expected: dict[str, str | None],
                 cache: Path, opts: Options) -> FetchedFile:
    if src.remote:  # a known digest: an intact cached copy needs no transfer
        for name in names:
            if expected[name] is not None and (hit := cached(cache, name, expected[name])) is not None:
                return FetchedFile(split, hit, expected[name], 0, True, True, src.url(name), src.origin(name))
    tried = []
    for name in names:
        url = src.url(name)
        try:
            if src.remote:
                path, digest, size = download(url, name, expected[name], cache, opts)
            else:
                path, digest, size = copy_local(Path(src.location) / name, url, name, expected[name], cache, opts)
        except NotFound:
            tried.append(url)
            continue
        if expected[name] is None and urllib.parse.urlsplit(url).scheme == "http":
            warnings.warn(f"{url} came over plain http and no sha256 is known for {name}: "
                          f"unverified (got {digest})", UnverifiedDownloadWarning, stacklevel=3)
        return FetchedFile(split, path, digest, size, False, expected[name] is not None, url, src.origin(name))
    raise FetchError(f"{src.spec}: no {split} file found (tried {', '.join(tried)})", tried[-1])
