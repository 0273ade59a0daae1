"""Tests of mynn.fetch, the entry point of the download: offline, with a real HTTP server on
127.0.0.1 (tests/httpserver.py) and generated files; shipped-data tests are skipped without data/mnist."""
from __future__ import annotations

import gzip
import os
import shutil
import warnings
from pathlib import Path

import pytest

from tests.fetchkit import SHIPPED, cache_files, csv_bytes, leftovers, needs_full, needs_shipped, quiet_fetch, sha256
from tests.httpserver import HttpState
from mynn.fetch import UnverifiedDownloadWarning, fetch
from mynn.sources import SPLITS, DigestMismatchError, FetchError, known_digests, resolve_source

@needs_shipped
def test_http_download_of_the_book_subsets_then_cache_hit(server: HttpState, tmp_path: Path,
                                                          cache: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(SHIPPED / "mnist_train_100.csv", served / "mnist_train.csv")
    shutil.copyfile(SHIPPED / "mnist_test_10.csv", served / "mnist_test.csv")
    server.serve_folder(served)
    known = known_digests()
    expected = {"mnist_train.csv": known["mnist_train_100.csv"],
                "mnist_test.csv": known["mnist_test_10.csv"]}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified download must not warn
        first = fetch(server.base, cache, expected_sha256=expected, backoff=0.01)
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
    again = fetch(server.base, cache, expected_sha256=expected, backoff=0.01)
    assert server.count() == 4  # not one request more
    for split in SPLITS:
        assert again[split].cache_hit and again[split].bytes_transferred == 0 and again[split].verified
        assert again[split].path == first[split].path

    # no digest known for a URL: it is identified by the bytes read from it now, so it is read
    # again (a URL is a name, and the bytes behind a name can change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDownloadWarning)
        second = fetch(server.base, cache, backoff=0.01)
    assert server.count() == 8
    for split in SPLITS:
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
    with pytest.warns(UnverifiedDownloadWarning, match="unverified"):
        result = fetch(server.base, cache, backoff=0.01)
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


def test_a_digest_given_by_file_name_or_by_split_is_checked(
        server: HttpState, synthetic: Path, cache: Path) -> None:
    """(A pinned digest that does not match, not retried, not replaced by another candidate:
    tests/faults/test_fault_download.py.)"""
    server.serve_folder(synthetic)
    wrong = "0" * 64
    with pytest.raises(DigestMismatchError) as info:
        fetch(server.base, cache, expected_sha256={"mnist_train.csv": wrong}, retries=3, backoff=0.01)
    err = info.value
    actual = sha256((synthetic / "mnist_train.csv").read_bytes())
    assert err.url == server.base + "mnist_train.csv"
    assert (err.expected, err.actual) == (wrong, actual)
    assert wrong in str(err) and actual in str(err) and err.url in str(err)
    assert server.count("/mnist_train.csv") == 1
    assert cache_files(cache) == []  # no temp file, no cached file, no index entry
    # a digest given by split works the same way
    with pytest.raises(DigestMismatchError):
        quiet_fetch(server.base, cache, expected_sha256={"test": wrong})
    assert leftovers(cache) == [] and server.count("/mnist_test.csv") == 1


def test_bad_expected_digests_are_refused(synthetic: Path, cache: Path) -> None:
    with pytest.raises(ValueError, match="hex SHA-256"):
        fetch(str(synthetic), cache, expected_sha256={"train": "../../" + "a" * 58})


def test_a_local_directory_is_copied_into_the_cache(synthetic: Path, cache: Path) -> None:
    result = fetch(str(synthetic), cache)
    data = (synthetic / "mnist_train.csv").read_bytes()
    assert result.train.path == cache.resolve() / "files" / sha256(data) / "mnist_train.csv"
    assert result.train.path.read_bytes() == data
    assert result.train.bytes_transferred == len(data) and not result.train.cache_hit
    assert not result.train.verified
    assert result.train.url == (synthetic / "mnist_train.csv").resolve().as_uri()
    assert result.train.origin == str((synthetic / "mnist_train.csv").resolve())
    # a local source is read again on every fetch: the digest is that of the bytes there now
    again = fetch(str(synthetic), cache)
    assert again.train.path == result.train.path and again.train.bytes_transferred == len(data)
    (synthetic / "mnist_test.csv").write_bytes(csv_bytes(6, 9))
    third = fetch(str(synthetic), cache)
    assert third.train.sha256 == result.train.sha256
    assert third.test.path.read_bytes() == csv_bytes(6, 9) and third.test.sha256 == sha256(csv_bytes(6, 9))
    assert leftovers(cache) == []


def test_a_changed_file_of_the_same_size_and_mtime_is_noticed(synthetic: Path, cache: Path) -> None:
    """One byte changed, the size the same, the mtime set back: the new bytes are what is fetched."""
    train = synthetic / "mnist_train.csv"
    first = fetch(str(synthetic), cache)
    st = train.stat()
    data = bytearray(train.read_bytes())
    data[2] = ord("9") if data[2] != ord("9") else ord("8")  # a pixel digit of the first record
    train.write_bytes(bytes(data))
    os.utime(train, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert train.stat().st_size == st.st_size and train.stat().st_mtime_ns == st.st_mtime_ns
    second = fetch(str(synthetic), cache)
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
        result = fetch(spec, cache)
        assert (result.train.sha256, result.test.sha256) == (sha256(train_gz), sha256(test_gz))
        assert not result.train.verified and not result.test.verified
        assert resolve_source(spec).pinned == ()
    assert resolve_source("shipped").pinned_digest("mnist_train.csv.gz") == known_digests()["mnist_train.csv.gz"]
    assert resolve_source("shipped-small").pinned_digest("mnist_train.csv.gz") is None
    assert resolve_source("book").pinned == ()


def test_a_file_url_works_and_prefers_gz(synthetic: Path, cache: Path) -> None:
    gz = gzip.compress((synthetic / "mnist_test.csv").read_bytes())
    (synthetic / "mnist_test.csv.gz").write_bytes(gz)
    result = fetch(synthetic.as_uri(), cache, expected_sha256={"mnist_test.csv.gz": sha256(gz)})
    assert result.test.path.name == "mnist_test.csv.gz" and result.test.path.read_bytes() == gz
    assert result.train.path.name == "mnist_train.csv"
    assert result.test.url.startswith("file://")


def test_a_missing_local_file_is_a_fetch_error(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError, match="no train file found"):
        fetch(str(empty), cache)
    assert leftovers(cache) == []


@needs_shipped
def test_the_shipped_small_source_verifies_its_pinned_digests(cache: Path) -> None:
    known = known_digests()
    result = fetch("shipped-small", cache)
    assert result.train.path.name == "mnist_train_100.csv"
    assert result.train.sha256 == known["mnist_train_100.csv"] and result.train.verified
    assert result.test.sha256 == known["mnist_test_10.csv"] and result.test.verified
    assert result.train.path.read_bytes() == (SHIPPED / "mnist_train_100.csv").read_bytes()
    again = fetch("shipped-small", cache)
    assert again.train.path == result.train.path and again.train.verified


@needs_shipped
@needs_full
def test_the_shipped_full_files_verify_against_sha256sums(cache: Path) -> None:
    known = known_digests()
    calls: list[tuple[str, int, int | None]] = []
    result = fetch(cache_dir=cache, progress=lambda *a: calls.append(a))  # "shipped" is the default
    for split, name in (("train", "mnist_train.csv.gz"), ("test", "mnist_test.csv.gz")):
        got = result[split]
        assert got.path == cache.resolve() / "files" / known[name] / name
        assert got.sha256 == known[name] and got.verified and not got.cache_hit
        assert got.bytes_transferred == (SHIPPED / name).stat().st_size
        assert got.url == (SHIPPED / name).as_uri()
    assert calls[-1] == ("mnist_test.csv.gz",) + ((SHIPPED / "mnist_test.csv.gz").stat().st_size,) * 2
    assert leftovers(cache) == []
    # a file with a known digest is never found by that digest for another source
    with pytest.raises(FetchError, match="127.0.0.1:9"):
        fetch("http://127.0.0.1:9/unreachable/", cache, retries=0)
