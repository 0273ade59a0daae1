"""What each ``mynn`` command does once :mod:`flows.cli` has parsed and :mod:`flows.checks` has
checked it: run the flow (its Prefect API set by flows.local_server) and print."""
from __future__ import annotations

import argparse
import json
import logging

from flows.checks import user_errors


class _NoTracebackFor(logging.Filter):
    """Records of these exceptions keep their message but lose the traceback: one clear line."""

    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.types = types

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.types):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_user_error_tracebacks() -> None:
    import flows.tasks  # noqa: F401  (imports Prefect, which sets up its log handlers)

    quiet = _NoTracebackFor(user_errors())
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                                       if name.startswith("prefect")]
    for handler in (h for logger in loggers for h in logger.handlers):
        if not any(isinstance(f, _NoTracebackFor) for f in handler.filters):
            handler.addFilter(quiet)


def _server(action: str) -> None:
    """``mynn server start|stop|status|prepare``: this home's background Prefect server, or
    (prepare) Prefect's migrated database for new homes (:mod:`flows.prefect_db`)."""
    from flows import background_server as bg, prefect_db, server_process
    from flows.local_server import STARTUP_TIMEOUT_SECONDS

    if action == "prepare":
        print(f"Prefect's database for new homes: {prefect_db.prepare()}")
    elif action == "start":
        server, started = bg.begin().wait(STARTUP_TIMEOUT_SECONDS)
        print(f"{'started' if started else 'already running'}: UI {server.url}, API {server.api_url} (pid {server.pid})")
    elif action == "stop":
        server = bg.stop()
        print(f"stopped the Prefect server at {server.url} (pid {server.pid})" if server else "no server was running")
    else:
        server = bg.find()
        print(f"running: UI {server.url}, API {server.api_url} (pid {server.pid}, home {server.home})" if server
              else f"not running (home {server_process.prefect_home()})")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command in ("train", "sweep", "reproduce", "tune"):
        _quiet_user_error_tracebacks()
    cmd = args.command
    if cmd == "train":
        from flows.train_flow import train_flow

        summary = train_flow(config=args.config, source=args.source,
                              model_name=args.model_name, experiment=args.experiment, alias=args.alias,
                              promotion=args.promotion, alpha=args.alpha, resume=args.resume or "")
        print(json.dumps(summary, indent=2))
    elif cmd in ("sweep", "reproduce"):
        from flows.reproduce import reproduce_flow
        from flows.sweep_flow import sweep_flow

        runner = args.runner
        if cmd == "sweep":
            summary = sweep_flow.with_options(task_runner=runner)(grid=args.config,
                                  source=args.source, train_records=args.train_records,
                                  test_records=args.test_records, experiment=args.experiment, name=args.name)
        else:
            summary = reproduce_flow.with_options(task_runner=runner)(seeds=args.seeds, quick=args.quick,
                                  source=args.source, experiment=args.experiment)
            print(summary["report"])
        print(json.dumps({k: v for k, v in summary.items() if k not in ("report", "results")}, indent=2))
    elif cmd == "tune":
        from flows.tune_flow import tune_flow

        summary = tune_flow.with_options(task_runner=args.runner)(
            space=args.space, trials=args.trials, timeout_minutes=args.timeout, sampler=args.sampler,
            pruner=args.pruner, grid_points=args.grid_points, validation_records=args.validation_records,
            patience=args.patience, seed=args.seed, study=args.study, resume=args.resume, workers=args.workers,
            source=args.source, train_records=args.train_records, test_records=args.test_records,
            experiment=args.experiment)
        print(json.dumps(summary, indent=2))
    elif cmd == "compare":
        from tracking import compare, plots
        from tracking.store import tracking_uri

        result = compare.compare_experiments(tracking_uri(), args.experiment, args.metric, args.param, args.filter,
                                             args.series)
        print(result.markdown(), end="")
        if args.out:
            print(f"plot: {plots.save_png(result.figure(), args.out)}")
    elif cmd == "reconcile":
        from flows.ops import reconcile_runs

        closed = reconcile_runs(dry_run=args.dry_run)
        for c in closed:
            print(f"{'would close' if args.dry_run else 'closed'} {c.run_id} ({c.run_name}) as {c.status}: {c.reason}")
        print(f"{len(closed)} run(s) {'to close' if args.dry_run else 'closed'}")
    elif cmd == "serve":
        from flows.ops import serve

        serve(args.cron, args.source, args.workers, args.limit, args.watch_every or None)
    elif cmd == "server":
        _server(args.action)
    elif cmd == "serve-model":
        from tracking import serving

        serving.serve(args.model_uri, args.host, args.port, args.poll_seconds)
    return 0
