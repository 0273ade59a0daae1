"""Copying one file into the download cache: over HTTP(S) with bounded retries, or from a local path.

HTTP: redirects are followed but never from https to http; network errors (connection errors,
timeouts, truncated bodies, HTTP 5xx/408/429) are retried with exponential backoff, anything
else (a 403, a digest mismatch, a full disk) is not; a 404/410 or a missing local file means
"try the next candidate name". Only regular files within :func:`mynn.limits.max_data_bytes`
are copied, and the bytes are hashed and checked on the way. This uses the standard library's
urllib rather than httpx, pooch or tenacity because ``mynn/`` is restricted to numpy, scipy
and the standard library.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import ssl
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mynn.cache import entry, staging
from mynn.files import naming
from mynn.limits import MAX_DATA_BYTES_ENV, file_kind
from mynn.sources import DigestMismatchError, FetchError

__all__ = ["NotFound", "Options", "Progress", "copy_local", "download"]

#: ``progress(filename, bytes_done, bytes_total_or_None)``
Progress = Callable[[str, int, int | None], None]

_CHUNK = 64 * 1024
_PROGRESS_EVERY = 1024 * 1024
_USER_AGENT = "mynn-fetch/1 (Python urllib)"


@dataclass(frozen=True)
class Options:
    """How to copy: retries, backoff (seconds), timeout, progress callback, auth, size limit."""

    retries: int
    backoff: float
    timeout: float
    progress: Progress | None
    auth: tuple[str, str] | None = None
    max_bytes: int = 1 << 30


class _ShortTransfer(Exception):
    """Fewer bytes arrived than the Content-Length promised (retryable)."""


class NotFound(Exception):
    """The candidate does not exist at the source (HTTP 404 / missing local file)."""



class _TooLarge(Exception):
    """More bytes than the limit (never retried)."""


def _too_large_message(what: str, size: int | None, limit: int) -> str:
    got = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
    return (f"{what}: {got}, more than the {limit:,} bytes allowed for a data file "
            f"(raise the limit with {MAX_DATA_BYTES_ENV})")


def _stream(src: IO[bytes], url: str, name: str, expected: str | None, total: int | None,
            cache: Path, opts: Options) -> tuple[Path, str, int]:
    """Copy ``src`` to a temporary file in the cache, hash it, check it, store it as
    ``files/<sha256>/<name>``; return (that path, the digest, the number of bytes)."""
    h = hashlib.sha256()
    done = reported = 0
    stage = staging(cache)
    with stage as tmp:
        writing = False
        try:
            with open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    if done + len(chunk) > opts.max_bytes:
                        raise _TooLarge(_too_large_message(url, None, opts.max_bytes))
                    writing = True
                    out.write(chunk)
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
            raise naming(e, tmp, f" (writing {name} into the cache)") from e
        if total is not None and done != total:
            raise _ShortTransfer(f"truncated: got {done} of {total} bytes")
        if opts.progress is not None:
            opts.progress(name, done, total)
        digest = h.hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatchError(url, expected, digest)
        stage.target = entry(cache, digest, name)  # moved there when the block ends
    return stage.target, digest, done


# ----------------------------------------------------------------------------- local


def copy_local(path: Path, url: str, name: str, expected: str | None, cache: Path,
                opts: Options) -> tuple[Path, str, int]:
    """Read a local file (regular, within the size limit) into the cache, whatever is cached."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise NotFound(url) from None
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
                   opts: Options) -> tuple[Path, str, int]:
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
            raise NotFound(url) from None
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


def download(url: str, name: str, expected: str | None, cache: Path,
                           opts: Options) -> tuple[Path, str, int]:
    attempts = opts.retries + 1
    for attempt in range(attempts):
        try:
            return _download_once(url, name, expected, cache, opts)
        except (NotFound, FetchError):
            raise
        except Exception as e:  # noqa: BLE001 - sorted into retryable or not below
            if not _retryable(e):
                raise FetchError(f"{url}: {_describe(e)}", url) from e
            if attempt + 1 == attempts:
                raise FetchError(f"{url}: giving up after {attempts} attempts: {_describe(e)}",
                                 url, transient=True) from e
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
