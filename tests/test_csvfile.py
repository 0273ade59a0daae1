"""Tests of mynn.csvfile and mynn.csvformat: the strict CSV reader (offline, a few seconds).

Malformed files are built under tmp_path from the shipped 100-record subset by editing one
line; tests that need the shipped data/mnist folder are skipped when it is absent.
"""
from __future__ import annotations

import gzip
import os
import pickle
import re
import time

import numpy as np
import pytest

from tests.datakit import SHIPPED, TEST_10, TRAIN_100, needs_full, needs_shipped, set_field, synthetic
from mynn import csvfile
from mynn.csvfile import read_csv
from mynn.csvformat import parse_exact
from mynn.dataset import KNOWN_DIGESTS, DataFormatError, identify


@needs_shipped
def test_subsets_parse():
    train = read_csv(TRAIN_100)
    test = read_csv(TEST_10)
    assert train.labels.shape == (100,) and train.pixels.shape == (100, 784) and len(train) == 100
    assert test.labels.shape == (10,) and test.pixels.shape == (10, 784) and len(test) == 10
    assert train.labels.dtype == train.pixels.dtype == np.uint8
    assert train.labels[0] == 5 and test.labels[0] == 7
    assert train.name == "mnist_train_100.csv"
    assert identify(train) == "mnist_train_100" and identify(test) == "mnist_test_10"
    assert identify(synthetic()) is None
    assert not train.labels.flags.writeable and not train.pixels.flags.writeable
    with pytest.raises(ValueError):
        train.pixels[0, 0] = 1
    # the fast path and the exact line-by-line reader agree
    labels, pixels = parse_exact(TRAIN_100, TRAIN_100.read_bytes())
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
    train = read_csv(SHIPPED / "mnist_train.csv.gz")
    seconds = time.perf_counter() - start
    print(f"read_csv(mnist_train.csv.gz): {len(train)} records in {seconds:.3f} s")
    test = read_csv(SHIPPED / "mnist_test.csv.gz")
    assert (train.labels_digest, train.pixels_digest) == expected["train"]
    assert (test.labels_digest, test.pixels_digest) == expected["test"]
    assert train.pixels.shape == (60_000, 784) and test.pixels.shape == (10_000, 784)
    assert identify(train) == "mnist_train" and identify(test) == "mnist_test"
    assert train.labels[0] == 5 and test.labels[0] == 7
    # the book's subsets are the first records of the full sets
    assert identify(train.head(100)) == "mnist_train_100"
    assert identify(test.head(10)) == "mnist_test_10"
    assert seconds < 6, f"full train parse took {seconds:.1f} s: the fast path was not taken?"


@needs_shipped
def test_line_ends_and_gzip_detection_do_not_change_content(tmp_path, lines):
    expected = KNOWN_DIGESTS["mnist_train_100"]
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
        assert read_csv(tmp_path / name).digest == expected, name


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
            read_csv(path)
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
        read_csv(path)
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
        read_csv(path)


@needs_shipped
def test_corrupt_gzip_is_refused(tmp_path, lines):
    packed = bytearray(gzip.compress(b"\n".join(lines)))
    for name, content in {"cut.csv.gz": bytes(packed[: len(packed) // 2]),
                          "flipped.csv.gz": bytes(packed[:-8]) + bytes(b ^ 0xFF for b in packed[-8:]),
                          "header_only.gz": bytes(packed[:10])}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / name)) + ": .*gzip") as info:
            read_csv(tmp_path / name)
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
        fast = csvfile._parse_fast(edit)
        try:
            exact = parse_exact("x.csv", edit)
        except DataFormatError:
            assert fast is None, edit
            refused += 1
            continue
        accepted += 1
        if fast is not None:
            assert np.array_equal(fast[0], exact[0]) and np.array_equal(fast[1], exact[1])
    assert accepted > 20 and refused > 100
