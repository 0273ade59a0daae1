"""Helpers of the download tests (test_sources, test_cache, test_download, test_fetch): small
generated CSV files, the cache folder, and the real HTTP server of httpserver.py as a fixture."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest

from tests.httpserver import start_http
from mynn import paths
from mynn.fetch import FetchResult, UnverifiedDownloadWarning, fetch

SHIPPED = paths.data_dir()
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "SHA256SUMS").is_file() or not (SHIPPED / "mnist_train_100.csv").is_file(),
    reason="the shipped data/mnist folder is not present",
)
needs_full = pytest.mark.skipif(
    not (SHIPPED / "mnist_train.csv.gz").is_file(), reason="the shipped full MNIST is not present"
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def csv_bytes(records: int, seed: int) -> bytes:
    """Deterministic records in the book's format: label then 784 pixels, comma separated."""
    lines = []
    for r in range(records):
        pixels = ",".join(str((seed * 7919 + r * 31 + i * 17) % 256) for i in range(784))
        lines.append(f"{(seed + r) % 10},{pixels}")
    return "\n".join(lines).encode()


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


def leftovers(cache: Path) -> list[Path]:
    """Temporary files left in the cache dir."""
    return [p for p in cache_files(cache) if p.suffix in (".part", ".tmp") or p.name.startswith(".fetch")]




@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state, stop = start_http()
    try:
        yield state
    finally:
        stop()


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A folder with small plain mnist_train.csv / mnist_test.csv files."""
    d = tmp_path / "synthetic"
    d.mkdir()
    (d / "mnist_train.csv").write_bytes(csv_bytes(30, 1))
    (d / "mnist_test.csv").write_bytes(csv_bytes(5, 2))
    return d


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def quiet_fetch(*args, **kwargs) -> FetchResult:
    """fetch() with the plain-http 'unverified' warning silenced."""
    kwargs.setdefault("backoff", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDownloadWarning)
        return fetch(*args, **kwargs)
