"""The main job: one flow, download -> preprocess -> train -> evaluate -> register.

It leaves a complete MLflow run (parameters, dataset inputs, per-epoch metrics, weights,
plots, model version and alias decision) and, on the Prefect side, a link artifact to that
run and a markdown summary. A failure at any step ends the MLflow run FAILED (KILLED on
Ctrl-C or SIGTERM); nothing is registered from a run that did not pass evaluation.
"""
from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import artifacts, events, tasks
from flows.params import Alias, Alpha, ExperimentName, ModelName, Promotion, TrainConfig, to_network_config
from mynn import paths
from mynn.sources import redact_url
from mynn.train import warm_kernels_in_background
from tracking.names import DEFAULT_EXPERIMENT
from tracking.runs import SYSTEM_METRICS_SECONDS, closing_run, describe_run, log_metrics, open_run
from tracking.store import tracking_uri


def _flow_run_name() -> str:
    return to_network_config((flow_run.parameters or {}).get("config")).run_name()


@flow(name="mynn-train", flow_run_name=_flow_run_name, validate_parameters=True)
def train_flow(
    config: TrainConfig = TrainConfig(),
    source: str = "shipped",
    model_name: ModelName = "mynn",
    experiment: ExperimentName = DEFAULT_EXPERIMENT,
    alias: Alias = "champion",
    promotion: Promotion = "mcnemar",
    alpha: Alpha = 0.05,
    resume: str = "",
) -> dict:
    """Train the book's network on MNIST and track everything in MLflow.

    Args:
        config: The network and its training (hidden nodes, learning rate, epochs, seed, options).
        source: Where the data comes from: shipped, shipped-small (the book's 100/10 subsets), book,
            a folder, or a file:// or http(s):// base URL holding mnist_train/mnist_test .csv[.gz].
        model_name: The registered model's name in MLflow: letters, digits, ".", "_" and "-", starting
            with a letter or digit, at most 200 characters.
        experiment: The MLflow experiment of the run.
        alias: The alias that moves to a new version only if it is better than the current one: a letter,
            then letters, digits, "_" and "-", at most 100 characters; not "latest" or "v<number>".
        promotion: When the alias moves: "mcnemar" (right on more test records than the champion and
            McNemar's one-sided mid-p below alpha) or "at-least" (performance at least the champion's).
        alpha: Significance level of the "mcnemar" rule: more than 0, less than 1.
        resume: Empty for a new run; or the MLflow run id of an interrupted run of this config, to
            continue from its last epoch checkpoint.

    Returns a summary: run id and URL, performance, model version, and whether the alias moved.
    """
    t0 = time.perf_counter()
    warm_kernels_in_background()  # numba loads while the run opens and the data is checked
    log = get_run_logger()
    cfg, uri = to_network_config(config), tracking_uri()
    fr_id, fr_url = artifacts.current_flow_run()
    run_id, url, resumed = open_run(uri, experiment, cfg, runs_dir=paths.runs_dir(), resume=resume,
                                    flow_run_id=fr_id, flow_run_url=fr_url)
    log.info(f"{'resuming ' if resumed else ''}MLflow run {run_id} ({cfg.run_name()}) in {redact_url(uri)}: {url}")
    artifacts.link(url, f"MLflow run {cfg.run_name()}", key="mlflow-run")
    with closing_run(uri, run_id, system_metrics_seconds=SYSTEM_METRICS_SECONDS):
        data = tasks.preprocess(tasks.download(source))
        tasks.log_data(data, uri, run_id)
        trained = tasks.train(data, cfg, uri, run_id)
        ev = tasks.evaluate(trained, data, uri, run_id)
        reg = tasks.register(trained, data, ev.performance, uri, run_id, model_name, alias, promotion, alpha)
        if reg.promoted:  # (serving apps following the alias pick it up; automations may act on it)
            events.emit_promoted(reg, run_id, data)
        pipeline_seconds = time.perf_counter() - t0
        log_metrics(uri, run_id, {"timing/pipeline_seconds": pipeline_seconds})
    summary = {
        "run_id": run_id, "run_url": url, "run_name": cfg.run_name(), "performance": ev.performance,
        "model_name": reg.model_name, "model_version": reg.version, "promoted": reg.promoted,
        "reason": reg.reason, "training_seconds": trained.training_seconds,
        "pipeline_seconds": pipeline_seconds, "records_per_s": trained.records_per_s,
        **({} if trained.best_epoch is None else {"validation_performance": trained.validation_performance,
                                                  "best_epoch": trained.best_epoch,
                                                  "stopped_epoch": trained.stopped_epoch})}
    describe_run(uri, run_id, artifacts.train_summary(cfg, source, summary, alias))  # clickable links in MLflow too
    return summary
