"""Tests of mynn.cache: the digest-keyed download cache (through fetch, offline)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fetchkit import quiet_fetch, sha256
from tests.httpserver import HttpState
from mynn.cache import forget, sha256_file
from mynn.sources import SPLITS

def test_a_corrupt_cached_file_is_fetched_again(server: HttpState, synthetic: Path, cache: Path) -> None:
    server.serve_folder(synthetic)
    first = quiet_fetch(server.base, cache)
    data = first.train.path.read_bytes()
    first.train.path.write_bytes(data[:-1] + b"x")  # same size, wrong bytes
    first.test.path.unlink()
    before = server.count()
    second = quiet_fetch(server.base, cache)
    for split in SPLITS:
        assert not second[split].cache_hit and second[split].bytes_transferred > 0
        assert second[split].path == first[split].path
        assert sha256(second[split].path.read_bytes()) == second[split].sha256
    assert server.count() > before


def test_forget_removes_a_refused_file_and_its_empty_folder_only_inside_the_cache(synthetic: Path,
                                                                                   cache: Path) -> None:
    result = quiet_fetch(str(synthetic), cache)
    assert sha256_file(result.train.path) == sha256(result.train.path.read_bytes()) == result.train.sha256
    forget(result.train.path, cache)
    assert not result.train.path.exists() and not result.train.path.parent.exists()
    assert result.test.path.exists()
    with pytest.raises(ValueError, match="not a file in the cache"):
        forget(synthetic / "mnist_test.csv", cache)
    assert (synthetic / "mnist_test.csv").exists()
