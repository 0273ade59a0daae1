"""Case 1: bad data files, through the pipeline's tasks: ``download.fn`` copies a local source
folder into the cache, ``preprocess.fn`` parses it. Each bad file is refused with an error
naming the user's file, not the cache's copy (and the line and value where there is one), and
nothing is stored for it: no cached copy, no arrays folder, no index entry, no temporary."""
from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from tests.faults.faultkit import TEST_10, TRAIN_100, data_folder, files_under, stray_temporaries
from flows import tasks
from mynn.csvfile import read_csv
from mynn.dataset import DataFormatError

LINES = TRAIN_100.read_bytes().splitlines(keepends=True)  # 100 records, LF line ends


def _with_line(number: int, new: bytes) -> bytes:
    """The training file with line ``number`` (1-based) replaced by ``new`` (+ LF)."""
    lines = list(LINES)
    lines[number - 1] = new + b"\n"
    return b"".join(lines)


def _field_replaced(number: int, k: int, value: bytes) -> bytes:
    fields = LINES[number - 1].rstrip(b"\n").split(b",")
    fields[k - 1] = value
    return _with_line(number, b",".join(fields))


def _one_label(label: int) -> bytes:
    return b"".join(str(label).encode() + line[line.index(b","):] for line in LINES)


HTML = (b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
        b"<body><h1>Service Unavailable</h1></body></html>\n")

# name: (train file bytes, expected line, text the message must contain, expected value or None)
BAD_TRAIN = {
    "wrong column count": (_with_line(5, LINES[4].rstrip(b"\n").rsplit(b",", 1)[0]), 5,
                           "784 fields, not 785", None),
    "non-numeric field": (_field_replaced(17, 3, b"abc"), 17, "field 3 is 'abc'", "abc"),
    "pixel out of range": (_field_replaced(9, 100, b"256"), 9, "field 100 is '256', not an integer 0..255", "256"),
    "label out of range": (_field_replaced(3, 1, b"10"), 3, "field 1 (the label) is '10'", "10"),
    "negative pixel": (_field_replaced(42, 7, b"-3"), 42, "field 7 is '-3'", "-3"),
    "blank line": (b"".join(LINES[:50]) + b"\n" + b"".join(LINES[50:]), 51, "blank line", ""),
    "header row": (b"label," + b",".join(b"pixel%d" % i for i in range(784)) + b"\n" + b"".join(LINES), 1,
                   "looks like a header row", None),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + b"".join(LINES), 1, "UTF-8 byte-order mark", "\ufeff"),
    "empty file": (b"", None, "no records: the file is empty", None),
    "truncated gzip": (gzip.compress(b"".join(LINES))[:5000], None, "not a readable gzip file", None),
    "HTML error page": (HTML, 1, "is an HTML page, not CSV records", "<!DOCTYPE html>"),
    "all one label": (_one_label(3), None, "all 100 records have label 3", "3"),
}


def _pipeline(source, cache):
    downloaded = tasks.download.fn(str(source), cache_dir=str(cache))
    return downloaded, tasks.preprocess.fn(downloaded, cache_dir=str(cache))


@pytest.mark.parametrize("case", list(BAD_TRAIN), ids=list(BAD_TRAIN))
def test_a_bad_training_file_is_refused_naming_file_line_and_value(tmp_path, case):
    data, line, text, value = BAD_TRAIN[case]
    source = data_folder(tmp_path / "source", train=data)
    cache = tmp_path / "cache"

    downloaded = tasks.download.fn(str(source), cache_dir=str(cache))  # the bytes are copied as they are
    with pytest.raises(DataFormatError) as info:
        tasks.preprocess.fn(downloaded, cache_dir=str(cache))

    err = info.value
    assert err.path == str((source / "mnist_train.csv").resolve()) == downloaded.train.origin
    assert str(err).startswith(err.path + (f" line {line}: " if line else ": ")), str(err)
    assert err.line == line and text in str(err), str(err)
    if value is not None:
        assert err.value is not None and err.value.startswith(value) and repr(value)[1:-1] in str(err)
    # nothing stored for it: no cached copy, no arrays folder, no index entry, no temporary
    assert files_under(cache / "arrays") == []
    assert stray_temporaries(cache) == []
    assert not downloaded.train.path.exists() and not downloaded.train.path.parent.exists()
    assert downloaded.test.path.exists()  # the good test file stays
    assert (source / "mnist_train.csv").read_bytes() == data  # the user's file is never touched


def test_a_bad_test_file_is_refused_and_only_the_training_arrays_are_stored(tmp_path):
    bad_test = TEST_10.read_bytes().replace(b"\n", b"\n\n", 1)  # a blank line 2
    source = data_folder(tmp_path / "source", test=bad_test)
    cache = tmp_path / "cache"
    downloaded = tasks.download.fn(str(source), cache_dir=str(cache))
    with pytest.raises(DataFormatError, match=r"mnist_test\.csv line 2: blank line") as info:
        tasks.preprocess.fn(downloaded, cache_dir=str(cache))
    assert info.value.path == downloaded.test.origin == str((source / "mnist_test.csv").resolve())
    assert not downloaded.test.path.exists()
    train_digest = read_csv(TRAIN_100).digest
    assert sorted(p.name for p in (cache / "arrays").iterdir()) == [train_digest, "by-file"]
    assert [p.name for p in (cache / "arrays" / "by-file").iterdir()] == [f"{downloaded.train.sha256}.json"]
    assert stray_temporaries(cache) == []


def test_crlf_line_ends_are_tolerated_with_the_same_content_digest(tmp_path):
    crlf = TRAIN_100.read_bytes().replace(b"\n", b"\r\n")
    crlf_test = TEST_10.read_bytes().replace(b"\n", b"\r\n")
    _, lf = _pipeline(data_folder(tmp_path / "lf"), tmp_path / "cache")
    downloaded, crlf_data = _pipeline(data_folder(tmp_path / "crlf", train=crlf, test=crlf_test), tmp_path / "cache")

    assert downloaded.train.sha256 != lf.train.digest  # other bytes ...
    assert (crlf_data.train.digest, crlf_data.test.digest) == (lf.train.digest, lf.test.digest)  # same records
    assert crlf_data.train.directory == lf.train.directory and crlf_data.train.known_as == "mnist_train_100"
    assert (crlf_data.train.records, crlf_data.test.records) == (100, 10)


def test_one_label_is_fine_in_a_test_file_but_refused_as_training_data_even_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    sevens = b"".join(b"7" + line[line.index(b","):] for line in TEST_10.read_bytes().splitlines(keepends=True))
    _, ok = _pipeline(data_folder(tmp_path / "a", test=sevens), cache)  # as a test set: accepted
    assert ok.test.records == 10
    before = files_under(cache / "arrays")

    # the same file as training data: refused, although its arrays are cached already
    with pytest.raises(DataFormatError, match=r"mnist_train\.csv: all 10 records have label 7: "
                                              r"a training set needs at least 2 distinct labels"):
        _pipeline(data_folder(tmp_path / "b", train=sevens), cache)
    assert files_under(cache / "arrays") == before  # nothing added, nothing removed
    index = json.loads((cache / "arrays" / "by-file" / f"{hashlib.sha256(sevens).hexdigest()}.json").read_text())
    assert index["digest"] == ok.test.digest


def test_a_truncated_gzip_is_refused_naming_the_users_file(tmp_path):
    """A user's folder holding half of the real mnist_train.csv.gz: not checked against the
    shipped file's digest (that pins the shipped source only), refused when parsed."""
    full = (TRAIN_100.parent / "mnist_train.csv.gz").read_bytes()
    source = data_folder(tmp_path / "source", train=full[: len(full) // 2], train_name="mnist_train.csv.gz")
    cache = tmp_path / "cache"
    downloaded = tasks.download.fn(str(source), cache_dir=str(cache))
    assert not downloaded.verified
    with pytest.raises(DataFormatError, match=r"source/mnist_train\.csv\.gz: not a readable gzip file"):
        tasks.preprocess.fn(downloaded, cache_dir=str(cache))
    assert not downloaded.train.path.exists() and files_under(cache / "arrays") == []


def test_a_changed_file_of_a_pinned_source_is_caught_by_its_digest_at_download(tmp_path):
    """A source that pins digests (as shipped does with SHA256SUMS) refuses other bytes before
    any parsing, names the file, and caches nothing."""
    from mynn.sources import DigestMismatchError, Source

    full = (TRAIN_100.parent / "mnist_train.csv.gz").read_bytes()
    source = data_folder(tmp_path / "source", train=full[: len(full) // 2], train_name="mnist_train.csv.gz")
    pinned = Source("pinned", str(source), False, ("mnist_train.csv.gz",), ("mnist_test.csv",),
                    pinned=(("mnist_train.csv.gz", hashlib.sha256(full).hexdigest()),))
    cache = tmp_path / "cache"
    with pytest.raises(DigestMismatchError, match=r"source/mnist_train\.csv\.gz: sha256 mismatch"):
        tasks.download.fn(pinned, cache_dir=str(cache))
    assert files_under(cache) == []
