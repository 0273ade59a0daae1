"""Sweep grids: expand a grid of config values into points, identify points, plan trainings.

A *point* is one NetworkConfig on one dataset with one version of the code; its identity
is a hash of those three, so a point trained once can be found and reused. Points that
differ only in ``epochs`` share one training: the network after epoch e of a longer run is
bit-identical to an e-epoch run (see mynn.train.fit), so one training to the largest epoch
count, scored after every epoch, gives every smaller count.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mynn.config import NetworkConfig

FIELDS = tuple(f.name for f in dataclasses.fields(NetworkConfig))


def expand(grid: Mapping[str, Sequence], base: NetworkConfig | None = None) -> list[NetworkConfig]:
    """All combinations of the grid's values (fields not in the grid keep ``base``'s value).

    The order is stable (fields in NetworkConfig order, values in the order given) and
    duplicates are dropped. Unknown fields and invalid values raise ValueError naming them.
    """
    base = base or NetworkConfig()
    unknown = sorted(set(grid) - set(FIELDS))
    if unknown:
        raise ValueError(f"grid: unknown field(s) {unknown}; known: {list(FIELDS)}")
    names = [f for f in FIELDS if f in grid]
    for name in names:
        if isinstance(grid[name], (str, bytes)) or not len(grid[name]):
            raise ValueError(f"grid.{name}: needs a non-empty list of values")
    seen: dict[NetworkConfig, None] = {}
    for values in itertools.product(*(grid[n] for n in names)):
        seen.setdefault(dataclasses.replace(base, **dict(zip(names, values))), None)
    return list(seen)


#: The files whose code decides a training's numbers: the data as read (CSV reader and format,
#: the data set, the .npy store the arrays are kept in), the input encoding and the network.
_CODE_FILES = ("arrays.py", "config.py", "csvfile.py", "csvformat.py", "dataset.py", "encoding.py", "kernels.py",
               "network.py", "reference.py", "train.py")


def code_version() -> str:
    """SHA-256 (first 16 hex digits) of the source files that decide a training's numbers."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def point_id(config: NetworkConfig, train_digest: str, test_digest: str, code: str) -> str:
    """Identity of a point: hash of its config, both datasets' content digests and the code."""
    blob = json.dumps({"config": config.to_dict(), "train": train_digest, "test": test_digest, "code": code},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def group_id(config: NetworkConfig, train_digest: str, test_digest: str, code: str) -> str:
    """Identity of the training a point belongs to: its point id with epochs left out."""
    return point_id(dataclasses.replace(config, epochs=1), train_digest, test_digest, code + ":group")


@dataclass(frozen=True)
class Training:
    """One training run to ``config.epochs`` that yields the points at ``epochs``."""

    config: NetworkConfig  # trained to config.epochs, the largest of ``epochs``
    epochs: tuple[int, ...]  # ascending epoch counts whose points it gives


def plan(points: Sequence[NetworkConfig]) -> list[Training]:
    """Group points that differ only in epochs; one training per group, to its largest count."""
    groups: dict[NetworkConfig, set[int]] = {}
    for p in points:
        groups.setdefault(dataclasses.replace(p, epochs=1), set()).add(p.epochs)
    return [Training(dataclasses.replace(key, epochs=max(eps)), tuple(sorted(eps))) for key, eps in groups.items()]
