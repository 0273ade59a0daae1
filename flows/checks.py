"""What a ``mynn`` command needs before it runs: its input checked (before any server starts),
the errors that are the user's (one line, no traceback), and its modules loaded up front."""
from __future__ import annotations

import argparse
import dataclasses

from pydantic import BaseModel, ValidationError

from mynn import promotion
from mynn.config import NetworkConfig

#: Commands that talk to Prefect (flows.cli gives them a Prefect API before Prefect loads).
PREFECT_COMMANDS = ("train", "sweep", "reproduce", "tune", "reconcile", "serve")
#: The modules each command imports anyway, loaded up front by :func:`preload`.
COMMAND_MODULES = {
    "train": ("flows.train_flow",),
    "sweep": ("flows.sweep_flow", "flows.runners"),
    "reproduce": ("flows.reproduce", "flows.sweep_flow", "flows.runners"),
    "tune": ("flows.tune_flow", "flows.runners"),
    "reconcile": ("flows.ops",),
    "serve": ("flows.ops",),
}


def preload(command: str) -> None:
    """Import what ``command`` needs (and MLflow's database store when the tracking URI is a
    database), so :func:`flows.cli.main` can load it all in one go."""
    import importlib

    if command not in COMMAND_MODULES:
        return
    for name in COMMAND_MODULES[command]:
        importlib.import_module(name)
    from tracking.store import tracking_uri

    if tracking_uri().split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql"):
        importlib.import_module("mlflow.store.tracking.sqlalchemy_store")


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's input (data, sources, a run to resume): one clear line, no traceback."""
    from mynn.dataset import DataFormatError
    from mynn.search import StudyError
    from mynn.sources import FetchError
    from flows.runners import MissingExtraError
    from tracking.compare import NoRunsError
    from tracking.runs import ResumeError

    return (DataFormatError, FetchError, ResumeError, NoRunsError, MissingExtraError, StudyError)


def _validated(parser: argparse.ArgumentParser, model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    """The config (or grid) options as the flow's pydantic model; a bad value ends in parser.error."""
    try:
        return model(**{f.name: getattr(args, f.name) for f in dataclasses.fields(NetworkConfig)})
    except ValidationError as exc:
        parser.error("; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']} "
                               f"(got {e.get('input')!r})" for e in exc.errors()))


def _check_tune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The search space as the flow's form would take it (``args.space``), and Optuna installed."""
    from flows.params import TuneSpace
    from flows.runners import MissingExtraError
    from mynn import search

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise MissingExtraError("mynn tune needs Optuna, which is not installed: pip install 'mynn[tune]' "
                                "(or optuna)") from None
    try:
        args.space = TuneSpace(**{name: getattr(args, name) for name in search.SEARCHABLE})
        search.space(args.space.model_dump())
    except ValidationError as exc:
        parser.error("; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']} "
                               f"(got {e.get('input')!r})" for e in exc.errors()))
    except ValueError as exc:
        parser.error(str(exc))


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse names MLflow would refuse (or misread) later, out-of-range numbers and bad cron
    expressions up front, before any server starts; the validated config goes to ``args.config``."""
    if args.command in ("train", "sweep"):
        from flows.params import SweepGrid, TrainConfig

        args.config = _validated(parser, TrainConfig if args.command == "train" else SweepGrid, args)
    if args.command == "tune":
        _check_tune(parser, args)
    if args.command in ("sweep", "reproduce", "tune"):
        from flows.runners import task_runner

        args.runner = task_runner(args.workers, args.dask_address, args.processes)  # MissingExtraError without prefect-dask
    if args.command == "serve-model":
        from tracking.serving import parse_model_uri

        try:
            parse_model_uri(args.model_uri)
        except ValueError as exc:
            parser.error(f"--model-uri: {exc}")
        if not args.poll_seconds > 0:
            parser.error(f"--poll-seconds: must be more than 0 (got {args.poll_seconds})")
    if args.command == "serve":
        from flows.ops import DEFAULT_RETRAIN_CRON, check_cron

        if args.watch_every < 0:
            parser.error(f"--watch-every: must be 0 (no watch runs) or more (got {args.watch_every})")

        args.cron = None if args.no_schedule else (args.retrain_cron or DEFAULT_RETRAIN_CRON)
        try:
            check_cron(args.cron)
        except ValueError as exc:
            parser.error(f"--retrain-cron: {exc}")
    from tracking.names import check_alias, check_experiment_name, check_model_name

    checks = {"model_name": check_model_name, "alias": check_alias, "experiment": check_experiment_name,
              "alpha": promotion.check_alpha}
    for option, check in checks.items():
        values = getattr(args, option, None) if args.command != "compare" or option != "experiment" else None
        for value in values if isinstance(values, list) else [values]:
            try:
                None if value is None else check(value)
            except ValueError as exc:
                parser.error(f"--{option.replace('_', '-')}: {exc}")
    tune = (("trials", 1), ("grid_points", 2), ("validation_records", 1), ("patience", 0), ("seed", 0))
    for option, least in (("workers", 1), ("seeds", 1)) + (tune if args.command == "tune" else ()):
        if getattr(args, option, least) < least:
            parser.error(f"--{option.replace('_', '-')}: must be at least {least} (got {getattr(args, option)})")
