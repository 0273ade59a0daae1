"""Where the MNIST files come from: named sources, the digests they pin, safe names and URLs.

A *source* (:func:`resolve_source`) is ``"shipped"`` (the repo's ``data/mnist``),
``"shipped-small"`` (the book's 100/10-record subsets there), ``"book"`` (the book's own web
addresses), a local folder, a ``file://`` URL or an ``http(s)://`` base URL. Known digests
belong to the named sources they came with: the shipped ``SHA256SUMS`` pins ``shipped`` and
``shipped-small`` only, never a file of the same name elsewhere. Nothing here reads a data file
or the network. :class:`FetchError` and :class:`DigestMismatchError` are the errors of the
whole download (:mod:`mynn.fetch` is its entry point).
"""
from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from mynn import paths

__all__ = ["BOOK_BASE_URL", "DigestMismatchError", "FetchError", "SPLITS", "Source", "check_name",
           "is_sha256", "known_digests", "redact_url", "resolve_source"]

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

#: Where the book's own repository keeps its MNIST CSV files.
BOOK_BASE_URL = (
    "https://raw.githubusercontent.com/makeyourownneuralnetwork/"
    "makeyourownneuralnetwork/master/mnist_dataset/"
)

_FULL = {"train": ("mnist_train.csv.gz", "mnist_train.csv"), "test": ("mnist_test.csv.gz", "mnist_test.csv")}
_SMALL = {"train": ("mnist_train_100.csv",), "test": ("mnist_test_10.csv",)}
_BOOK = {"train": ("mnist_train.csv",), "test": ("mnist_test.csv",)}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: str) -> bool:
    """Whether ``text`` is a lower-case hex SHA-256."""
    return bool(_HEX64.fullmatch(text))


class FetchError(Exception):
    """A file could not be fetched (``url`` names it when known); ``transient``: the server or
    the network failed in a way a later attempt may not (retried here until the retries ran out)."""

    def __init__(self, message: str, url: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.transient = transient


class DigestMismatchError(FetchError):
    """The bytes' SHA-256 differs from the known digest; never retried, never cached."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(f"{url}: sha256 mismatch: expected {expected}, got {actual}", url)
        self.expected = expected
        self.actual = actual



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
        name = check_name(filename)
        return self.url(name) if self.remote else str(Path(self.location) / name)

    def candidates(self, split: str) -> tuple[str, ...]:
        """The file names to try for ``split`` ("train" or "test"), first choice first."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        return self.train if split == "train" else self.test

    def url(self, filename: str) -> str:
        """The URL of one file of this source (``file://`` for local ones)."""
        name = check_name(filename)
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


def check_name(name: str) -> str:
    """``name`` if it is one plain file name that stays inside its folder, else FetchError."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "\x00" in name
            or PurePosixPath(name).name != name or PureWindowsPath(name).name != name
            or os.path.isabs(name)):
        raise FetchError(f"refusing file name {name!r}: it would escape the cache dir")
    return name
