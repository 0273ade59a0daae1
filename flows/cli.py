"""The ``mynn`` command: run the project's flows from a shell.

    mynn train [--hidden-nodes N --learning-rate LR --epochs E --seed S --source SRC ...]
    mynn sweep --hidden-nodes 50 100 --learning-rate 0.1 0.3 --seed 0 1 2 [--workers 2]
    mynn reproduce [--seeds 5] [--quick] [--workers 2 | --dask-address tcp://HOST:PORT]
    mynn compare --experiment mynn-sweeps --metric performance --param learning_rate --out plot.png
    mynn reconcile | serve | serve-model

Without ``PREFECT_API_URL`` each command starts a temporary local Prefect server for itself
(:mod:`flows.local_server`: a generous start-up limit, stopped with the command even after
``kill -9``); without ``MLFLOW_TRACKING_URI`` runs go to ``sqlite:///<project>/mlflow.db``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing

from mynn.config import NetworkConfig

TELEMETRY_OFF = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

# A tracking server that goes away mid-run: retry with backoff for a bounded time (about
# 1 + 2 + 4 s of backoff, 20 s per request at most), then fail, instead of MLflow's minutes.
MLFLOW_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                  # MLflow's "View run at <tracking URI>" lines would print credentials in the URI
                  "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


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


def _runner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2,
                        help="points trained in parallel by a process pool on this machine (default: 2)")
    parser.add_argument("--dask-address", default=None, metavar="tcp://HOST:PORT",
                        help="train the points on this existing Dask cluster (prefect-dask) instead")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mynn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="download -> preprocess -> train -> evaluate -> register",
                           description="Train the book's network on MNIST as a Prefect flow tracked in MLflow.")
    _config_options(train)
    train.add_argument("--source", default="shipped",
                       help="shipped (default), shipped-small (the book's 100/10 subsets), book, a folder, "
                            "file:// or http(s):// base URL holding mnist_train.csv[.gz] and mnist_test.csv[.gz]")
    train.add_argument("--model-name", default="mynn", help="registered model name (default: mynn)")
    train.add_argument("--experiment", default="mynn", help="MLflow experiment (default: mynn)")
    train.add_argument("--resume", default=None, metavar="RUN_ID",
                       help="continue an interrupted MLflow run of the same config from its last epoch checkpoint")
    train.add_argument("--alias", default="champion", help="alias moved to a better version (default: champion)")
    train.add_argument("--promotion", default="mcnemar", choices=["mcnemar", "at-least"],
                       help="when the alias moves to the new version: mcnemar (right on more test records than "
                            "the champion and McNemar's one-sided mid-p < --alpha) or at-least (performance >= "
                            "the champion's) (default: mcnemar)")
    train.add_argument("--alpha", type=float, default=0.05,
                       help="significance level of the mcnemar rule, in (0, 1) (default: 0.05)")

    sweep = sub.add_parser("sweep", help="train every combination of a grid; one parent run, a child per point",
                           description="A sweep: every combination of the values given; finished points are "
                                       "reused, smaller epoch counts are taken from one longer training.")
    _config_options(sweep, many=True)
    sweep.add_argument("--source", default="shipped", help="data source (as for train)")
    sweep.add_argument("--train-records", type=int, default=None, help="use only the first N training records")
    sweep.add_argument("--test-records", type=int, default=None, help="use only the first M test records")
    sweep.add_argument("--experiment", default="mynn-sweeps", help="MLflow experiment (default: mynn-sweeps)")
    sweep.add_argument("--name", default=None, help="name of the parent run")
    _runner_options(sweep)

    rep = sub.add_parser("reproduce", help="every experiment of the book over several seeds, with a report",
                         description="Reproduce the book's table: learning rates, two epoch curves, hidden nodes "
                                     "and the 100/10 run, each over N seeds; the report compares with the book.")
    rep.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default: 5; --quick: 2)")
    rep.add_argument("--quick", action="store_true", help="a quick look: first 6,000/1,000 records, 2 seeds")
    rep.add_argument("--source", default="shipped", help="full MNIST source (default: shipped)")
    rep.add_argument("--experiment", default="mynn-reproduce", help="MLflow experiment (default: mynn-reproduce)")
    _runner_options(rep)

    cmp_ = sub.add_parser("compare", help="a metric against a parameter across runs, with mean and spread",
                          description="Query MLflow for runs and draw a metric against a parameter, one point "
                                      "per value with mean, std and range; several experiments side by side.")
    cmp_.add_argument("--experiment", action="append", required=True, help="experiment name (repeatable)")
    cmp_.add_argument("--filter", default="", help="MLflow search filter, e.g. \"params.hidden_nodes = '100'\"")
    cmp_.add_argument("--metric", default="performance", help="metric (default: performance)")
    cmp_.add_argument("--param", default="learning_rate", help="parameter on the x axis (default: learning_rate)")
    cmp_.add_argument("--series", default=None, help="one series per value of this parameter")
    cmp_.add_argument("--out", default=None, help="write the plot to this PNG file")

    srv = sub.add_parser("serve", help="serve the flows as deployments to the Prefect server (PREFECT_API_URL)",
                         description="Serve the train (scheduled retraining), sweep, reproduce and reconcile "
                                     "deployments to the Prefect server at PREFECT_API_URL until stopped.")
    srv.add_argument("--retrain-cron", default=None,
                     help="cron schedule of the train deployment (default: '0 3 * * 1', Mondays 03:00)")
    srv.add_argument("--no-schedule", action="store_true", help="no scheduled retraining")
    srv.add_argument("--source", default="shipped", help="data source of the deployments (default: shipped)")
    srv.add_argument("--workers", type=int, default=2, help="parallel points of sweeps (default: 2)")
    srv.add_argument("--limit", type=int, default=None, help="at most this many flow runs at once")

    sm = sub.add_parser("serve-model", help="serve a registered model over REST (MLflow's scoring API, strict input)",
                        description="Answer MLflow's scoring API (/ping, /version, /invocations) for a registered "
                                    "model, loaded from its weights only; refuses anything but whole numbers 0..255.")
    sm.add_argument("--model-uri", default="models:/mynn@champion",
                    help="models:/NAME@ALIAS or models:/NAME/VERSION (default: models:/mynn@champion)")
    sm.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sm.add_argument("--port", type=int, default=5001, help="port (default: 5001)")

    rec = sub.add_parser("reconcile", help="close MLflow runs left RUNNING by crashed or cancelled flow runs",
                         description="Find MLflow runs still RUNNING whose Prefect flow run ended badly "
                                     "(crashed, failed, cancelled or gone) and close them as FAILED or KILLED.")
    rec.add_argument("--dry-run", action="store_true", help="only list what would be closed")
    return parser


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from flows.ops import DEFAULT_RETRAIN_CRON, serve

    if not os.environ.get("PREFECT_API_URL"):
        parser.error("serve: set PREFECT_API_URL to a running Prefect server (e.g. http://127.0.0.1:4200/api); "
                     "start one with: prefect server start --host 127.0.0.1")
    _check_workers(parser, args)
    cron = None if args.no_schedule else (args.retrain_cron or DEFAULT_RETRAIN_CRON)
    if cron is not None:
        from prefect.client.schemas.schedules import CronSchedule
        from pydantic import ValidationError

        try:
            CronSchedule(cron=cron)
        except ValidationError as exc:
            parser.error(f"--retrain-cron: {cron!r} is not a cron expression ({exc.errors()[0]['msg']})")
    serve(cron, args.source, args.workers, args.limit)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from flows.local_server import temporary_prefect_server
    from tracking.reconcile import prefect_mark_crashed, prefect_state_lookup, reconcile
    from tracking.store import check_reachable, tracking_uri

    uri = tracking_uri()
    check_reachable(uri)
    with temporary_prefect_server():
        closed = reconcile(MlflowClient(uri), prefect_state_lookup(), dry_run=args.dry_run,
                           mark_crashed=prefect_mark_crashed())
    for c in closed:
        print(f"{'would close' if args.dry_run else 'closed'} {c.run_id} ({c.run_name}) as {c.status}: {c.reason}")
    print(f"{len(closed)} run(s) {'to close' if args.dry_run else 'closed'}")
    return 0


def _serve_model(args: argparse.Namespace) -> int:
    from tracking import serving
    from tracking.store import check_reachable, tracking_uri

    check_reachable(tracking_uri())
    served = serving.load(args.model_uri)
    httpd = serving.make_server(served, args.host, args.port)
    print(f"serving {args.model_uri} (version {served.version}) on http://{args.host}:{httpd.server_port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


def _run_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    from pydantic import ValidationError

    from flows.sweep_flow import SweepGrid, sweep_flow, task_runner

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(NetworkConfig)}
    try:
        grid = SweepGrid(**values)
    except ValidationError as exc:
        parser.error("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']} (got {e.get('input')!r})"
                               for e in exc.errors()))
    _check_workers(parser, args)
    from flows.local_server import temporary_prefect_server

    runner = task_runner(args.workers, args.dask_address)
    with temporary_prefect_server():
        return sweep_flow.with_options(task_runner=runner)(
            grid=grid, source=args.source, train_records=args.train_records, test_records=args.test_records,
            experiment=args.experiment, name=args.name)


def _check_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a model name, alias or experiment name MLflow would refuse (or misread) later."""
    from tracking.names import check_alias, check_experiment_name, check_model_name

    for option, check in (("model_name", check_model_name), ("alias", check_alias),
                          ("experiment", check_experiment_name)):
        values = getattr(args, option, None)
        for value in values if isinstance(values, list) else [values]:
            if value is None:
                continue
            try:
                check(value)
            except ValueError as exc:
                parser.error(f"--{option.replace('_', '-')}: {exc}")


def _check_workers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.workers < 1:
        parser.error(f"--workers: must be at least 1 (got {args.workers})")


def _compare(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from tracking import compare, plots
    from tracking.store import tracking_uri

    uri = tracking_uri()
    client = MlflowClient(uri)
    ids = []
    for name in args.experiment:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise SystemExit(f"mynn compare: no experiment {name!r} in {uri}")
        ids.append(exp.experiment_id)
    result = compare.compare(client, ids, args.metric, args.param, args.filter, args.series)
    print(result.markdown(), end="")
    if args.out:
        print(f"plot: {plots.save_png(result.figure(), args.out)}")
    return 0


def _validated_config(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from pydantic import ValidationError

    from flows.params import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(NetworkConfig)}
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']} "
                             f"(got {e.get('input')!r})" for e in exc.errors())
        parser.error(problems)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's input (data, sources): one clear message, no traceback."""
    from mynn.dataset import DataFormatError
    from mynn.sources import FetchError
    from tracking.runs import ResumeError

    return (DataFormatError, FetchError, ResumeError)


class _NoTracebackFor:
    """A logging filter: records of an exception of these types keep their message (which names
    the exception) but lose the traceback, so the console shows one clear line."""

    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        self.types = types

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, self.types):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_user_error_tracebacks() -> None:
    import logging

    quiet = _NoTracebackFor(_user_errors())
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                                       if name.startswith("prefect")]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, _NoTracebackFor) for f in handler.filters):
                handler.addFilter(quiet)


def main(argv: list[str] | None = None) -> int:
    for key, value in {**TELEMETRY_OFF, **MLFLOW_RETRIES}.items():
        os.environ.setdefault(key, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except _user_errors() as exc:
        print(f"mynn {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command in ("train", "sweep", "reproduce"):
        import flows.tasks  # noqa: F401  (imports Prefect, which sets up its log handlers)

        _quiet_user_error_tracebacks()
    _check_names(parser, args)
    if args.command == "train":
        config = _validated_config(parser, args)
        if not (0.0 < args.alpha < 1.0):  # also refuses nan
            parser.error(f"--alpha: must be in (0, 1) (got {args.alpha!r})")
        from flows.local_server import temporary_prefect_server
        from flows.train_flow import train_flow

        with temporary_prefect_server():
            summary = train_flow(config=config, source=args.source, model_name=args.model_name,
                                 experiment=args.experiment, alias=args.alias, promotion=args.promotion,
                                 alpha=args.alpha, resume=args.resume)
        print(json.dumps(summary, indent=2))
        return 0
    if args.command == "sweep":
        summary = _run_sweep(parser, args)
        print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))
        return 0
    if args.command == "reproduce":
        from flows.reproduce import reproduce_flow
        from flows.sweep_flow import task_runner

        _check_workers(parser, args)
        if args.seeds < 1:
            parser.error(f"--seeds: must be at least 1 (got {args.seeds})")
        from flows.local_server import temporary_prefect_server

        with temporary_prefect_server():
            summary = reproduce_flow.with_options(task_runner=task_runner(args.workers, args.dask_address))(
                seeds=args.seeds, quick=args.quick, source=args.source, experiment=args.experiment)
        print(summary["report"])
        print(json.dumps({k: v for k, v in summary.items() if k not in ("report", "results")}, indent=2))
        return 0
    if args.command == "compare":
        return _compare(args)
    if args.command == "serve":
        return _serve(parser, args)
    if args.command == "reconcile":
        return _reconcile(args)
    if args.command == "serve-model":
        return _serve_model(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
