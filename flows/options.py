"""The options the ``mynn`` parser (:mod:`flows.parser`) builds its commands from: the config's
fields (one value, or a list for a sweep), a search space (``mynn tune``), the task runner's."""
from __future__ import annotations

import argparse
import dataclasses
import typing

from mynn.config import NetworkConfig


def config_options(parser: argparse.ArgumentParser, many: bool = False) -> None:
    """One option per NetworkConfig field; with ``many``, each takes a list (a sweep grid)."""
    hints = typing.get_type_hints(NetworkConfig)
    group = parser.add_argument_group("network and training" + (" (one or more values each)" if many else ""))
    for f in dataclasses.fields(NetworkConfig):
        kind = hints[f.name]
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name,
                           default=[f.default] if many else f.default, nargs="+" if many else None,
                           type=None if choices else kind, choices=choices,
                           help=f"{f.metadata['doc']} (default: {f.default})")


def space_options(parser: argparse.ArgumentParser) -> None:
    """One option per searchable field (mynn.search): one value, a range of two, or choices."""
    from mynn import search

    hints = typing.get_type_hints(NetworkConfig)
    group = parser.add_argument_group("search space (one value: fixed; two: a range; more: choices)")
    for f in dataclasses.fields(NetworkConfig):
        if f.name not in search.SEARCHABLE:
            continue
        kind = hints[f.name]
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        default = search.DEFAULT_SPACE.get(f.name, [f.default])
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=default, nargs="+",
                           type=None if choices else kind, choices=choices,
                           help=f"{f.metadata['doc']} (default: {' '.join(map(str, default))})")


def duration_minutes(text: str) -> float:
    """``90``, ``90s``, ``10m`` or ``1h`` as minutes; argparse's error otherwise."""
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 600, 90s, 10m, 1h)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
    return value


def options(parser: argparse.ArgumentParser, *specs: tuple) -> None:
    """``(flag, default, help[, extra keyword arguments])`` each."""
    for flag, default, help_, *extra in specs:
        parser.add_argument(flag, default=default, help=help_, **(extra[0] if extra else {}))


def runner_options(parser: argparse.ArgumentParser) -> None:
    options(parser, ("--workers", 2, "points trained in parallel by threads of this process (default: 2)",
                     {"type": int}),
            ("--processes", False, "the workers are processes of a local pool instead of threads (isolation; "
                                   "each pays about 5 s of imports)", {"action": "store_true"}),
            ("--dask-address", None, "train the points on this existing Dask cluster (prefect-dask) instead",
             {"metavar": "tcp://HOST:PORT"}))


def add_tune(sub) -> None:
    """The ``tune`` command."""
    tune = sub.add_parser("tune", help="search hyper-parameters with Optuna, chosen on a validation set, pruned",
                          description="An Optuna search (TPE, random or grid) over the options given: one value "
                                      "fixes a field, two give a range (hidden nodes, learning rate and batch size on "
                                      "a log scale), more give choices. Trials are chosen by the score on held-out "
                                      "training records and pruned on it per epoch; the test score of the best trial "
                                      "is reported, never used to choose. One MLflow parent run per study, a child "
                                      "per trial; --resume continues an interrupted study.")
    space_options(tune)
    options(tune, ("--trials", 20, "trials in the study when it is done (default: 20)", {"type": int}),
            ("--timeout", None, "start no trial after this long: seconds, or with a unit (90s, 10m, 1h)",
              {"type": duration_minutes, "metavar": "DURATION"}),
            ("--sampler", "tpe", "tpe (default), random or grid", {"choices": ("tpe", "random", "grid")}),
            ("--pruner", "median", "median (default), hyperband or none", {"choices": ("median", "hyperband", "none")}),
            ("--grid-points", 3, "grid sampler: values per range (default: 3)", {"type": int}),
            ("--validation-records", 10_000, "training records held out to choose by (default: 10000)", {"type": int}),
            ("--patience", 0, "early stopping within each trial, in epochs (default: 0, off)", {"type": int}),
            ("--seed", 0, "seed of the weights, the validation split and the sampler (default: 0)", {"type": int}),
            ("--study", None, "study name (default: tune-<data>-<digest of the search>)"),
            ("--resume", False, "continue the study of this name (the same search)", {"action": "store_true"}),
            ("--source", "shipped", "data source (as for train)"),
            ("--train-records", None, "use only the first N training records", {"type": int}),
            ("--test-records", None, "use only the first M test records", {"type": int}),
            ("--experiment", "mynn-tune", "MLflow experiment (default: mynn-tune)"))
    runner_options(tune)
