"""Tests of mynn.data: offline, a few seconds.

Malformed files are built under tmp_path from the shipped 100-record subset by editing one
line; tests that need the shipped data/mnist folder are skipped when it is absent.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import time

import numpy as np
import pytest

from mynn import data as D
from mynn import paths
from mynn.data import DataFormatError, Dataset

SHIPPED = paths.data_dir()
TRAIN_100 = SHIPPED / "mnist_train_100.csv"
TEST_10 = SHIPPED / "mnist_test_10.csv"
needs_shipped = pytest.mark.skipif(
    not TRAIN_100.is_file() or not TEST_10.is_file(), reason="the shipped data/mnist folder is not present"
)
needs_full = pytest.mark.skipif(
    not (SHIPPED / "mnist_train.csv.gz").is_file() or not (SHIPPED / "mnist_test.csv.gz").is_file(),
    reason="the shipped full MNIST is not present",
)


@pytest.fixture
def lines() -> list[bytes]:
    """The 100 records of mnist_train_100.csv, without line ends."""
    if not TRAIN_100.is_file():
        pytest.skip("the shipped data/mnist folder is not present")
    return TRAIN_100.read_bytes().split(b"\n")


def set_field(line: bytes, k: int, value: bytes) -> bytes:
    """``line`` with its 1-based field ``k`` replaced by ``value``."""
    fields = line.split(b",")
    fields[k - 1] = value
    return b",".join(fields)


def synthetic(n: int = 7, seed: int = 0, name: str = "synthetic") -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 10, n, dtype=np.uint8),
                   rng.integers(0, 256, (n, 784), dtype=np.uint8), name=name)


# ------------------------------------------------------------------------------ good files

@needs_shipped
def test_subsets_parse():
    train = D.read_csv(TRAIN_100)
    test = D.read_csv(TEST_10)
    assert train.labels.shape == (100,) and train.pixels.shape == (100, 784) and len(train) == 100
    assert test.labels.shape == (10,) and test.pixels.shape == (10, 784) and len(test) == 10
    assert train.labels.dtype == train.pixels.dtype == np.uint8
    assert train.labels[0] == 5 and test.labels[0] == 7
    assert train.name == "mnist_train_100.csv"
    assert D.identify(train) == "mnist_train_100" and D.identify(test) == "mnist_test_10"
    assert D.identify(synthetic()) is None
    assert not train.labels.flags.writeable and not train.pixels.flags.writeable
    with pytest.raises(ValueError):
        train.pixels[0, 0] = 1
    # the fast path and the exact line-by-line reader agree
    labels, pixels = D._parse_exact(TRAIN_100, TRAIN_100.read_bytes())
    assert np.array_equal(labels, train.labels) and np.array_equal(pixels, train.pixels)


def readme_digests() -> dict[str, tuple[str, str]]:
    """{"train": (labels, pixels), "test": (...)} from the table in data/mnist/README.md."""
    text = (SHIPPED / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(train|test)\s*\|\s*([0-9a-f]{64})\s*\|\s*([0-9a-f]{64})\s*\|", text, re.M)
    assert len(rows) == 2
    return {split: (labels, pixels) for split, labels, pixels in rows}


@needs_full
def test_full_files_match_readme_digests():
    expected = readme_digests()
    start = time.perf_counter()
    train = D.read_csv(SHIPPED / "mnist_train.csv.gz")
    seconds = time.perf_counter() - start
    print(f"read_csv(mnist_train.csv.gz): {len(train)} records in {seconds:.3f} s")
    test = D.read_csv(SHIPPED / "mnist_test.csv.gz")
    assert (train.labels_digest, train.pixels_digest) == expected["train"]
    assert (test.labels_digest, test.pixels_digest) == expected["test"]
    assert train.pixels.shape == (60_000, 784) and test.pixels.shape == (10_000, 784)
    assert D.identify(train) == "mnist_train" and D.identify(test) == "mnist_test"
    assert train.labels[0] == 5 and test.labels[0] == 7
    # the book's subsets are the first records of the full sets
    assert D.identify(train.head(100)) == "mnist_train_100"
    assert D.identify(test.head(10)) == "mnist_test_10"
    assert seconds < 6, f"full train parse took {seconds:.1f} s: the fast path was not taken?"


@needs_shipped
def test_line_ends_and_gzip_detection_do_not_change_content(tmp_path, lines):
    expected = D.KNOWN_DIGESTS["mnist_train_100"]
    variants = {
        "final_lf.csv": b"\n".join(lines) + b"\n",
        "crlf.csv": b"\r\n".join(lines),
        "crlf_final.csv": b"\r\n".join(lines) + b"\r\n",
        "mixed.csv": b"\r\n".join(lines[:50]) + b"\n" + b"\n".join(lines[50:]) + b"\r\n",
        "gzip_named.csv": gzip.compress(b"\n".join(lines)),  # gzip found by magic bytes
        "plain_named.csv.gz": b"\n".join(lines),  # and not by the suffix
        "zero_padded.csv": b"\n".join([set_field(lines[0], 1, b"05"), *lines[1:]]),
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        assert D.read_csv(tmp_path / name).digest == expected, name


# ------------------------------------------------------------------------- malformed files

def bad_cases(lines: list[bytes]) -> dict[str, tuple[bytes, int | None, str | None, str]]:
    """name -> (file content, expected line, expected value, text the message must hold)."""
    def with_line_17(new: bytes) -> bytes:
        return b"\n".join([*lines[:16], new, *lines[17:]])

    l17 = lines[16]
    header = b"label," + b",".join(b"%dx%d" % (r, c) for r in range(1, 29) for c in range(1, 29))
    html = (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title>'
            b"\n<body>Please sign in</body></html>\n")
    cases = {
        "too_few_fields": (with_line_17(l17.rsplit(b",", 1)[0]), 17, None, "784 fields, not 785"),
        "too_many_fields": (with_line_17(l17 + b",0"), 17, None, "786 fields, not 785"),
        "empty_field": (with_line_17(set_field(l17, 3, b"")), 17, "", "field 3 is empty"),
        "trailing_comma": (with_line_17(l17 + b","), 17, None, "786 fields"),
        "pixel_256": (with_line_17(set_field(l17, 3, b"256")), 17, "256", "not an integer 0..255"),
        "label_10": (with_line_17(set_field(l17, 1, b"10")), 17, "10", "not a digit 0..9"),
        "blank_line_middle": (b"\n".join([*lines[:16], b"", *lines[16:]]), 17, "", "blank line"),
        "blank_line_first": (b"\n" + b"\n".join(lines), 1, "", "blank line"),
        "blank_line_last": (b"\n".join(lines) + b"\n\n", 101, "", "blank line"),
        "crlf_blank_line": (b"\r\n".join([*lines[:16], b"", *lines[16:]]), 17, "", "blank line"),
        "lone_cr": (with_line_17(set_field(l17, 3, b"0\r0")), 17, "0\r0", "carriage return"),
        "header_row": (header + b"\n" + b"\n".join(lines), 1, header[:40].decode() + "...",
                       "header row"),
        "utf8_bom": (b"\xef\xbb\xbf" + b"\n".join(lines), 1, "\ufeff", "UTF-8 byte-order mark"),
        "html_page": (html, 1, html[:40].decode() + "...", "HTML page"),
        "empty_file": (b"", None, None, "empty"),
        "empty_gzip": (gzip.compress(b""), None, None, "empty"),
        "bad_line_in_gzip": (gzip.compress(with_line_17(set_field(l17, 3, b"abc"))), 17, "abc",
                             "field 3 is 'abc', not an integer 0..255"),
        "bad_line_crlf": (b"\r\n".join([*lines[:16], set_field(l17, 3, b"abc"), *lines[17:]]),
                          17, "abc", "field 3 is 'abc'"),
        "binary_garbage": (with_line_17(set_field(l17, 5, b"\xff\x00")), 17, "\ufffd\x00", "field 5"),
    }
    for value in (b"1.5", b"-3", b" 7", b"7 ", b"abc", b"+3", b"1e2", b"0x1"):
        cases[f"pixel_{value.decode()}"] = (with_line_17(set_field(l17, 3, value)), 17,
                                            value.decode(), "not an integer 0..255")
        cases[f"label_{value.decode()}"] = (with_line_17(set_field(l17, 1, value)), 17,
                                            value.decode(), "field 1 (the label)")
    return cases


@needs_shipped
def test_malformed_files_are_refused(tmp_path, lines):
    for name, (content, line, value, text) in bad_cases(lines).items():
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "mnist_train.csv"
        path.write_bytes(content)
        with pytest.raises(DataFormatError) as info:
            D.read_csv(path)
        err = info.value
        message = str(err)
        assert err.path == str(path), name
        assert message.startswith(str(path)) and "mnist_train.csv" in message, name
        assert err.line == line, (name, message)
        if line is not None:
            assert f"mnist_train.csv line {line}: " in message, (name, message)
        if value is not None:
            assert err.value == value, (name, err.value)
        if err.value:
            assert repr(err.value) in message, (name, message)
        assert text in message, (name, message)
        assert os.listdir(folder) == ["mnist_train.csv"], name  # nothing else written
        assert isinstance(err, ValueError)


@needs_shipped
def test_error_message_example(tmp_path, lines):
    path = tmp_path / "mnist_train.csv"
    path.write_bytes(b"\n".join([*lines[:16], set_field(lines[16], 3, b"abc"), *lines[17:]]))
    with pytest.raises(DataFormatError) as info:
        D.read_csv(path)
    assert str(info.value) == f"{path} line 17: field 3 is 'abc', not an integer 0..255"
    assert (info.value.line, info.value.value) == (17, "abc")
    again = pickle.loads(pickle.dumps(info.value))
    assert (str(again), again.path, again.line, again.value) == (str(info.value), str(path), 17, "abc")


@needs_shipped
def test_first_of_several_problems_is_reported(tmp_path, lines):
    bad = [*lines]
    bad[16] = set_field(bad[16], 3, b"abc")
    bad[40] = b""
    path = tmp_path / "two_problems.csv"
    path.write_bytes(b"\n".join(bad))
    with pytest.raises(DataFormatError, match=r"line 17: field 3 is 'abc'"):
        D.read_csv(path)


@needs_full
def test_truncated_gzip_is_refused(tmp_path):
    real = (SHIPPED / "mnist_test.csv.gz").read_bytes()
    path = tmp_path / "mnist_test.csv.gz"
    path.write_bytes(real[: len(real) // 2])
    with pytest.raises(DataFormatError) as info:
        D.read_csv(path)
    assert info.value.path == str(path) and info.value.line is None
    assert str(info.value).startswith(str(path)) and "gzip" in str(info.value)
    assert os.listdir(tmp_path) == ["mnist_test.csv.gz"]


@needs_shipped
def test_corrupt_gzip_is_refused(tmp_path, lines):
    packed = bytearray(gzip.compress(b"\n".join(lines)))
    for name, content in {"cut.csv.gz": bytes(packed[: len(packed) // 2]),
                          "flipped.csv.gz": bytes(packed[:-8]) + bytes(b ^ 0xFF for b in packed[-8:]),
                          "header_only.gz": bytes(packed[:10])}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / name)) + ": .*gzip") as info:
            D.read_csv(tmp_path / name)
        assert info.value.line is None


def test_fast_path_never_accepts_what_the_exact_reader_refuses():
    """Random one-byte edits of small files: the fast path agrees with the definition."""
    rng = np.random.default_rng(1)
    base = synthetic(4, seed=3)
    text = b"\n".join(b",".join(b"%d" % v for v in (label, *row))
                      for label, row in zip(base.labels, base.pixels)) + b"\n"
    alphabet = b"0123456789,\r\n .-a"
    accepted = refused = 0
    for _ in range(400):
        edit = bytearray(text)
        for _ in range(rng.integers(1, 3)):
            i = int(rng.integers(len(edit)))
            byte = alphabet[int(rng.integers(len(alphabet)))]
            kind = rng.integers(3)
            if kind == 0:
                edit[i] = byte
            elif kind == 1:
                edit.insert(i, byte)
            else:
                del edit[i]
        edit = bytes(edit)
        fast = D._parse_fast(edit)
        try:
            exact = D._parse_exact("x.csv", edit)
        except DataFormatError:
            assert fast is None, edit
            refused += 1
            continue
        accepted += 1
        if fast is not None:
            assert np.array_equal(fast[0], exact[0]) and np.array_equal(fast[1], exact[1])
    assert accepted > 20 and refused > 100


# ---------------------------------------------------------------------------------- Dataset

def test_dataset_validates_and_freezes():
    labels = np.zeros(3, np.uint8)
    pixels = np.zeros((3, 784), np.uint8)
    dataset = Dataset(labels, pixels, name="zeros")
    pixels[0, 0] = 9  # a writeable input is copied: the dataset does not change
    assert dataset.pixels[0, 0] == 0 and not dataset.pixels.flags.writeable
    with pytest.raises(Exception):
        dataset.name = "other"
    with pytest.raises(TypeError):
        Dataset(labels.astype(np.int64), pixels)
    with pytest.raises(TypeError):
        Dataset(labels, pixels.astype(np.float64))
    with pytest.raises(ValueError):
        Dataset(labels, pixels[:, :783])
    with pytest.raises(ValueError):
        Dataset(labels[:2], pixels)
    with pytest.raises(ValueError):
        Dataset(np.full(3, 10, np.uint8), pixels)
    with pytest.raises(TypeError):
        Dataset(list(labels), pixels)


def test_dataset_digests_and_head():
    dataset = synthetic(7)
    assert dataset.labels_digest == hashlib.sha256(dataset.labels.tobytes()).hexdigest()
    assert dataset.pixels_digest == hashlib.sha256(dataset.pixels.tobytes()).hexdigest()
    assert dataset.digest == hashlib.sha256(
        (dataset.labels_digest + dataset.pixels_digest).encode()).hexdigest()
    head = dataset.head(3)
    assert len(head) == 3 and head.name == "synthetic[:3]"
    assert np.array_equal(head.pixels, dataset.pixels[:3]) and not head.pixels.flags.writeable
    assert len(dataset.head(100)) == 7 and len(dataset.head(0)) == 0
    with pytest.raises(ValueError):
        dataset.head(-1)
    assert "n=7" in repr(dataset)


# ------------------------------------------------------------------------ inputs and targets

def test_scale_inputs():
    pixels = np.arange(256, dtype=np.uint8).repeat(4)[: 784].reshape(1, 784)
    pixels = np.vstack([pixels, np.full((1, 784), 255, np.uint8), np.zeros((1, 784), np.uint8)])
    scaled = D.scale_inputs(pixels)
    assert scaled.shape == (3, 784) and scaled.dtype == np.float64
    assert scaled.min() == 0.01 and scaled.max() == 1.0
    assert np.all((scaled >= 0.01) & (scaled <= 1.0))
    assert np.array_equal(scaled, pixels / 255.0 * 0.99 + 0.01)  # the book's expression, bit for bit
    single = D.scale_inputs(pixels[0])
    assert single.shape == (784,) and np.array_equal(single, scaled[0])
    scaled32 = D.scale_inputs(pixels, dtype="float32")
    assert scaled32.dtype == np.float32 and np.array_equal(scaled32, scaled.astype(np.float32))
    with pytest.raises(TypeError):
        D.scale_inputs(pixels.astype(np.int64))
    with pytest.raises(ValueError):
        D.scale_inputs(pixels[:, :10])
    with pytest.raises(ValueError):
        D.scale_inputs(pixels, dtype="float16")


def test_make_targets():
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    targets = D.make_targets(labels)
    assert targets.shape == (5, 10) and targets.dtype == np.float64
    assert np.array_equal(targets.argmax(axis=1), labels)
    assert np.all(targets[np.arange(5), labels] == 0.99)
    assert np.count_nonzero(targets == 0.01) == 5 * 9
    assert D.make_targets(labels, dtype="float32").dtype == np.float32
    assert D.make_targets(np.zeros(0, np.uint8)).shape == (0, 10)
    with pytest.raises(ValueError):
        D.make_targets(np.array([10]))
    with pytest.raises(TypeError):
        D.make_targets(np.array([1.0]))


# -------------------------------------------------------------------------------- .npy cache

def test_save_load_round_trip(tmp_path):
    dataset = synthetic(7, name="synthetic.csv")
    target = tmp_path / "cache" / "synthetic"
    assert D.save_npy(dataset, target) == target
    assert sorted(os.listdir(target)) == ["labels.npy", "meta.json", "pixels.npy"]
    assert os.listdir(tmp_path / "cache") == ["synthetic"]  # no temporary directory left
    meta = json.loads((target / "meta.json").read_text())
    assert meta["n"] == 7 and meta["digest"] == dataset.digest and meta["name"] == "synthetic.csv"
    loaded = D.load_npy(target)
    assert loaded.digest == dataset.digest and loaded.name == "synthetic.csv"
    assert np.array_equal(loaded.pixels, dataset.pixels) and not loaded.pixels.flags.writeable
    # saving again replaces the previous version
    other = synthetic(5, seed=1)
    D.save_npy(other, target)
    assert D.load_npy(target).digest == other.digest
    assert os.listdir(tmp_path / "cache") == ["synthetic"]


@needs_shipped
def test_save_load_shipped_subset(tmp_path):
    dataset = D.read_csv(TRAIN_100)
    loaded = D.load_npy(D.save_npy(dataset, tmp_path / "train_100"))
    assert D.identify(loaded) == "mnist_train_100"


def test_save_refuses_to_replace_a_foreign_directory(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        D.save_npy(synthetic(), target)
    assert os.listdir(target) == ["notes.txt"]
    assert os.listdir(tmp_path) == ["precious"]


def test_tampered_files_are_refused(tmp_path):
    dataset = synthetic(6)
    good = D.save_npy(dataset, tmp_path / "good")

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
            D.load_npy(folder)
        assert info.value.path == str(folder / file), (folder.name, str(info.value))
        assert str(info.value).startswith(str(folder / file))
    with pytest.raises(FileNotFoundError):
        D.load_npy(tmp_path / "nothing here")


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    dataset = synthetic()
    target = tmp_path / "cache"

    real_save = np.save

    def crash_on_pixels(file, array, **kwargs):
        if array.ndim == 2:
            file.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        real_save(file, array, **kwargs)

    monkeypatch.setattr(D.np, "save", crash_on_pixels)
    with pytest.raises(OSError, match="disk full"):
        D.save_npy(dataset, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []

    # a failure at the final rename, replacing an older version: the older one stays
    old = synthetic(3, seed=9)
    D.save_npy(old, target)
    real_replace = os.replace

    def fail_on_final_rename(src, dst):
        if os.path.basename(os.fspath(src)).startswith(".cache.tmp-"):
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(D.os, "replace", fail_on_final_rename)
    with pytest.raises(OSError, match="rename failed"):
        D.save_npy(dataset, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["cache"]
    assert D.load_npy(target).digest == old.digest
