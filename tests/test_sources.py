"""Tests of mynn.sources: naming sources, their pinned digests, safe file names."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fetchkit import SHIPPED, cache_files, needs_shipped
from mynn.fetch import fetch
from mynn.sources import FetchError, Source, known_digests, resolve_source

def test_resolve_source_kinds(tmp_path: Path) -> None:
    shipped = resolve_source("shipped")
    assert not shipped.remote and Path(shipped.location) == SHIPPED
    assert shipped.candidates("train") == ("mnist_train.csv.gz", "mnist_train.csv")
    assert shipped.candidates("test") == ("mnist_test.csv.gz", "mnist_test.csv")
    small = resolve_source("shipped-small")
    assert (small.train, small.test) == (("mnist_train_100.csv",), ("mnist_test_10.csv",))
    book = resolve_source("book")
    assert book.remote and book.url("mnist_train.csv") == (
        "https://raw.githubusercontent.com/makeyourownneuralnetwork/makeyourownneuralnetwork/"
        "master/mnist_dataset/mnist_train.csv")
    assert book.candidates("test") == ("mnist_test.csv",)
    web = resolve_source("http://example.invalid/mnist")
    assert web.location == "http://example.invalid/mnist/"
    assert web.url("mnist_test.csv.gz") == "http://example.invalid/mnist/mnist_test.csv.gz"
    local = resolve_source(str(tmp_path))
    assert not local.remote and Path(local.location) == tmp_path.resolve()
    assert resolve_source(tmp_path.as_uri()).location == local.location
    assert local.url("mnist_train.csv") == (tmp_path.resolve() / "mnist_train.csv").as_uri()
    with pytest.raises(FetchError, match="no such directory"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(FetchError, match="scheme"):
        resolve_source("ftp://example.invalid/mnist/")
    with pytest.raises(FetchError, match="local"):
        resolve_source("file://otherhost/data/")
    with pytest.raises(ValueError):
        local.candidates("validation")


@needs_shipped
def test_known_digests_come_from_sha256sums() -> None:
    known = known_digests()
    for line in (SHIPPED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert known[name] == digest


@pytest.mark.parametrize("name", ["../evil.csv", "../../evil.csv", "sub/../../evil.csv", "..", "/etc/passwd",
                                  "EVIL_ABS", "sub/mnist_train.csv", "..\\evil.csv", ""])
def test_names_that_escape_the_cache_are_refused(synthetic: Path, tmp_path: Path, name: str) -> None:
    cache = tmp_path / "deep" / "cache"
    (tmp_path / "evil.csv").write_bytes(b"1,2,3")
    name = str(tmp_path / "evil.csv") if name == "EVIL_ABS" else name
    src = Source("evil", str(synthetic), False, (name,), ("mnist_test.csv",))
    with pytest.raises(FetchError, match="would escape the cache dir"):
        fetch(src, cache)
    assert cache_files(tmp_path / "deep") == []
