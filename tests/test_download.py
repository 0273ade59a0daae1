"""Tests of mynn.download: HTTP with bounded retries against a real server on 127.0.0.1,
no-downgrade redirects, size limits and local copies."""
from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.fetchkit import cache_files, csv_bytes, leftovers, quiet_fetch
from tests.httpserver import HttpState
from mynn import download
from mynn.fetch import fetch
from mynn.sources import FetchError

@pytest.mark.parametrize("failure", ["status:500", "status:503"])  # (a short body once: tests/faults)
def test_a_failure_once_is_retried(server: HttpState, synthetic: Path, cache: Path,
                                   failure: str) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv"] = [failure]
    result = quiet_fetch(server.base, cache, retries=3)
    data = (synthetic / "mnist_train.csv").read_bytes()
    assert result.train.path.read_bytes() == data and not result.train.cache_hit
    assert result.train.bytes_transferred == len(data)
    assert server.count("/mnist_train.csv") == 2
    assert leftovers(cache) == []


def test_a_timeout_once_is_retried(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_test.csv"] = ["sleep:1.0"]
    result = quiet_fetch(server.base, cache, retries=2, timeout=0.3)
    assert result.test.path.read_bytes() == (synthetic / "mnist_test.csv").read_bytes()
    assert server.count("/mnist_test.csv") == 2


def test_a_server_that_always_fails_with_500_fails_after_the_retries(
        server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv"] = ["status:500"] * 10
    with pytest.raises(FetchError, match="HTTP 500"):
        quiet_fetch(server.base, cache, retries=1)
    assert server.count("/mnist_train.csv") == 2 and cache_files(cache) == []


def test_403_is_not_retried(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv.gz"] = ["status:403"]
    with pytest.raises(FetchError, match="403") as info:
        quiet_fetch(server.base, cache, retries=3)
    assert info.value.url == server.base + "mnist_train.csv.gz"
    assert server.requests == ["/mnist_train.csv.gz"]
    assert cache_files(cache) == []


def test_404_on_every_candidate_names_the_urls(server: HttpState, cache: Path) -> None:
    with pytest.raises(FetchError, match="no train file found") as info:
        quiet_fetch(server.base, cache, retries=3)
    assert server.base + "mnist_train.csv.gz" in str(info.value)
    assert info.value.url == server.base + "mnist_train.csv"
    assert server.requests == ["/mnist_train.csv.gz", "/mnist_train.csv"]  # 404 is not retried


def test_http_to_http_redirect_is_followed(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic, prefix="/moved/")
    server.files["/mnist_test.csv"] = (synthetic / "mnist_test.csv").read_bytes()
    server.actions["/mnist_train.csv"] = ["redirect:/moved/mnist_train.csv"]
    result = quiet_fetch(server.base, cache)
    assert result.train.path.read_bytes() == (synthetic / "mnist_train.csv").read_bytes()
    assert result.train.url == server.base + "mnist_train.csv"  # what was asked for
    assert "/moved/mnist_train.csv" in server.requests


def test_https_to_http_redirect_is_refused() -> None:
    handler = download._NoDowngradeRedirectHandler()
    req = urllib.request.Request("https://example.invalid/mnist_train.csv")
    with pytest.raises(FetchError, match="refusing redirect") as info:
        handler.redirect_request(req, None, 302, "Found", {}, "http://example.invalid/mnist_train.csv")
    assert info.value.url == "https://example.invalid/mnist_train.csv"
    with pytest.raises(FetchError):
        handler.redirect_request(req, None, 302, "Found", {}, "ftp://example.invalid/x")
    # upgrades and same-scheme moves are fine
    ok = handler.redirect_request(req, None, 302, "Found", {}, "https://mirror.invalid/x.csv")
    assert ok is not None and ok.full_url == "https://mirror.invalid/x.csv"
    plain = urllib.request.Request("http://example.invalid/a")
    assert handler.redirect_request(plain, None, 301, "Moved", {}, "https://example.invalid/a") is not None


def test_progress_is_reported_about_every_mib_and_at_the_end(server: HttpState, cache: Path) -> None:
    big = csv_bytes(1500, 3)  # ~ 4 MB
    server.files["/mnist_train.csv"] = big
    server.files["/mnist_test.csv"] = csv_bytes(3, 4)
    calls: list[tuple[str, int, int | None]] = []
    quiet_fetch(server.base, cache, progress=lambda *a: calls.append(a))
    train = [c for c in calls if c[0] == "mnist_train.csv"]
    assert train[-1] == ("mnist_train.csv", len(big), len(big))
    assert len(train) <= len(big) // (1 << 20) + 1
    assert all(b[1] - a[1] >= 1 << 20 for a, b in zip(train[:-2], train[1:-1]))
    assert [c for c in calls if c[0] == "mnist_test.csv"][-1][1:] == (len(csv_bytes(3, 4)),) * 2


def test_a_failing_progress_callback_leaves_no_temp_file(server: HttpState, synthetic: Path,
                                                         cache: Path) -> None:
    server.serve_folder(synthetic)

    def boom(*args: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quiet_fetch(server.base, cache, progress=boom)
    assert cache_files(cache) == []


def test_special_files_and_huge_files_are_refused_at_once(tmp_path: Path, cache: Path) -> None:
    import os
    import time

    base = tmp_path / "kinds"
    cases = {}
    for kind in ("fifo", "device", "sparse", "directory"):
        d = base / kind
        d.mkdir(parents=True)
        (d / "mnist_test.csv").write_bytes(csv_bytes(5, 2))
        cases[kind] = d
    os.mkfifo(cases["fifo"] / "mnist_train.csv")
    os.symlink("/dev/zero", cases["device"] / "mnist_train.csv")
    with open(cases["sparse"] / "mnist_train.csv", "wb") as f:
        f.truncate(2 * 1024**3)  # 2 GB, no blocks on disk
    (cases["directory"] / "mnist_train.csv").mkdir()
    expected = {"fifo": "not a regular file (a FIFO)", "device": "not a regular file (a character device)",
                "sparse": "2,147,483,648 bytes, more than the 1,073,741,824 bytes allowed",
                "directory": "not a regular file (a directory)"}
    for kind, folder in cases.items():
        t0 = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch(str(folder), cache)
        assert time.monotonic() - t0 < 5  # refused before reading: nothing waits, nothing is read whole
        assert expected[kind] in str(info.value) and str(folder / "mnist_train.csv") in str(info.value)
        assert leftovers(cache) == [] and not list((cache / "files").glob("*/mnist_train.csv"))
    # the limit is the user's to raise (or lower)
    with pytest.raises(FetchError, match="MYNN_MAX_DATA_BYTES"):
        fetch(str(cases["fifo"].parent / "sparse"), cache, max_bytes=10)


def test_the_size_limit_holds_for_downloads(server: HttpState, synthetic: Path, cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server.serve_folder(synthetic)
    monkeypatch.setenv("MYNN_MAX_DATA_BYTES", "1000")
    with pytest.raises(FetchError, match="more than the 1,000 bytes allowed .*Content-Length"):
        quiet_fetch(server.base, cache)
    assert leftovers(cache) == [] and cache_files(cache) == []
