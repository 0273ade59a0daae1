"""mynn.prepare: parsed arrays keyed by the file's digest, and the one prepared-data type
(PreparedData: its label, its head subsets, preparing a fetch result)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from mynn import paths
from mynn.dataset import DataFormatError
from mynn.fetch import fetch
from mynn.prepare import Prepared, PreparedData, prepare_fetched


def part(known_as, records=10) -> Prepared:
    return Prepared(paths.data_dir(), "d" * 64, records, known_as, False)


@pytest.mark.parametrize("train, test, label", [
    (part("mnist_train", 60000), part("mnist_test", 10000), "full"),
    (part("mnist_train_100", 100), part("mnist_test_10"), "small"),
    (part("mnist_train", 60000), part("mnist_test_10"), "n60000-10"),
    (part(None, 6000), part(None, 1000), "n6000-1000"),
])
def test_the_label_names_known_pairs_and_counts_otherwise(train, test, label):
    assert PreparedData("x", train, test).label == label


def test_prepare_fetched_then_head_stores_a_subset_like_any_dataset(tmp_path):
    data = prepare_fetched(fetch("shipped-small", tmp_path), tmp_path)
    assert (data.label, data.verified, data.source) == ("small", True, "shipped-small")
    assert data.train.origin == str(paths.data_dir() / "mnist_train_100.csv")
    head = data.head(30, 4, tmp_path)
    assert (head.train.records, head.test.records, head.label) == (30, 4, "n30-4")
    assert head.train.directory == tmp_path / "arrays" / head.train.digest and head.train.file_sha256 is None
    (train, test), (htrain, htest) = data.load(), head.load()
    np.testing.assert_array_equal(htrain.pixels, train.pixels[:30])
    np.testing.assert_array_equal(htest.labels, test.labels[:4])
    assert data.head(30, 4, tmp_path) == head  # the second time from the store
    assert data.head(None, None, tmp_path) == data


def test_a_refused_file_leaves_neither_arrays_nor_the_downloaded_bytes(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    lines = (paths.data_dir() / "mnist_train_100.csv").read_text().splitlines(keepends=True)
    lines[4] = "11," + lines[4].split(",", 1)[1]  # line 5: label 11
    (source / "mnist_train.csv").write_text("".join(lines))
    shutil.copyfile(paths.data_dir() / "mnist_test_10.csv", source / "mnist_test.csv")
    fetched = fetch(str(source), tmp_path / "cache")
    with pytest.raises(DataFormatError, match=r"mnist_train.csv line 5") as info:
        prepare_fetched(fetched, tmp_path / "cache")
    assert info.value.path == str(source / "mnist_train.csv")
    assert not fetched.train.path.exists()
    assert not (tmp_path / "cache" / "arrays").exists() or not any((tmp_path / "cache" / "arrays").rglob("*.npy"))


def test_shared_loads_read_each_dataset_once_inside_the_block_and_every_time_outside(tmp_path):
    """A sweep's threads share one checked copy; outside the block the files are read again,
    so what changed on disk is seen."""
    from mynn.prepare import shared_loads

    data = prepare_fetched(fetch("shipped-small", tmp_path), tmp_path)
    with shared_loads():
        first, again = data.load(), data.load()
        assert first[0] is again[0] and first[1] is again[1]
        assert not first[0].pixels.flags.writeable  # nobody can change the shared arrays
        shutil.rmtree(data.train.directory)  # from now on only the shared copy has them
        assert data.load()[0] is first[0]
    with pytest.raises(FileNotFoundError):
        data.load()


def test_a_load_checks_the_folder_holds_the_dataset_it_was_prepared_as(tmp_path):
    """A folder found by its name holds what the run was prepared with, or the load fails naming it."""
    import dataclasses

    from mynn.prepare import shared_loads

    data = prepare_fetched(fetch("shipped-small", tmp_path), tmp_path)
    wrong = dataclasses.replace(data, train=dataclasses.replace(data.train, directory=data.test.directory))
    for block in (shared_loads, __import__("contextlib").nullcontext):
        with block(), pytest.raises(DataFormatError, match="meta.json.*not the"):
            wrong.load()
