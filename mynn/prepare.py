"""Preprocess: parse a downloaded CSV once, keep its arrays as ``.npy`` keyed by content digest.

Layout under the cache folder::

    arrays/<content digest>/{labels.npy, pixels.npy, meta.json}   (see mynn.data.save_npy)
    arrays/by-file/<file sha256>.json                               file bytes -> content digest

A second preprocess of the same file is a cache hit: no parsing, only a digest check of the
stored arrays. The raw download is never modified.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mynn.data import DataFormatError, Dataset, identify, load_npy, read_csv, save_npy


@dataclass(frozen=True)
class Prepared:
    """A parsed dataset on disk: where its arrays are and what they are."""

    directory: Path  # arrays/<digest>/ holding labels.npy, pixels.npy, meta.json
    digest: str  # content digest (mynn.data.Dataset.digest)
    records: int
    known_as: str | None  # the name in mynn.data.KNOWN_DIGESTS, if the content is a known set
    cache_hit: bool


def prepare(csv_path: str | os.PathLike, file_sha256: str, cache_dir: str | os.PathLike) -> Prepared:
    """Parse ``csv_path`` (strictly) into ``cache_dir/arrays/<digest>/``, or reuse it."""
    root = Path(cache_dir) / "arrays"
    index = root / "by-file" / f"{file_sha256}.json"
    if index.exists():
        try:
            digest = json.loads(index.read_text())["digest"]
            ds = load_npy(root / digest)
            return Prepared(root / digest, ds.digest, len(ds), identify(ds), True)
        except (FileNotFoundError, DataFormatError, KeyError, ValueError):
            index.unlink(missing_ok=True)  # a stale or damaged entry: parse again below
    ds: Dataset = read_csv(csv_path)
    directory = root / ds.digest
    try:
        load_npy(directory)
    except (FileNotFoundError, DataFormatError):
        save_npy(ds, directory)
    _write_json_atomic(index, {"digest": ds.digest, "source_file": Path(csv_path).name})
    return Prepared(directory, ds.digest, len(ds), identify(ds), False)


def _write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
