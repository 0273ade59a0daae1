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
from dataclasses import dataclass, field
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
               "network.py", "reference.py", "train.py", "validation.py")


def code_digest() -> str:
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
    """Group points that differ only in epochs; one training per group, to its largest count.
    A point with early stopping (``patience``) is a training of its own: where it stops depends
    on its epoch count."""
    groups: dict[NetworkConfig, set[int]] = {}
    for p in points:
        groups.setdefault(dataclasses.replace(p, epochs=1) if not p.patience else p, set()).add(p.epochs)
    return [Training(dataclasses.replace(key, epochs=max(eps)), tuple(sorted(eps))) for key, eps in groups.items()]


@dataclass(frozen=True)
class Finished:
    """A finished point run in the tracking store, as the planner needs it."""

    run_id: str
    origin: str  # trained | derived:<run id> | reused:<run id>
    epochs_trained: int | None  # for a run that trained: its epoch count
    params: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def is_point(self, config: NetworkConfig, train_digest: str, test_digest: str, code: str,
                 epochs: int | None = None) -> bool:
        """Whether this run's recorded parameters are this point: the config (with ``epochs`` if
        given), both content digests and the code digest. A point id is a key; this checks what
        the key stands for before a finished run is reused."""
        want = {k: str(v) for k, v in config.to_dict().items()}
        if epochs is not None:
            want["epochs"] = str(epochs)
        want.update(train_digest=train_digest, test_digest=test_digest, code_version=code)
        return all(self.params.get(k) == v for k, v in want.items())


@dataclass(frozen=True)
class Copy:
    """A point whose numbers are taken from a finished run instead of training it again."""

    config: NetworkConfig
    kind: str  # "reused" (the same point) or "derived" (a longer training of its group)
    run_id: str  # the finished run it comes from


@dataclass(frozen=True)
class SweepPlan:
    copies: list[Copy]
    trainings: list[Training]  # one per group of points that differ only in epochs
    refused: list[str]  # runs carrying a point id whose parameters are another point (not reused)


def plan_points(configs: Sequence[NetworkConfig], train_digest: str, test_digest: str, code: str,
                by_point: Mapping[str, Finished], by_group: Mapping[str, Sequence[Finished]]) -> SweepPlan:
    """Decide per point: reuse a finished run of the same point, derive its epoch count from a
    finished longer training of its group, or train it (grouped by :func:`plan`)."""
    copies, todo, refused = [], [], []
    for cfg in configs:
        pid = point_id(cfg, train_digest, test_digest, code)
        found = by_point.get(pid)
        if found is not None and not found.is_point(cfg, train_digest, test_digest, code):
            refused.append(f"run {found.run_id} carries point id {pid} but its parameters are another point: "
                           "not reused")
            found = None
        if found is not None:
            copies.append(Copy(cfg, "reused", found.run_id))
            continue
        longer = [f for f in by_group.get(group_id(cfg, train_digest, test_digest, code), []) if not cfg.patience
                  if (f.epochs_trained or 0) >= cfg.epochs
                  and f.is_point(cfg, train_digest, test_digest, code, epochs=f.epochs_trained)]
        if longer:
            copies.append(Copy(cfg, "derived", longer[0].run_id))
        else:
            todo.append(cfg)
    return SweepPlan(copies, plan(todo), refused)
