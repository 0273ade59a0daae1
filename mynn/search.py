"""A search space over :class:`~mynn.config.NetworkConfig`: what ``mynn tune`` may choose.

Each searchable field gets a list of values, read the same way on the command line and in the
flow's form:

- one value: fixed (not searched);
- two numbers: the range low..high (ints stay ints; hidden nodes, learning rate and batch size on
  a log scale, epochs on a linear one);
- three or more numbers, or the options of a choice field (dtype, batch reduction, backprop):
  the values to choose from.

Plain data, no optimiser here: :mod:`tracking.studies` turns a space into Optuna's suggestions,
and :func:`grid` gives the grid sampler its values.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mynn.config import NetworkConfig

#: The fields a search may vary; the others (seed, validation set, patience) are the study's.
SEARCHABLE = ("hidden_nodes", "learning_rate", "epochs", "dtype", "batch_size", "batch_reduction", "backprop")
LOG_SCALE = frozenset({"hidden_nodes", "learning_rate", "batch_size"})
#: ``mynn tune``'s default space: the book's three experiments, as ranges.
DEFAULT_SPACE: dict[str, list] = {"hidden_nodes": [10, 500], "learning_rate": [0.01, 1.0], "epochs": [1, 10]}


class StudyError(ValueError):
    """A search that cannot be started or resumed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Dim:
    """One searchable field: a range (``low``..``high``) or a set of ``choices`` (one: fixed)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()

    @property
    def fixed(self) -> bool:
        return len(self.choices) == 1

    def to_dict(self) -> dict:
        if self.choices:
            return {"name": self.name, "choices": list(self.choices)}
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log, "integer": self.integer}


def _check(name: str, value) -> object:
    """``value`` as NetworkConfig's field ``name`` would hold it; ValueError naming both otherwise."""
    try:
        return getattr(NetworkConfig(**{name: value}), name)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"search space: {name} = {value!r}: {exc}") from None


def space(values: Mapping[str, Sequence]) -> tuple[Dim, ...]:
    """The dimensions of ``values`` ({field: [values]}, fields of :data:`SEARCHABLE`), in
    NetworkConfig's order. Every value is checked as a config field; a range needs low < high."""
    unknown = sorted(set(values) - set(SEARCHABLE))
    if unknown:
        raise ValueError(f"search space: {unknown} cannot be searched; searchable: {list(SEARCHABLE)}")
    hints = typing.get_type_hints(NetworkConfig)
    dims = []
    for name in SEARCHABLE:
        if name not in values:
            continue
        given = list(values[name])
        if not given or isinstance(values[name], (str, bytes)):
            raise ValueError(f"search space: {name} needs a list of one or more values")
        checked = list(dict.fromkeys(_check(name, v) for v in given))
        literal = typing.get_origin(hints[name]) is typing.Literal
        if literal or len(given) != 2:
            dims.append(Dim(name, choices=tuple(checked)))
            continue
        low, high = _check(name, given[0]), _check(name, given[1])
        if not low < high:
            raise ValueError(f"search space: {name} range {given[0]!r}..{given[1]!r} needs low < high")
        dims.append(Dim(name, low, high, log=name in LOG_SCALE, integer=hints[name] is int))
    return tuple(dims)


def searched(dims: Sequence[Dim]) -> tuple[Dim, ...]:
    """The dimensions that vary (not fixed)."""
    return tuple(d for d in dims if not d.fixed)


def to_config(dims: Sequence[Dim], params: Mapping[str, object], base: NetworkConfig) -> NetworkConfig:
    """``base`` with the fixed values of ``dims`` and the chosen ``params`` (field -> value)."""
    values = {d.name: d.choices[0] for d in dims if d.fixed}
    values.update(params)
    return dataclasses.replace(base, **values)


def grid(dims: Sequence[Dim], points: int = 3) -> dict[str, list]:
    """Values per varying dimension for a grid search: a range gives ``points`` values spaced
    evenly (geometrically on a log scale; ints rounded, repeats dropped), choices give themselves."""
    if points < 2:
        raise ValueError(f"grid: needs at least 2 points per range (got {points})")
    out: dict[str, list] = {}
    for d in searched(dims):
        if d.choices:
            out[d.name] = list(d.choices)
            continue
        if d.log:
            values = [math.exp(math.log(d.low) + i * (math.log(d.high) - math.log(d.low)) / (points - 1))
                      for i in range(points)]
        else:
            values = [d.low + i * (d.high - d.low) / (points - 1) for i in range(points)]
        values[0], values[-1] = d.low, d.high  # exactly the ends given
        out[d.name] = list(dict.fromkeys(int(round(v)) if d.integer else float(f"{v:.6g}") for v in values))
    return out


def describe(dims: Sequence[Dim]) -> list[dict]:
    """The space as JSON-able data (recorded on the study and its parent run)."""
    return [d.to_dict() for d in dims]
