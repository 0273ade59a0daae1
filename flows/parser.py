"""The ``mynn`` command's options (:func:`build_parser`); :mod:`flows.cli` runs what they parse."""
from __future__ import annotations

import argparse
import dataclasses
import typing

from mynn import promotion
from mynn.config import NetworkConfig

DESCRIPTION = """Run the project's flows from a shell.

    mynn train [--hidden-nodes N --learning-rate LR --epochs E --seed S --source SRC ...]
    mynn sweep --hidden-nodes 50 100 --learning-rate 0.1 0.3 --seed 0 1 2 [--workers 2]
    mynn reproduce [--seeds 5] [--quick] [--workers 2 | --dask-address tcp://HOST:PORT]
    mynn tune [--hidden-nodes 10 500 --learning-rate 0.01 1 --epochs 1 10] [--trials 40 --timeout 10m] [--resume]
    mynn compare --experiment mynn-sweeps --metric performance --param learning_rate --out plot.png
    mynn reconcile | serve | serve-model | server start|stop|status

Without PREFECT_API_URL the commands share a Prefect server started once in the background
(mynn server stop stops it; MYNN_PREFECT_SERVER=temporary: a temporary server per command
instead); without MLFLOW_TRACKING_URI runs go to sqlite:///<project>/mlflow.db."""
SOURCES = ("shipped (default), shipped-small (the book's 100/10 subsets), book, a folder, file:// or http(s):// "
           "base URL holding mnist_train.csv[.gz] and mnist_test.csv[.gz]")


def _config_options(parser: argparse.ArgumentParser, many: bool = False) -> None:
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


def _space_options(parser: argparse.ArgumentParser) -> None:
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


def _options(parser: argparse.ArgumentParser, *specs: tuple) -> None:
    """``(flag, default, help[, extra keyword arguments])`` each."""
    for flag, default, help_, *extra in specs:
        parser.add_argument(flag, default=default, help=help_, **(extra[0] if extra else {}))


def _runner_options(parser: argparse.ArgumentParser) -> None:
    _options(parser, ("--workers", 2, "points trained in parallel by threads of this process (default: 2)",
                      {"type": int}),
             ("--dask-address", None, "train the points on this existing Dask cluster (prefect-dask) instead",
              {"metavar": "tcp://HOST:PORT"}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mynn", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="download -> preprocess -> train -> evaluate -> register",
                           description="Train the book's network on MNIST as a Prefect flow tracked in MLflow.")
    _config_options(train)
    _options(train, ("--source", "shipped", SOURCES),
             ("--model-name", "mynn", "registered model name (default: mynn)"),
             ("--experiment", "mynn", "MLflow experiment (default: mynn)"),
             ("--resume", None, "continue an interrupted MLflow run of the same config from its last epoch "
                                "checkpoint", {"metavar": "RUN_ID"}),
             ("--alias", "champion", "alias moved to a better version (default: champion)"),
             ("--promotion", promotion.DEFAULT_RULE, f"when the alias moves to the new version: "
                                                     f"{promotion.RULES_HELP} (default: {promotion.DEFAULT_RULE})",
              {"choices": promotion.RULES}),
             ("--alpha", promotion.DEFAULT_ALPHA, f"significance level of the mcnemar rule, in "
                                                  f"({promotion.ALPHA_GT:g}, {promotion.ALPHA_LT:g}) (default: "
                                                  f"{promotion.DEFAULT_ALPHA})", {"type": float}))

    sweep = sub.add_parser("sweep", help="train every combination of a grid; one parent run, a child per point",
                           description="A sweep: every combination of the values given; finished points are "
                                       "reused, smaller epoch counts are taken from one longer training.")
    _config_options(sweep, many=True)
    _options(sweep, ("--source", "shipped", "data source (as for train)"),
             ("--train-records", None, "use only the first N training records", {"type": int}),
             ("--test-records", None, "use only the first M test records", {"type": int}),
             ("--experiment", "mynn-sweeps", "MLflow experiment (default: mynn-sweeps)"),
             ("--name", None, "name of the parent run"))
    _runner_options(sweep)

    tune = sub.add_parser("tune", help="search hyper-parameters with Optuna, chosen on a validation set, pruned",
                          description="An Optuna search (TPE, random or grid) over the options given: one value "
                                      "fixes a field, two give a range (hidden nodes, learning rate and batch size on "
                                      "a log scale), more give choices. Trials are chosen by the score on held-out "
                                      "training records and pruned on it per epoch; the test score of the best trial "
                                      "is reported, never used to choose. One MLflow parent run per study, a child "
                                      "per trial; --resume continues an interrupted study.")
    _space_options(tune)
    _options(tune, ("--trials", 20, "trials in the study when it is done (default: 20)", {"type": int}),
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
    _runner_options(tune)

    rep = sub.add_parser("reproduce", help="every experiment of the book over several seeds, with a report",
                         description="Reproduce the book's table: learning rates, two epoch curves, hidden nodes "
                                     "and the 100/10 run, each over N seeds; the report compares with the book.")
    _options(rep, ("--seeds", 5, "seeds per configuration (default: 5; --quick: 2)", {"type": int}),
             ("--quick", False, "a quick look: first 6,000/1,000 records, 2 seeds", {"action": "store_true"}),
             ("--source", "shipped", "full MNIST source (default: shipped)"),
             ("--experiment", "mynn-reproduce", "MLflow experiment (default: mynn-reproduce)"))
    _runner_options(rep)

    cmp_ = sub.add_parser("compare", help="a metric against a parameter across runs, with mean and spread",
                          description="Query MLflow for runs and draw a metric against a parameter, one point "
                                      "per value with mean, std and range; several experiments side by side.")
    _options(cmp_, ("--experiment", None, "experiment name (repeatable)", {"action": "append", "required": True}),
             ("--filter", "", "MLflow search filter, e.g. \"params.hidden_nodes = '100'\""),
             ("--metric", "performance", "metric (default: performance)"),
             ("--param", "learning_rate", "parameter on the x axis (default: learning_rate)"),
             ("--series", None, "one series per value of this parameter"),
             ("--out", None, "write the plot to this PNG file"))

    srv = sub.add_parser("serve", help="serve the flows as deployments to the Prefect server (PREFECT_API_URL)",
                         description="Serve the train (scheduled retraining), sweep, reproduce and reconcile "
                                     "deployments to the Prefect server at PREFECT_API_URL until stopped.")
    _options(srv, ("--retrain-cron", None, "cron schedule of the train deployment (default: '0 3 * * 1', Mondays "
                                           "03:00)"),
             ("--no-schedule", False, "no scheduled retraining", {"action": "store_true"}),
             ("--source", "shipped", "data source of the deployments (default: shipped)"),
             ("--watch-every", 300.0, "seconds between the watch flow's looks at the source's data; a change "
                                      "starts a training (default: 300; 0: no watch runs)", {"type": float}),
             ("--workers", 2, "parallel points of sweeps (default: 2)", {"type": int}),
             ("--limit", None, "at most this many flow runs at once", {"type": int}))

    sm = sub.add_parser("serve-model", help="serve a registered model over REST (MLflow's scoring API) and a page to "
                                            "draw a digit",
                        description="Answer MLflow's scoring API (/ping, /version, /invocations) for a registered "
                                    "model, loaded from its weights only, following its alias; refuses anything but "
                                    "whole numbers 0..255. At / a page to draw a digit on.")
    _options(sm, ("--model-uri", "models:/mynn@champion", "models:/NAME@ALIAS or models:/NAME/VERSION (default: "
                                                          "models:/mynn@champion)"),
             ("--host", "127.0.0.1", "address to listen on (default: 127.0.0.1)"),
             ("--port", 5001, "port (default: 5001)", {"type": int}),
             ("--poll-seconds", 5.0, "with models:/NAME@ALIAS, look the alias up this often and serve the version "
                                     "it names (default: 5)", {"type": float}))

    ps = sub.add_parser("server", help="this home's background Prefect server: start, stop, status (or prepare)",
                        description="Without PREFECT_API_URL, mynn commands use a Prefect server started once in "
                                    "the background (port 4200 if free) on the database in PREFECT_HOME, with its "
                                    "UI; it runs until stopped (also: prefect server stop).")
    ps.add_argument("action", choices=("start", "stop", "status", "prepare"),
                    help="prepare: make Prefect's database once for new homes (make setup does)")

    rec = sub.add_parser("reconcile", help="close MLflow runs left RUNNING by crashed or cancelled flow runs",
                         description="Find MLflow runs still RUNNING whose Prefect flow run ended badly "
                                     "(crashed, failed, cancelled or gone) and close them as FAILED or KILLED.")
    _options(rec, ("--dry-run", False, "only list what would be closed", {"action": "store_true"}))
    return parser
