"""Tests of mynn.arrays: the atomic .npy folder store and its checks on load."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.datakit import TRAIN_100, needs_shipped, synthetic
from mynn.arrays import load_npy, save_npy
from mynn.csvfile import read_csv
from mynn.dataset import DataFormatError, identify


def test_save_load_round_trip(tmp_path):
    dataset = synthetic(7, name="synthetic.csv")
    target = tmp_path / "cache" / "synthetic"
    assert save_npy(dataset, target) == target
    assert sorted(os.listdir(target)) == ["labels.npy", "meta.json", "pixels.npy"]
    assert os.listdir(tmp_path / "cache") == ["synthetic"]  # no temporary directory left
    meta = json.loads((target / "meta.json").read_text())
    assert meta["n"] == 7 and meta["digest"] == dataset.digest and meta["name"] == "synthetic.csv"
    loaded = load_npy(target)
    assert loaded.digest == dataset.digest and loaded.name == "synthetic.csv"
    assert np.array_equal(loaded.pixels, dataset.pixels) and not loaded.pixels.flags.writeable
    # saving again replaces the previous version
    other = synthetic(5, seed=1)
    save_npy(other, target)
    assert load_npy(target).digest == other.digest
    assert os.listdir(tmp_path / "cache") == ["synthetic"]


@needs_shipped
def test_save_load_shipped_subset(tmp_path):
    dataset = read_csv(TRAIN_100)
    loaded = load_npy(save_npy(dataset, tmp_path / "train_100"))
    assert identify(loaded) == "mnist_train_100"


def test_save_refuses_to_replace_a_foreign_directory(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        save_npy(synthetic(), target)
    assert os.listdir(target) == ["notes.txt"]
    assert os.listdir(tmp_path) == ["precious"]


def test_tampered_files_are_refused(tmp_path):
    dataset = synthetic(6)
    good = save_npy(dataset, tmp_path / "good")

    def copy(name: str):
        folder = tmp_path / name
        folder.mkdir()
        for file in os.listdir(good):
            (folder / file).write_bytes((good / file).read_bytes())
        return folder

    flipped = copy("flipped")
    raw = bytearray((flipped / "pixels.npy").read_bytes())
    raw[-1] ^= 0x01
    (flipped / "pixels.npy").write_bytes(bytes(raw))

    wrong_dtype = copy("wrong_dtype")
    np.save(wrong_dtype / "labels.npy", dataset.labels.astype(np.int16))

    wrong_shape = copy("wrong_shape")
    np.save(wrong_shape / "pixels.npy", dataset.pixels[:5])

    truncated = copy("truncated")
    (truncated / "pixels.npy").write_bytes((good / "pixels.npy").read_bytes()[:300])

    missing = copy("missing")
    (missing / "labels.npy").unlink()

    bad_meta = copy("bad_meta")
    meta = json.loads((good / "meta.json").read_text())
    (bad_meta / "meta.json").write_text(json.dumps({**meta, "digest": "0" * 64}))

    not_json = copy("not_json")
    (not_json / "meta.json").write_text("{")

    no_meta = copy("no_meta")
    (no_meta / "meta.json").unlink()

    expected = {flipped: "pixels.npy", wrong_dtype: "labels.npy", wrong_shape: "pixels.npy",
                truncated: "pixels.npy", missing: "labels.npy", bad_meta: "meta.json",
                not_json: "meta.json", no_meta: "meta.json"}
    for folder, file in expected.items():
        with pytest.raises(DataFormatError) as info:
            load_npy(folder)
        assert info.value.path == str(folder / file), (folder.name, str(info.value))
        assert str(info.value).startswith(str(folder / file))
    with pytest.raises(FileNotFoundError):
        load_npy(tmp_path / "nothing here")


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    dataset = synthetic()
    target = tmp_path / "cache"

    real_save = np.save

    def crash_on_pixels(file, array, **kwargs):
        if array.ndim == 2:
            file.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        real_save(file, array, **kwargs)

    monkeypatch.setattr(np, "save", crash_on_pixels)
    with pytest.raises(OSError, match="disk full"):
        save_npy(dataset, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []

    # a failure at the final rename, replacing an older version: the older one stays
    old = synthetic(3, seed=9)
    save_npy(old, target)
    real_replace = os.replace

    def fail_on_final_rename(src, dst):
        if os.path.basename(os.fspath(src)).startswith(".cache.tmp-"):
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_final_rename)
    with pytest.raises(OSError, match="rename failed"):
        save_npy(dataset, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["cache"]
    assert load_npy(target).digest == old.digest
