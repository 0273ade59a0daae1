"""Tests of mynn.fetch: offline, with a real HTTP server on 127.0.0.1.

Tests that need the shipped data/mnist folder are skipped when it is absent; the others
generate their own small CSV files.
"""
from __future__ import annotations

import gzip
import hashlib
import shutil
import urllib.request
import warnings
from pathlib import Path

import pytest

from httpserver import HttpState, start_http
from mynn import fetch as F
from mynn import paths

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


# ----------------------------------------------------------------------------- server


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


def quiet_fetch(*args, **kwargs) -> F.FetchResult:
    """fetch() with the plain-http 'unverified' warning silenced."""
    kwargs.setdefault("backoff", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.UnverifiedDownloadWarning)
        return F.fetch(*args, **kwargs)


# ----------------------------------------------------------------------------- sources


def test_resolve_source_kinds(tmp_path: Path) -> None:
    shipped = F.resolve_source("shipped")
    assert not shipped.remote and Path(shipped.location) == SHIPPED
    assert shipped.candidates("train") == ("mnist_train.csv.gz", "mnist_train.csv")
    assert shipped.candidates("test") == ("mnist_test.csv.gz", "mnist_test.csv")
    small = F.resolve_source("shipped-small")
    assert (small.train, small.test) == (("mnist_train_100.csv",), ("mnist_test_10.csv",))
    book = F.resolve_source("book")
    assert book.remote and book.url("mnist_train.csv") == (
        "https://raw.githubusercontent.com/makeyourownneuralnetwork/makeyourownneuralnetwork/"
        "master/mnist_dataset/mnist_train.csv")
    assert book.candidates("test") == ("mnist_test.csv",)
    web = F.resolve_source("http://example.invalid/mnist")
    assert web.location == "http://example.invalid/mnist/"
    assert web.url("mnist_test.csv.gz") == "http://example.invalid/mnist/mnist_test.csv.gz"
    local = F.resolve_source(str(tmp_path))
    assert not local.remote and Path(local.location) == tmp_path.resolve()
    assert F.resolve_source(tmp_path.as_uri()).location == local.location
    assert local.url("mnist_train.csv") == (tmp_path.resolve() / "mnist_train.csv").as_uri()
    with pytest.raises(F.FetchError, match="no such directory"):
        F.resolve_source(str(tmp_path / "missing"))
    with pytest.raises(F.FetchError, match="scheme"):
        F.resolve_source("ftp://example.invalid/mnist/")
    with pytest.raises(F.FetchError, match="local"):
        F.resolve_source("file://otherhost/data/")
    with pytest.raises(ValueError):
        local.candidates("validation")


@needs_shipped
def test_known_digests_come_from_sha256sums() -> None:
    known = F.known_digests()
    for line in (SHIPPED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert known[name] == digest


# ----------------------------------------------------------------------------- http


@needs_shipped
def test_http_download_of_the_book_subsets_then_cache_hit(server: HttpState, tmp_path: Path,
                                                          cache: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(SHIPPED / "mnist_train_100.csv", served / "mnist_train.csv")
    shutil.copyfile(SHIPPED / "mnist_test_10.csv", served / "mnist_test.csv")
    server.serve_folder(served)
    known = F.known_digests()
    expected = {"mnist_train.csv": known["mnist_train_100.csv"],
                "mnist_test.csv": known["mnist_test_10.csv"]}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified download must not warn
        first = F.fetch(server.base, cache, expected_sha256=expected, backoff=0.01)
    # .gz is asked for first (404), then the plain file
    assert server.requests == ["/mnist_train.csv.gz", "/mnist_train.csv",
                               "/mnist_test.csv.gz", "/mnist_test.csv"]
    for split, name, data in (("train", "mnist_train.csv", (served / "mnist_train.csv").read_bytes()),
                              ("test", "mnist_test.csv", (served / "mnist_test.csv").read_bytes())):
        got = first[split]
        assert got.path == cache.resolve() / "files" / sha256(data) / name
        assert got.path.read_bytes() == data
        assert got.sha256 == sha256(data) == expected[name]
        assert got.bytes_transferred == len(data)
        assert not got.cache_hit and got.verified
        assert got.url == server.base + name
    assert leftovers(cache) == []

    # the same digests known: intact cached copies are used, nothing is transferred
    again = F.fetch(server.base, cache, expected_sha256=expected, backoff=0.01)
    assert server.count() == 4  # not one request more
    for split in F.SPLITS:
        assert again[split].cache_hit and again[split].bytes_transferred == 0 and again[split].verified
        assert again[split].path == first[split].path

    # no digest known for a URL: it is identified by the bytes read from it now, so it is read
    # again (a URL is a name, and the bytes behind a name can change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.UnverifiedDownloadWarning)
        second = F.fetch(server.base, cache, backoff=0.01)
    assert server.count() == 8
    for split in F.SPLITS:
        assert not second[split].cache_hit and second[split].bytes_transferred > 0
        assert second[split].path == first[split].path
        assert second[split].sha256 == first[split].sha256
        assert not second[split].verified  # nothing known to check against this time


def test_a_changed_url_is_noticed(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    first = quiet_fetch(server.base, cache)
    changed = csv_bytes(30, 9)
    server.files["/mnist_train.csv"] = changed
    second = quiet_fetch(server.base, cache)
    assert second.train.sha256 == sha256(changed) != first.train.sha256
    assert second.train.path.read_bytes() == changed


def test_unverified_plain_http_download_warns(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    with pytest.warns(F.UnverifiedDownloadWarning, match="unverified"):
        result = F.fetch(server.base, cache, backoff=0.01)
    assert not result.train.verified and not result.test.verified
    assert result.train.sha256 == sha256((synthetic / "mnist_train.csv").read_bytes())


def test_gz_is_preferred_over_plain(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    gz = gzip.compress((synthetic / "mnist_train.csv").read_bytes())
    server.files["/mnist_train.csv.gz"] = gz
    result = quiet_fetch(server.base, cache, expected_sha256={"mnist_train.csv.gz": sha256(gz)})
    assert result.train.verified
    assert result.train.path.name == "mnist_train.csv.gz" and result.train.path.read_bytes() == gz
    assert result.test.path.name == "mnist_test.csv"
    assert server.count("/mnist_train.csv") == 0


def test_digest_mismatch_raises_is_not_retried_and_caches_nothing(
        server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    wrong = "0" * 64
    with pytest.raises(F.DigestMismatchError) as info:
        F.fetch(server.base, cache, expected_sha256={"mnist_train.csv": wrong}, retries=3, backoff=0.01)
    err = info.value
    actual = sha256((synthetic / "mnist_train.csv").read_bytes())
    assert err.url == server.base + "mnist_train.csv"
    assert (err.expected, err.actual) == (wrong, actual)
    assert wrong in str(err) and actual in str(err) and err.url in str(err)
    assert server.count("/mnist_train.csv") == 1
    assert cache_files(cache) == []  # no temp file, no cached file, no index entry
    # a digest given by split works the same way
    with pytest.raises(F.DigestMismatchError):
        quiet_fetch(server.base, cache, expected_sha256={"test": wrong})
    assert leftovers(cache) == [] and server.count("/mnist_test.csv") == 1


@pytest.mark.parametrize("failure", ["status:500", "short", "status:503"])
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


def test_a_connection_that_always_drops_fails_after_the_retries(
        server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv"] = ["short"] * 10
    with pytest.raises(F.FetchError, match="giving up after 3 attempts") as info:
        quiet_fetch(server.base, cache, retries=2)
    assert not isinstance(info.value, F.DigestMismatchError)
    assert info.value.url == server.base + "mnist_train.csv"
    assert server.base + "mnist_train.csv" in str(info.value)
    assert server.count("/mnist_train.csv") == 3
    assert cache_files(cache) == []


def test_a_server_that_always_fails_with_500_fails_after_the_retries(
        server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv"] = ["status:500"] * 10
    with pytest.raises(F.FetchError, match="HTTP 500"):
        quiet_fetch(server.base, cache, retries=1)
    assert server.count("/mnist_train.csv") == 2 and cache_files(cache) == []


def test_403_is_not_retried(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    server.actions["/mnist_train.csv.gz"] = ["status:403"]
    with pytest.raises(F.FetchError, match="403") as info:
        quiet_fetch(server.base, cache, retries=3)
    assert info.value.url == server.base + "mnist_train.csv.gz"
    assert server.requests == ["/mnist_train.csv.gz"]
    assert cache_files(cache) == []


def test_404_on_every_candidate_names_the_urls(server: HttpState, cache: Path) -> None:
    with pytest.raises(F.FetchError, match="no train file found") as info:
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
    handler = F._NoDowngradeRedirectHandler()
    req = urllib.request.Request("https://example.invalid/mnist_train.csv")
    with pytest.raises(F.FetchError, match="refusing redirect") as info:
        handler.redirect_request(req, None, 302, "Found", {}, "http://example.invalid/mnist_train.csv")
    assert info.value.url == "https://example.invalid/mnist_train.csv"
    with pytest.raises(F.FetchError):
        handler.redirect_request(req, None, 302, "Found", {}, "ftp://example.invalid/x")
    # upgrades and same-scheme moves are fine
    ok = handler.redirect_request(req, None, 302, "Found", {}, "https://mirror.invalid/x.csv")
    assert ok is not None and ok.full_url == "https://mirror.invalid/x.csv"
    plain = urllib.request.Request("http://example.invalid/a")
    assert handler.redirect_request(plain, None, 301, "Moved", {}, "https://example.invalid/a") is not None


def test_the_opener_uses_the_refusing_handler() -> None:
    opener = F._opener()
    assert any(isinstance(h, F._NoDowngradeRedirectHandler) for h in opener.handlers)
    assert not any(type(h) is urllib.request.HTTPRedirectHandler for h in opener.handlers)


def test_a_corrupt_cached_file_is_fetched_again(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    first = quiet_fetch(server.base, cache)
    data = first.train.path.read_bytes()
    first.train.path.write_bytes(data[:-1] + b"x")  # same size, wrong bytes
    first.test.path.unlink()
    before = server.count()
    second = quiet_fetch(server.base, cache)
    for split in F.SPLITS:
        assert not second[split].cache_hit and second[split].bytes_transferred > 0
        assert second[split].path == first[split].path
        assert sha256(second[split].path.read_bytes()) == second[split].sha256
    assert server.count() > before


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


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name", ["../evil.csv", "..", "/etc/passwd", "sub/mnist_train.csv",
                                  "..\\evil.csv", ""])
def test_names_that_escape_the_cache_are_refused(synthetic: Path, tmp_path: Path, name: str) -> None:
    cache = tmp_path / "deep" / "cache"
    (tmp_path / "evil.csv").write_bytes(b"1,2,3")
    src = F.Source("evil", str(synthetic), False, (name,), ("mnist_test.csv",))
    with pytest.raises(F.FetchError, match="escape"):
        F.fetch(src, cache)
    assert cache_files(tmp_path / "deep") == []


def test_bad_expected_digests_are_refused(synthetic: Path, cache: Path) -> None:
    with pytest.raises(ValueError, match="hex SHA-256"):
        F.fetch(str(synthetic), cache, expected_sha256={"train": "../../" + "a" * 58})


# ----------------------------------------------------------------------------- local sources


def test_a_local_directory_is_copied_into_the_cache(synthetic: Path, cache: Path) -> None:
    result = F.fetch(str(synthetic), cache)
    data = (synthetic / "mnist_train.csv").read_bytes()
    assert result.train.path == cache.resolve() / "files" / sha256(data) / "mnist_train.csv"
    assert result.train.path.read_bytes() == data
    assert result.train.bytes_transferred == len(data) and not result.train.cache_hit
    assert not result.train.verified
    assert result.train.url == (synthetic / "mnist_train.csv").resolve().as_uri()
    assert result.train.origin == str((synthetic / "mnist_train.csv").resolve())
    # a local source is read again on every fetch: the digest is that of the bytes there now
    again = F.fetch(str(synthetic), cache)
    assert again.train.path == result.train.path and again.train.bytes_transferred == len(data)
    (synthetic / "mnist_test.csv").write_bytes(csv_bytes(6, 9))
    third = F.fetch(str(synthetic), cache)
    assert third.train.sha256 == result.train.sha256
    assert third.test.path.read_bytes() == csv_bytes(6, 9) and third.test.sha256 == sha256(csv_bytes(6, 9))
    assert leftovers(cache) == []


def test_a_changed_file_of_the_same_size_and_mtime_is_noticed(synthetic: Path, cache: Path) -> None:
    """One byte changed, the size the same, the mtime set back: the new bytes are what is fetched."""
    import os

    train = synthetic / "mnist_train.csv"
    first = F.fetch(str(synthetic), cache)
    st = train.stat()
    data = bytearray(train.read_bytes())
    data[2] = ord("9") if data[2] != ord("9") else ord("8")  # a pixel digit of the first record
    train.write_bytes(bytes(data))
    os.utime(train, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert train.stat().st_size == st.st_size and train.stat().st_mtime_ns == st.st_mtime_ns
    second = F.fetch(str(synthetic), cache)
    assert second.train.sha256 == sha256(bytes(data)) != first.train.sha256
    assert second.train.path.read_bytes() == bytes(data)


def test_the_shipped_digests_pin_only_the_shipped_sources(tmp_path: Path, cache: Path) -> None:
    """A user's own mnist_train.csv.gz is not checked against the shipped file of that name."""
    folder = tmp_path / "own"
    folder.mkdir()
    train_gz = gzip.compress(csv_bytes(20, 3), mtime=0)
    test_gz = gzip.compress(csv_bytes(5, 4), mtime=0)
    (folder / "mnist_train.csv.gz").write_bytes(train_gz)
    (folder / "mnist_test.csv.gz").write_bytes(test_gz)
    for spec in (str(folder), folder.as_uri()):
        result = F.fetch(spec, cache)
        assert (result.train.sha256, result.test.sha256) == (sha256(train_gz), sha256(test_gz))
        assert not result.train.verified and not result.test.verified
        assert F.resolve_source(spec).pinned == ()
    assert F.resolve_source("shipped").pinned_digest("mnist_train.csv.gz") == F.known_digests()["mnist_train.csv.gz"]
    assert F.resolve_source("shipped-small").pinned_digest("mnist_train.csv.gz") is None
    assert F.resolve_source("book").pinned == ()


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
        with pytest.raises(F.FetchError) as info:
            F.fetch(str(folder), cache)
        assert time.monotonic() - t0 < 5  # refused before reading: nothing waits, nothing is read whole
        assert expected[kind] in str(info.value) and str(folder / "mnist_train.csv") in str(info.value)
        assert leftovers(cache) == [] and not list((cache / "files").glob("*/mnist_train.csv"))
    # the limit is the user's to raise (or lower)
    with pytest.raises(F.FetchError, match="MYNN_MAX_DATA_BYTES"):
        F.fetch(str(cases["fifo"].parent / "sparse"), cache, max_bytes=10)


def test_the_size_limit_holds_for_downloads(server: HttpState, synthetic: Path, cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server.serve_folder(synthetic)
    monkeypatch.setenv("MYNN_MAX_DATA_BYTES", "1000")
    with pytest.raises(F.FetchError, match="more than the 1,000 bytes allowed .*Content-Length"):
        quiet_fetch(server.base, cache)
    assert leftovers(cache) == [] and cache_files(cache) == []


def test_a_file_url_works_and_prefers_gz(synthetic: Path, cache: Path) -> None:
    gz = gzip.compress((synthetic / "mnist_test.csv").read_bytes())
    (synthetic / "mnist_test.csv.gz").write_bytes(gz)
    result = F.fetch(synthetic.as_uri(), cache, expected_sha256={"mnist_test.csv.gz": sha256(gz)})
    assert result.test.path.name == "mnist_test.csv.gz" and result.test.path.read_bytes() == gz
    assert result.train.path.name == "mnist_train.csv"
    assert result.test.url.startswith("file://")


def test_a_missing_local_file_is_a_fetch_error(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(F.FetchError, match="no train file found"):
        F.fetch(str(empty), cache)
    assert leftovers(cache) == []


@needs_shipped
def test_the_shipped_small_source_verifies_its_pinned_digests(cache: Path) -> None:
    known = F.known_digests()
    result = F.fetch("shipped-small", cache)
    assert result.train.path.name == "mnist_train_100.csv"
    assert result.train.sha256 == known["mnist_train_100.csv"] and result.train.verified
    assert result.test.sha256 == known["mnist_test_10.csv"] and result.test.verified
    assert result.train.path.read_bytes() == (SHIPPED / "mnist_train_100.csv").read_bytes()
    again = F.fetch("shipped-small", cache)
    assert again.train.path == result.train.path and again.train.verified


@needs_shipped
@needs_full
def test_the_shipped_full_files_verify_against_sha256sums(cache: Path) -> None:
    known = F.known_digests()
    calls: list[tuple[str, int, int | None]] = []
    result = F.fetch(cache_dir=cache, progress=lambda *a: calls.append(a))  # "shipped" is the default
    for split, name in (("train", "mnist_train.csv.gz"), ("test", "mnist_test.csv.gz")):
        got = result[split]
        assert got.path == cache.resolve() / "files" / known[name] / name
        assert got.sha256 == known[name] and got.verified and not got.cache_hit
        assert got.bytes_transferred == (SHIPPED / name).stat().st_size
        assert got.url == (SHIPPED / name).as_uri()
    assert calls[-1] == ("mnist_test.csv.gz",) + ((SHIPPED / "mnist_test.csv.gz").stat().st_size,) * 2
    assert leftovers(cache) == []
    # a file with a known digest is never found by that digest for another source
    with pytest.raises(F.FetchError, match="127.0.0.1:9"):
        F.fetch("http://127.0.0.1:9/unreachable/", cache, retries=0)
