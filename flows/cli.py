"""The ``mynn`` command: run the project's flows from a shell.

    mynn train [--hidden-nodes N --learning-rate LR --epochs E --seed S --source SRC ...]

Without ``PREFECT_API_URL`` Prefect starts a temporary local server for the run; without
``MLFLOW_TRACKING_URI`` runs go to ``sqlite:///<project>/mlflow.db``.
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


def _config_options(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(NetworkConfig)
    group = parser.add_argument_group("network and training")
    for f in dataclasses.fields(NetworkConfig):
        kind = hints[f.name]
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=f.default,
                           type=None if choices else kind, choices=choices,
                           help=f"{f.metadata['doc']} (default: {f.default})")


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
    train.add_argument("--alias", default="champion", help="alias moved to a better version (default: champion)")
    return parser


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


def main(argv: list[str] | None = None) -> int:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        config = _validated_config(parser, args)
        from flows.train_flow import train_flow

        summary = train_flow(config=config, source=args.source, model_name=args.model_name,
                             experiment=args.experiment, alias=args.alias)
        print(json.dumps(summary, indent=2))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
