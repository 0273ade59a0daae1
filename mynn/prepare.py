"""Preprocess: parse a downloaded CSV once, keep its arrays as ``.npy`` keyed by content digest.

Layout under the cache folder::

    arrays/<content digest>/{labels.npy, pixels.npy, meta.json}   (see mynn.arrays.save_npy)
    arrays/by-file/<file sha256>.json                               file bytes -> content digest

A second preprocess of the same file is a cache hit: no parsing, only a digest check of the
stored arrays. The raw download is never modified. A training set (``split="train"``) must
hold at least two distinct labels; one that does not is refused before anything is stored.
"""
from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from mynn.arrays import load_npy, save_npy
from mynn.cache import forget
from mynn.csvfile import read_csv
from mynn.dataset import DataFormatError, Dataset, identify
from mynn.fetch import FetchResult
from mynn.files import AtomicWrite


#: The strict CSV reader's format version: a parse cached by another version is not reused.
PARSER = "mynn.data.read_csv/1"  # (recorded in every index entry: kept as it was)


@dataclass(frozen=True)
class Prepared:
    """A parsed dataset on disk: where its arrays are and what they are."""

    directory: Path  # arrays/<digest>/ holding labels.npy, pixels.npy, meta.json
    digest: str  # content digest (mynn.dataset.Dataset.digest)
    records: int
    known_as: str | None  # the name in mynn.dataset.KNOWN_DIGESTS, if the content is a known set
    cache_hit: bool = field(compare=False)  # a fact of this call, not of the data
    file_sha256: str | None = None  # SHA-256 of the file it was parsed from (None: a subset)
    origin: str | None = None  # that file as the user knows it: a path or a URL (no credentials)


def check_training_labels(ds: Dataset, path: str | os.PathLike) -> None:
    """Refuse a training set whose records all have one label (nothing to tell apart):
    :class:`DataFormatError` naming ``path``, e.g. ``all 100 records have label 3``."""
    labels = np.unique(ds.labels)
    if len(labels) < 2:
        what = f"all {len(ds)} records have label {int(labels[0])}" if len(labels) else "no records"
        raise DataFormatError(path, f"{what}: a training set needs at least 2 distinct labels",
                              value=None if not len(labels) else str(int(labels[0])))


def prepare(csv_path: str | os.PathLike, file_sha256: str, cache_dir: str | os.PathLike,
            split: str | None = None, origin: str | None = None) -> Prepared:
    """Parse ``csv_path`` (strictly) into ``cache_dir/arrays/<digest>/``, or reuse it.

    ``file_sha256`` is the SHA-256 of the bytes of ``csv_path`` (as fetched): the key of the
    parse. ``origin`` names the file in errors (the user's file or URL, when ``csv_path`` is
    the cache's copy). ``split="train"`` also refuses a file whose records all have the same
    label (:func:`check_training_labels`), before anything is stored for it.

    A reused parse is checked: the index entry must name this file digest and this parser
    format, and the arrays must match their recorded digests (:func:`mynn.arrays.load_npy`).
    """
    shown = origin or os.fspath(csv_path)
    root = Path(cache_dir) / "arrays"
    index = root / "by-file" / f"{file_sha256}.json"
    if index.exists():
        try:
            entry = json.loads(index.read_text())
            if entry.get("file_sha256") != file_sha256 or entry.get("parser") != PARSER:
                raise ValueError("entry of another file or parser")
            digest = entry["digest"]
            ds = load_npy(root / digest)
        except (FileNotFoundError, DataFormatError, KeyError, ValueError, AttributeError):
            index.unlink(missing_ok=True)  # a stale or damaged entry: parse again below
        else:
            if split == "train":
                check_training_labels(ds, shown)
            return Prepared(root / digest, ds.digest, len(ds), identify(ds), True, file_sha256, shown)
    ds: Dataset = read_csv(csv_path, label=shown)
    if split == "train":
        check_training_labels(ds, shown)
    directory = root / ds.digest
    try:
        load_npy(directory)
    except (FileNotFoundError, DataFormatError):
        save_npy(ds, directory)
    _write_json_atomic(index, {"digest": ds.digest, "file_sha256": file_sha256, "parser": PARSER,
                               "source_file": Path(csv_path).name})
    return Prepared(directory, ds.digest, len(ds), identify(ds), False, file_sha256, shown)


def _write_json_atomic(path: Path, obj: dict) -> None:
    with AtomicWrite(path) as tmp, open(tmp, "w") as fh:
        json.dump(obj, fh)


def subset(prepared: Prepared, records: int, cache_dir: str | os.PathLike) -> Prepared:
    """The first ``records`` records of a prepared dataset, stored (and keyed) like any other."""
    ds = load_npy(prepared.directory).head(records)
    directory = Path(cache_dir) / "arrays" / ds.digest
    try:
        load_npy(directory)
        hit = True
    except (FileNotFoundError, DataFormatError):
        save_npy(ds, directory)
        hit = False
    return Prepared(directory, ds.digest, len(ds), identify(ds), hit)


@dataclass(frozen=True)
class PreparedData:
    """The training and the test set of one run, prepared: the one type tasks, sweep workers
    and reports pass along (folders and digests, never the arrays)."""

    source: str  # where the files came from, as recorded (credentials replaced by ***)
    train: Prepared
    test: Prepared
    verified: bool = False  # both files had the digests their source pins

    @property
    def label(self) -> str:
        """Short name in run names and reports: "full", "small" (the book's 100/10) or "n<train>-<test>"."""
        if (self.train.known_as, self.test.known_as) == ("mnist_train", "mnist_test"):
            return "full"
        if (self.train.known_as, self.test.known_as) == ("mnist_train_100", "mnist_test_10"):
            return "small"
        return f"n{self.train.records}-{self.test.records}"

    def head(self, train_records: int | None, test_records: int | None, cache_dir: str | os.PathLike) -> PreparedData:
        """The first N training and M test records (None: all), stored like any dataset."""
        train = subset(self.train, train_records, cache_dir) if train_records else self.train
        test = subset(self.test, test_records, cache_dir) if test_records else self.test
        return PreparedData(self.source, train, test, self.verified)

    def load(self) -> tuple[Dataset, Dataset]:
        """(train, test) arrays, checked against their digests (inside :func:`shared_loads`:
        read and checked once, then shared)."""
        return _load(self.train), _load(self.test)


class _SharedLoads:
    """The datasets read inside :func:`shared_loads` blocks, by (folder, digest)."""

    lock = threading.Lock()
    depth = 0
    loaded: dict[tuple[Path, str], Dataset] = {}


@contextmanager
def shared_loads() -> Iterator[None]:
    """Within the block, each prepared dataset is read from disk and checked against its
    digest once; later loads of it in this process get those same arrays, which are
    read-only. A sweep's trainings run as threads of one process and share one copy instead
    of each reading and hashing 47 MB. Outside any block every load reads and checks the
    files again (they may have changed on disk); the block's end drops the arrays."""
    with _SharedLoads.lock:
        _SharedLoads.depth += 1
    try:
        yield
    finally:
        with _SharedLoads.lock:
            _SharedLoads.depth -= 1
            if _SharedLoads.depth == 0:
                _SharedLoads.loaded.clear()


def _load(prepared: Prepared) -> Dataset:
    with _SharedLoads.lock:
        shared = _SharedLoads.depth > 0
    if not shared:
        return _checked(prepared)
    key = (Path(prepared.directory), prepared.digest)
    with _SharedLoads.lock:  # one reader per dataset; the others wait for its arrays
        if key not in _SharedLoads.loaded:
            _SharedLoads.loaded[key] = _checked(prepared)
        return _SharedLoads.loaded[key]


def _checked(prepared: Prepared) -> Dataset:
    """The arrays in ``prepared``'s folder, which must be the dataset it names."""
    ds = load_npy(prepared.directory)
    if ds.digest != prepared.digest:
        raise DataFormatError(Path(prepared.directory) / "meta.json", f"holds dataset {ds.digest}, not the "
                              f"{prepared.digest} this run was prepared with", value=ds.digest)
    return ds


def prepare_fetched(fetched: FetchResult, cache_dir: str | os.PathLike) -> PreparedData:
    """Prepare both files of a :class:`mynn.fetch.FetchResult`. A file refused by the reader
    (:class:`DataFormatError`, naming the user's file, line and value) is removed from the
    download cache, so refused bytes never stay behind."""
    prepared = []
    for f in (fetched.train, fetched.test):
        try:
            prepared.append(prepare(f.path, f.sha256, cache_dir, split=f.split, origin=f.origin or None))
        except DataFormatError:
            forget(f.path, cache_dir)
            raise
    return PreparedData(fetched.source.spec, prepared[0], prepared[1], fetched.verified)
