"""The main job: one flow, download -> preprocess -> train -> evaluate -> register.

It leaves a complete MLflow run (parameters, dataset inputs, per-epoch metrics, weights,
plots, model version and alias decision) and, on the Prefect side, a link artifact to that
run and a markdown summary. A failure at any step ends the MLflow run FAILED (KILLED on
Ctrl-C or SIGTERM); nothing is registered from a run that did not pass evaluation.
"""
from __future__ import annotations

import time
from typing import Annotated, Optional, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field

from flows import tasks
from flows.params import Alias, ExperimentName, ModelName, TrainConfig, to_network_config
from mynn import paths
from mynn.sources import redact_url
from tracking.runs import (TAG_PREFECT_FLOW_RUN_ID, TAG_PREFECT_FLOW_RUN_URL, check_checkpoints, closing_run,
                           interrupted_run_of_flow_run, reopen_run, start_run)
from tracking.store import DEFAULT_EXPERIMENT, ensure_experiment, run_ui_url, tracking_uri


def _flow_run_name() -> str:
    params = flow_run.parameters or {}
    return to_network_config(params.get("config")).run_name()


@flow(name="mynn-train", flow_run_name=_flow_run_name, validate_parameters=True)
def train_flow(
    config: TrainConfig = TrainConfig(),
    source: str = "shipped",
    model_name: ModelName = "mynn",
    experiment: ExperimentName = DEFAULT_EXPERIMENT,
    alias: Alias = "champion",
    promotion: Literal["mcnemar", "at-least"] = "mcnemar",
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05,
    resume: Optional[str] = None,
) -> dict:
    """Train the book's network on MNIST and track everything in MLflow.

    Args:
        config: The network and its training (hidden nodes, learning rate, epochs, seed, options).
        source: Where the data comes from: shipped, shipped-small (the book's 100/10 subsets), book,
            a folder, or a file:// or http(s):// base URL holding mnist_train/mnist_test .csv[.gz].
        model_name: The registered model's name in MLflow.
        experiment: The MLflow experiment of the run.
        alias: The alias that moves to a new version only if it is better than the current one.
        promotion: When the alias moves: "mcnemar" (right on more test records than the champion and
            McNemar's one-sided mid-p below alpha) or "at-least" (performance at least the champion's).
        alpha: Significance level of the "mcnemar" rule.
        resume: The MLflow run id of an interrupted run of this config, to continue from its last
            epoch checkpoint.

    Returns a summary: run id and URL, performance, model version, and whether the alias moved.
    """
    t0 = time.perf_counter()
    log = get_run_logger()
    cfg = to_network_config(config)
    uri = tracking_uri()
    client, experiment_id = ensure_experiment(uri, experiment)  # fails fast, naming the address
    tags: dict[str, str] = {}  # (start_run and reopen_run add the owner: pid, host, start time)
    if flow_run.id:
        tags[TAG_PREFECT_FLOW_RUN_ID] = str(flow_run.id)
        if flow_run.ui_url:
            tags[TAG_PREFECT_FLOW_RUN_URL] = str(flow_run.ui_url)
        # a restarted (retried or rescheduled) flow run continues its own interrupted MLflow run
        resume = resume or interrupted_run_of_flow_run(client, experiment_id, str(flow_run.id))
    if resume:
        check_checkpoints(client, resume, paths.runs_dir() / resume / "checkpoints")  # before it is reopened
        run_id = reopen_run(client, resume, cfg, tags)
        log.info(f"resuming MLflow run {run_id} ({cfg.run_name()}) from its last checkpoint")
    else:
        run_id = start_run(client, experiment_id, cfg, tags=tags)
    url = run_ui_url(uri, experiment_id, run_id)
    log.info(f"MLflow run {run_id} ({cfg.run_name()}) in {redact_url(uri)}: {url}")
    create_link_artifact(link=url, link_text=f"MLflow run {cfg.run_name()}", key="mlflow-run",
                         description="The MLflow run of this flow run")
    with closing_run(client, run_id):
        downloaded = tasks.download(source)
        data = tasks.preprocess(downloaded)
        tasks.log_data(data, downloaded, uri, run_id)
        trained = tasks.train(data, cfg, uri, run_id)
        ev = tasks.evaluate(trained, data, uri, run_id)
        reg = tasks.register(trained, data, ev.performance, uri, run_id, model_name, alias,
                             promotion=promotion, alpha=alpha)
        pipeline_seconds = time.perf_counter() - t0
        client.log_metric(run_id, "pipeline_seconds", pipeline_seconds)
    summary = {
        "run_id": run_id, "run_url": url, "run_name": cfg.run_name(), "performance": ev.performance,
        "model_name": reg.model_name, "model_version": reg.version, "promoted": reg.promoted,
        "reason": reg.reason, "training_seconds": trained.training_seconds,
        "pipeline_seconds": pipeline_seconds, "records_per_s": trained.records_per_s,
    }
    create_markdown_artifact(key="summary", description="Result of this training", markdown="\n".join([
        f"# {cfg.run_name()}: performance {ev.performance:.4f}",
        "", f"MLflow run: [{run_id}]({url})", "",
        "| parameter | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in cfg.to_dict().items()],
        f"| source | {redact_url(source)} |", "",
        f"Model **{reg.model_name}** version {reg.version}: "
        f"{'promoted to' if reg.promoted else 'not promoted to'} `{alias}` ({reg.reason}).", "",
        f"Training {trained.training_seconds:.1f} s ({trained.records_per_s:,.0f} records/s) "
        f"of {pipeline_seconds:.1f} s in the flow.",
    ]))
    return summary
