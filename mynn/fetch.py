"""The download step of the MNIST pipeline: get the train and test CSV files into the cache.

A *source* names where the files live (:func:`resolve_source`); :func:`fetch` copies each
file into a content-addressed cache and reports what it did::

    result = fetch("shipped")            # or "shipped-small", "book", a dir, file://, http(s)://
    result.train.path                    # cache_dir/files/<sha256>/mnist_train.csv.gz
    result.train.origin                  # the user's file or URL, for messages and records

Cache layout (``cache_dir`` defaults to :func:`mynn.paths.cache_dir`)::

    files/<sha256>/<filename>     the bytes, named by their digest (never edited in place)

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

Only regular files of at most :func:`mynn.data.max_data_bytes` are accepted (a FIFO, a device
or a huge file is refused at once, naming it); after a failure no temporary file is left.

Only the standard library is used (urllib for HTTP).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import ssl
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Literal

from mynn import paths
from mynn.data import MAX_DATA_BYTES_ENV, file_kind, max_data_bytes

__all__ = [
    "BOOK_BASE_URL",
    "DigestMismatchError",
    "FetchError",
    "FetchResult",
    "FetchedFile",
    "Progress",
    "SPLITS",
    "Source",
    "UnverifiedDownloadWarning",
    "fetch",
    "forget",
    "known_digests",
    "redact_url",
    "resolve_source",
    "sha256_file",
]

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

#: Where the book's own repository keeps its MNIST CSV files.
BOOK_BASE_URL = (
    "https://raw.githubusercontent.com/makeyourownneuralnetwork/"
    "makeyourownneuralnetwork/master/mnist_dataset/"
)

#: ``progress(filename, bytes_done, bytes_total_or_None)``
Progress = Callable[[str, int, int | None], None]

_CHUNK = 64 * 1024
_PROGRESS_EVERY = 1024 * 1024
_FULL = {"train": ("mnist_train.csv.gz", "mnist_train.csv"), "test": ("mnist_test.csv.gz", "mnist_test.csv")}
_SMALL = {"train": ("mnist_train_100.csv",), "test": ("mnist_test_10.csv",)}
_BOOK = {"train": ("mnist_train.csv",), "test": ("mnist_test.csv",)}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_USER_AGENT = "mynn-fetch/1 (Python urllib)"


# ----------------------------------------------------------------------------- errors


class FetchError(Exception):
    """A file could not be fetched (``url`` names it when known)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class DigestMismatchError(FetchError):
    """The bytes' SHA-256 differs from the known digest; never retried, never cached."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(f"{url}: sha256 mismatch: expected {expected}, got {actual}", url)
        self.expected = expected
        self.actual = actual


class UnverifiedDownloadWarning(UserWarning):
    """A file came over plain http and no digest was known to check it against."""


class _ShortTransfer(Exception):
    """Fewer bytes arrived than the Content-Length promised (retryable)."""


class _NotFound(Exception):
    """The candidate does not exist at the source (HTTP 404 / missing local file)."""


def redact_url(url: str, mask: str = "***") -> str:
    """``url`` with its user info (``user:password@``) replaced by ``***@``: safe to log or record.

    ``mask=""`` drops the user info altogether (for a link to click). Anything without user
    info (a plain URL, a path, a source name) is returned unchanged.
    """
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{mask}@{host}" if mask else host))


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """Where the MNIST files live and which file names to try, in order, for each split.

    ``location`` is a base URL ending in ``/`` (``remote``) or an absolute directory. User
    info in an http(s) source (``https://user:password@host/``) is kept out of ``spec`` and
    ``location`` (so out of every URL, message and record) and sent as HTTP Basic ``auth``.
    """

    spec: str
    location: str
    remote: bool
    train: tuple[str, ...]
    test: tuple[str, ...]
    auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    #: (file name, sha256) pairs that this named source's files must have (shipped: SHA256SUMS)
    pinned: tuple[tuple[str, str], ...] = ()

    def pinned_digest(self, filename: str) -> str | None:
        """The digest this source pins for ``filename``, or None."""
        return dict(self.pinned).get(filename)

    def origin(self, filename: str) -> str:
        """How the user knows one file of this source: its path for local sources, else its URL."""
        name = _check_name(filename)
        return self.url(name) if self.remote else str(Path(self.location) / name)

    def candidates(self, split: str) -> tuple[str, ...]:
        """The file names to try for ``split`` ("train" or "test"), first choice first."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        return self.train if split == "train" else self.test

    def url(self, filename: str) -> str:
        """The URL of one file of this source (``file://`` for local ones)."""
        name = _check_name(filename)
        if self.remote:
            return self.location + urllib.parse.quote(name)
        return (Path(self.location).resolve() / name).as_uri()


def resolve_source(source: str = "shipped") -> Source:
    """Turn a source name into a :class:`Source` (nothing is read or downloaded).

    ``"shipped"``: the repo's ``data/mnist`` (``mnist_train.csv.gz``, else ``mnist_train.csv``);
    ``"shipped-small"``: the book's 100/10-record subsets in that folder; ``"book"``: the book's
    own web addresses (plain ``mnist_train.csv``/``mnist_test.csv``); a local directory; a
    ``file://`` URL of a directory; an ``http://``/``https://`` base URL (``.gz`` tried first).
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"source must be a non-empty string, not {source!r}")
    if source in ("shipped", "shipped-small"):
        names = _FULL if source == "shipped" else _SMALL
        pinned = tuple((n, d) for n, d in sorted(known_digests().items())
                       if n in names["train"] + names["test"])
        return Source(source, str(paths.data_dir()), False, names["train"], names["test"], pinned=pinned)
    if source == "book":
        return Source(source, BOOK_BASE_URL, True, _BOOK["train"], _BOOK["test"])
    parts = urllib.parse.urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        shown = redact_url(source)
        if not parts.hostname:
            raise FetchError(f"{shown}: no host in URL", shown)
        if parts.query or parts.fragment:
            raise FetchError(f"{shown}: a base URL takes no query or fragment", shown)
        auth = None
        if "@" in parts.netloc:  # credentials: sent as a header, never part of a URL we show
            auth = (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""))
            source = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        base = source if source.endswith("/") else source + "/"
        return Source(shown, base, True, _FULL["train"], _FULL["test"], auth)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"{source}: only local file:// URLs are supported", source)
        directory = Path(urllib.request.url2pathname(parts.path))
    elif len(scheme) > 1 and "://" in source:  # (one letter: a Windows drive)
        raise FetchError(f"{source}: unsupported URL scheme {scheme!r}", source)
    else:
        directory = Path(source).expanduser()
    directory = directory.resolve()
    if not directory.is_dir():
        raise FetchError(f"{source}: no such directory {directory}", source)
    return Source(source, str(directory), False, _FULL["train"], _FULL["test"])


def known_digests() -> dict[str, str]:
    """The digests listed in the shipped ``SHA256SUMS``, by file name (empty if absent).

    They pin the files of the ``shipped`` and ``shipped-small`` sources only."""
    try:
        text = (paths.data_dir() / "SHA256SUMS").read_text(encoding="utf-8")
    except OSError:
        return {}
    digests: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.strip().split(None, 1)
        if len(fields) == 2 and _HEX64.fullmatch(fields[0].lower()):
            digests[fields[1].lstrip("*")] = fields[0].lower()
    return digests


# ----------------------------------------------------------------------------- results


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
    :func:`mynn.data.max_data_bytes`) or not a regular file is refused at once.

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
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
            raise ValueError(f"expected_sha256[{key!r}] is not a hex SHA-256: {digest!r}")
        caller[key] = digest.lower()
    cache = Path(cache_dir if cache_dir is not None else paths.cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    opts = _Options(retries, backoff, timeout, progress, src.auth, limit)
    done = {}
    for split in SPLITS:
        names = tuple(_check_name(n) for n in src.candidates(split))
        if not names:
            raise FetchError(f"{src.spec}: no file names for {split!r}")
        expected = {n: caller.get(n, caller.get(split, src.pinned_digest(n))) for n in names}
        done[split] = _fetch_split(src, split, names, expected, cache, opts)
    return FetchResult(src, done["train"], done["test"])


@dataclass(frozen=True)
class _Options:
    retries: int
    backoff: float
    timeout: float
    progress: Progress | None
    auth: tuple[str, str] | None = None
    max_bytes: int = 1 << 30


def _fetch_split(src: Source, split: str, names: tuple[str, ...], expected: dict[str, str | None],
                 cache: Path, opts: _Options) -> FetchedFile:
    if src.remote:  # a known digest: an intact cached copy needs no transfer
        for name in names:
            if expected[name] is not None and (hit := _cached(cache, name, expected[name])) is not None:
                return FetchedFile(split, hit, expected[name], 0, True, True, src.url(name), src.origin(name))
    tried = []
    for name in names:
        url = src.url(name)
        try:
            if src.remote:
                path, digest, size = _download_with_retries(url, name, expected[name], cache, opts)
            else:
                path, digest, size = _copy_local(Path(src.location) / name, url, name,
                                                      expected[name], cache, opts)
        except _NotFound:
            tried.append(url)
            continue
        if expected[name] is None and urllib.parse.urlsplit(url).scheme == "http":
            warnings.warn(f"{url} came over plain http and no sha256 is known for {name}: "
                          f"unverified (got {digest})", UnverifiedDownloadWarning, stacklevel=3)
        return FetchedFile(split, path, digest, size, False, expected[name] is not None, url, src.origin(name))
    raise FetchError(f"{src.spec}: no {split} file found (tried {', '.join(tried)})", tried[-1])


# ----------------------------------------------------------------------------- cache


def _check_name(name: str) -> str:
    """``name`` if it is one plain file name that stays inside its folder, else FetchError."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "\x00" in name
            or PurePosixPath(name).name != name or PureWindowsPath(name).name != name
            or os.path.isabs(name)):
        raise FetchError(f"refusing file name {name!r}: it would escape the cache dir")
    return name


def _inside(cache: Path, path: Path) -> Path:
    if not path.resolve().is_relative_to(cache):
        raise FetchError(f"refusing path {path}: it is outside the cache dir {cache}")
    return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cached(cache: Path, name: str, digest: str) -> Path | None:
    """The cached file ``files/<digest>/<name>`` if its bytes have that digest (re-hashed), else None.
    A corrupt copy is removed."""
    path = _inside(cache, cache / "files" / digest / name)
    try:
        if path.is_file() and not path.is_symlink() and sha256_file(path) == digest:
            return path
    except OSError:
        pass
    if path.exists() or path.is_symlink():  # corrupt: drop it, it will be fetched again
        _unlink(path)
    return None


def forget(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove a cached file (``files/<sha256>/<name>``) and its folder if that is left empty:
    for bytes that were refused after they were cached (malformed data)."""
    cache = Path(cache_dir if cache_dir is not None else paths.cache_dir()).resolve()
    target = Path(path)
    if not target.resolve().is_relative_to(cache / "files"):
        raise ValueError(f"forget: {path} is not a file in the cache {cache}")
    _unlink(target)
    try:
        target.parent.rmdir()
    except OSError:
        pass


def _store(tmp: Path, digest: str, name: str, cache: Path) -> Path:
    """Move the checked temporary file into ``files/<digest>/<name>`` (replacing what was there)."""
    final = _inside(cache, cache / "files" / digest / name)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return final


def _naming(e: OSError, path: str | os.PathLike[str], detail: str = "") -> OSError:
    """The same error (same errno, so the same OSError subclass) with ``path`` in its message."""
    if e.errno is None:
        return OSError(f"{os.fspath(path)}: {e}{detail}")
    return OSError(e.errno, f"{os.fspath(path)}: {e.strerror or e}{detail}")


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class _TooLarge(Exception):
    """More bytes than the limit (never retried)."""


def _too_large_message(what: str, size: int | None, limit: int) -> str:
    got = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
    return (f"{what}: {got}, more than the {limit:,} bytes allowed for a data file "
            f"(raise the limit with {MAX_DATA_BYTES_ENV})")


def _stream(src: IO[bytes], url: str, name: str, expected: str | None, total: int | None,
            cache: Path, opts: _Options) -> tuple[Path, str, int]:
    """Copy ``src`` to a temporary file in the cache, hash it, check it, store it."""
    h = hashlib.sha256()
    done = reported = 0
    stored = False
    tmp = tempfile.NamedTemporaryFile(dir=cache, prefix=".fetch-", suffix=".part", delete=False)
    try:
        writing = False
        try:
            with tmp:
                while chunk := src.read(_CHUNK):
                    if done + len(chunk) > opts.max_bytes:
                        raise _TooLarge(_too_large_message(url, None, opts.max_bytes))
                    writing = True
                    tmp.write(chunk)
                    writing = False
                    h.update(chunk)
                    done += len(chunk)
                    if opts.progress is not None and done - reported >= _PROGRESS_EVERY:
                        reported = done
                        opts.progress(name, done, total)
                writing = True  # closing flushes the last bytes
        except OSError as e:
            if not writing:  # a network or source error: left as it is (it may be retried)
                raise
            # a full disk, a file size limit: say which file could not be written
            raise _naming(e, tmp.name, f" (writing {name} into the cache)") from e
        if total is not None and done != total:
            raise _ShortTransfer(f"truncated: got {done} of {total} bytes")
        if opts.progress is not None:
            opts.progress(name, done, total)
        digest = h.hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatchError(url, expected, digest)
        final = _store(Path(tmp.name), digest, name, cache)
        stored = True
        return final, digest, done
    finally:
        if not stored:
            _unlink(Path(tmp.name))


# ----------------------------------------------------------------------------- local


def _copy_local(path: Path, url: str, name: str, expected: str | None, cache: Path,
                opts: _Options) -> tuple[Path, str, int]:
    """Read a local file (regular, within the size limit) into the cache, whatever is cached."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise _NotFound(url) from None
    except OSError as e:
        raise FetchError(f"{path}: {e.strerror or e}", url) from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > opts.max_bytes:
        os.close(fd)
        if st.st_size > opts.max_bytes and stat.S_ISREG(st.st_mode):
            raise FetchError(_too_large_message(str(path), st.st_size, opts.max_bytes), url)
        raise FetchError(f"{path}: not a regular file ({file_kind(st.st_mode)}); a data file must be a "
                         "regular file", url)
    with open(fd, "rb") as f:
        try:
            return _stream(f, url, name, expected, st.st_size, cache, opts)
        except _ShortTransfer as e:  # the file changed while it was copied
            raise FetchError(f"{path}: changed while being copied ({e})", url) from e
        except _TooLarge:
            raise FetchError(_too_large_message(f"{path} (grew while read)", None, opts.max_bytes), url) from None
        except DigestMismatchError as e:  # name the user's file, not a file:// URL
            raise DigestMismatchError(str(path), e.expected, e.actual) from None
        except OSError as e:
            raise FetchError(f"{path}: {e}", url) from e


# ----------------------------------------------------------------------------- http


class _NoDowngradeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to http (or to any non-http(s) scheme)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        old = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new = urllib.parse.urlsplit(newurl).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new != "https"):
            if fp is not None:
                fp.close()
            raise FetchError(f"{req.full_url}: refusing redirect from {old} to {newurl}",
                             req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoDowngradeRedirectHandler())


def _retryable(e: BaseException) -> bool:
    if isinstance(e, urllib.error.HTTPError):
        return e.code >= 500 or e.code in (408, 429)
    if isinstance(e, urllib.error.URLError):
        return not isinstance(e.reason, ssl.SSLCertVerificationError)
    return isinstance(e, (_ShortTransfer, ConnectionError, TimeoutError,
                          http.client.HTTPException))


def _download_once(url: str, name: str, expected: str | None, cache: Path,
                   opts: _Options) -> tuple[Path, str, int]:
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT,
                                               "Accept-Encoding": "identity"})
    if opts.auth is not None:  # not forwarded on a redirect (to another host, perhaps)
        token = base64.b64encode(f"{opts.auth[0]}:{opts.auth[1]}".encode()).decode("ascii")
        req.add_unredirected_header("Authorization", f"Basic {token}")
    try:
        resp = _opener().open(req, timeout=opts.timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in (404, 410):
            raise _NotFound(url) from None
        raise
    with resp:
        if resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
            raise FetchError(f"{url}: unexpected Content-Encoding "
                             f"{resp.headers['Content-Encoding']!r}", url)
        length = resp.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        if total is not None and total > opts.max_bytes:
            raise FetchError(_too_large_message(url, total, opts.max_bytes) + " (by its Content-Length)", url)
        try:
            return _stream(resp, url, name, expected, total, cache, opts)
        except _TooLarge as e:
            raise FetchError(str(e), url) from None


def _download_with_retries(url: str, name: str, expected: str | None, cache: Path,
                           opts: _Options) -> tuple[Path, str, int]:
    attempts = opts.retries + 1
    for attempt in range(attempts):
        try:
            return _download_once(url, name, expected, cache, opts)
        except (_NotFound, FetchError):
            raise
        except Exception as e:  # noqa: BLE001 - sorted into retryable or not below
            if not _retryable(e):
                raise FetchError(f"{url}: {_describe(e)}", url) from e
            if attempt + 1 == attempts:
                raise FetchError(f"{url}: giving up after {attempts} attempts: {_describe(e)}",
                                 url) from e
            time.sleep(opts.backoff * 2**attempt)
    raise AssertionError("unreachable")


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{type(e).__name__}: {e.reason}"
    if isinstance(e, _ShortTransfer):
        return str(e)
    return f"{type(e).__name__}: {e}"
