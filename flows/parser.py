"""The ``mynn`` command's options (:func:`build_parser`); :mod:`flows.cli` runs what they parse."""
from __future__ import annotations

import argparse

from flows.options import add_tune, config_options, options, runner_options
from mynn import promotion

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mynn", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="download -> preprocess -> train -> evaluate -> register",
                           description="Train the book's network on MNIST as a Prefect flow tracked in MLflow.")
    config_options(train)
    options(train, ("--source", "shipped", SOURCES),
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
    config_options(sweep, many=True)
    options(sweep, ("--source", "shipped", "data source (as for train)"),
            ("--train-records", None, "use only the first N training records", {"type": int}),
            ("--test-records", None, "use only the first M test records", {"type": int}),
            ("--experiment", "mynn-sweeps", "MLflow experiment (default: mynn-sweeps)"),
            ("--name", None, "name of the parent run"))
    runner_options(sweep)

    add_tune(sub)

    rep = sub.add_parser("reproduce", help="every experiment of the book over several seeds, with a report",
                         description="Reproduce the book's table: learning rates, two epoch curves, hidden nodes "
                                     "and the 100/10 run, each over N seeds; the report compares with the book.")
    options(rep, ("--seeds", 5, "seeds per configuration (default: 5; --quick: 2)", {"type": int}),
            ("--quick", False, "a quick look: first 6,000/1,000 records, 2 seeds", {"action": "store_true"}),
            ("--source", "shipped", "full MNIST source (default: shipped)"),
            ("--experiment", "mynn-reproduce", "MLflow experiment (default: mynn-reproduce)"))
    runner_options(rep)

    cmp_ = sub.add_parser("compare", help="a metric against a parameter across runs, with mean and spread",
                          description="Query MLflow for runs and draw a metric against a parameter, one point "
                                      "per value with mean, std and range; several experiments side by side.")
    options(cmp_, ("--experiment", None, "experiment name (repeatable)", {"action": "append", "required": True}),
            ("--filter", "", "MLflow search filter, e.g. \"params.hidden_nodes = '100'\""),
            ("--metric", "performance", "metric (default: performance)"),
            ("--param", "learning_rate", "parameter on the x axis (default: learning_rate)"),
            ("--series", None, "one series per value of this parameter"),
            ("--out", None, "write the plot to this PNG file"))

    srv = sub.add_parser("serve", help="serve the flows as deployments to the Prefect server (PREFECT_API_URL)",
                         description="Serve the train (scheduled retraining), sweep, reproduce and reconcile "
                                     "deployments to the Prefect server at PREFECT_API_URL until stopped.")
    options(srv, ("--retrain-cron", None, "cron schedule of the train deployment (default: '0 3 * * 1', Mondays "
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
    options(sm, ("--model-uri", "models:/mynn@champion", "models:/NAME@ALIAS or models:/NAME/VERSION (default: "
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
    options(rec, ("--dry-run", False, "only list what would be closed", {"action": "store_true"}))
    return parser
