"""The ``mynn`` command: run the project's flows from a shell.

    mynn train [--hidden-nodes N --learning-rate LR --epochs E --seed S --source SRC ...]
    mynn sweep --hidden-nodes 50 100 --learning-rate 0.1 0.3 --seed 0 1 2 [--workers 2]
    mynn reproduce [--seeds 5] [--quick] [--workers 2 | --dask-address tcp://HOST:PORT]
    mynn tune [--hidden-nodes 10 500 --learning-rate 0.01 1 --epochs 1 10] [--trials 40 --timeout 10m] [--resume]
    mynn compare --experiment mynn-sweeps --metric performance --param learning_rate --out plot.png
    mynn reconcile | serve | serve-model | server start|stop|status

Without ``PREFECT_API_URL`` the commands share a Prefect server started once in the background
(:mod:`flows.local_server`; ``mynn server stop`` stops it; ``MYNN_PREFECT_SERVER=temporary``:
a temporary server per command instead); without ``MLFLOW_TRACKING_URI`` runs go to ``sqlite:///<project>/mlflow.db``.
:mod:`flows.parser` builds the parser, :mod:`flows.checks` checks what it parsed before any
server starts, :mod:`flows.commands` runs it.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys

from flows.parser import build_parser

__all__ = ["build_parser", "main"]

TELEMETRY_OFF = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def main(argv: list[str] | None = None) -> int:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    from flows import checks, commands, local_server

    try:
        checks.check(parser, args)  # bad input ends here, before any server starts
    except checks.user_errors() as exc:
        print(f"mynn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    uses_prefect = args.command in checks.PREFECT_COMMANDS
    with local_server.prefect_api() if uses_prefect else contextlib.nullcontext() as api:
        # The server starts (if it must) while the command's modules load. Those allocate
        # millions of objects that live until exit: no collections while they load (about
        # 1 s of 7), then they are frozen out of later ones.
        gc.disable()
        try:
            checks.preload(args.command)
        finally:
            gc.freeze()
            gc.enable()
        try:
            if api is not None:
                api.wait()
            return commands.run(parser, args)
        except checks.user_errors() as exc:
            print(f"mynn {args.command}: error: {exc}", file=sys.stderr)
            return 1
        finally:
            sys.stdout.flush()
            gc.freeze()  # nothing left to collect at exit: finalizing skips walking the heap (about 1.5 s)


if __name__ == "__main__":
    sys.exit(main())
