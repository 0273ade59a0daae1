"""Sweeps: many points of the network's config, one parent run and one child run per point.

``sweep_flow`` trains a grid; ``reproduce_flow`` (in flows.reproduce) runs the book's whole
table. Both download and preprocess once, skip points that already finished (same config,
data and code), derive smaller epoch counts from one longer training, and train the rest in
parallel on the flow's task runner: a process pool by default, or a Dask cluster through
prefect-dask (see :func:`task_runner`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

from mlflow import MlflowClient
from mlflow.entities import Metric
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, create_model

from flows import tasks
from flows.params import ExperimentName
from mynn import paths
from mynn.config import NetworkConfig
from mynn.sources import redact_url
from mynn.grid import code_version, expand, group_id, plan, point_id
from mynn.prepare import Prepared, subset
from tracking import compare as _compare
from tracking import plots
from tracking.runs import (TAG_PREFECT_FLOW_RUN_ID, TAG_PREFECT_FLOW_RUN_URL, closing_run, code_version as git_version,
                           log_params, now_ms)
from tracking.store import ensure_experiment, run_ui_url, tracking_uri
from tracking.sweeps import (DataRef, PointResult, TrainingJob, finished_points, history_of, log_copy,
                             run_training, table)

DEFAULT_WORKERS = 2


def _grid_fields() -> dict[str, tuple[object, object]]:
    hints = typing.get_type_hints(NetworkConfig)
    out: dict[str, tuple[object, object]] = {}
    for f in dataclasses.fields(NetworkConfig):
        bounds = {k: v for k, v in f.metadata.items() if k in ("ge", "gt", "le", "lt")}
        item = Annotated[hints[f.name], Field(**bounds)] if bounds else hints[f.name]
        out[f.name] = (list[item], Field(default=[f.default], min_length=1, max_length=100,
                                         title=f.name.replace("_", " ").capitalize(),
                                         description=f"Values to try. {f.metadata['doc']}"))
    return out


SweepGrid: type[BaseModel] = create_model(
    "SweepGrid", __config__=ConfigDict(extra="forbid", title="Grid"),
    __doc__="Lists of values per config field; the sweep runs every combination.", **_grid_fields())


def task_runner(workers: int = DEFAULT_WORKERS, dask_address: str | None = None):
    """A process pool of ``workers`` on this machine, or the Dask cluster at ``dask_address``."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ProcessPoolTaskRunner(max_workers=workers)


@task(name="train-points", cache_policy=NO_CACHE)
def train_points(job: TrainingJob) -> list[PointResult]:
    """Train one group of points (one training to the largest epoch count) and log its
    children under the sweep's parent run (tracking.sweeps.run_training)."""
    return run_training(job)


@task(name="subset", cache_policy=NO_CACHE)
def take_subset(data: tasks.PreparedData, train_records: int | None, test_records: int | None) -> tasks.PreparedData:
    """The first N training and M test records of prepared data, stored like any dataset."""
    root = paths.cache_dir()
    tr = Prepared(data.train_dir, data.train_digest, data.train_records, data.train_known_as, True)
    te = Prepared(data.test_dir, data.test_digest, data.test_records, data.test_known_as, True)
    if train_records:
        tr = subset(tr, train_records, root)
    if test_records:
        te = subset(te, test_records, root)
    return tasks.PreparedData(data.source, tr.directory, te.directory, tr.digest, te.digest, tr.records,
                              te.records, tr.known_as, te.known_as)


@task(name="compare", cache_policy=NO_CACHE)
def compare_task(tracking_uri_: str, experiment_ids: list[str], metric: str, param: str, filter_string: str = "",
                 series_param: str | None = None) -> _compare.Comparison:
    """Query MLflow for runs matching a filter; ``metric`` grouped by ``param`` (tracking.compare)."""
    return _compare.compare(MlflowClient(tracking_uri_), experiment_ids, metric, param, filter_string, series_param)


def prepare_data(source: str, train_records: int | None = None, test_records: int | None = None) -> DataRef:
    """Download and preprocess once (optionally a head subset); a reference workers can load."""
    downloaded = tasks.download(source)
    data = tasks.preprocess(downloaded)
    if train_records or test_records:
        data = take_subset(data, train_records, test_records)
    if data.train_known_as == "mnist_train" and data.test_known_as == "mnist_test":
        label = "full"
    elif data.train_known_as == "mnist_train_100" and data.test_known_as == "mnist_test_10":
        label = "small"
    else:
        label = f"n{data.train_records}-{data.test_records}"
    return DataRef(label, str(data.train_dir), str(data.test_dir), data.train_digest, data.test_digest)


@contextmanager
def _workers_reach_this_api():
    """Worker processes must talk to this flow's Prefect API, also to a temporary server
    (whose address is not in the environment): export it while the workers start."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        os.environ["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def run_points(client: MlflowClient, uri: str, experiment_id: str, parent_run_id: str,
               point_sets: list[tuple[DataRef, list[NetworkConfig]]]) -> list[PointResult]:
    """Reuse what finished before, derive epoch counts, train the rest in parallel."""
    log = get_run_logger()
    code = code_version()
    fr_id = str(flow_run.id) if flow_run.id else None
    by_point, by_group = finished_points(client, experiment_id)
    results: list[PointResult] = []
    jobs: list[TrainingJob] = []
    for data, configs in point_sets:
        todo = []
        for cfg in configs:
            pid = point_id(cfg, data.train_digest, data.test_digest, code)
            source_run, kind = by_point.get(pid), "reused"
            if source_run is not None and not source_run.is_point(cfg, data, code):
                log.warning(f"run {source_run.run_id} carries point id {pid} but its parameters are another "
                            "point: not reused")
                source_run = None
            if source_run is None:  # a longer training of the same group gives this epoch count
                longer = [f for f in by_group.get(group_id(cfg, data.train_digest, data.test_digest, code), [])
                          if (f.epochs_trained or 0) >= cfg.epochs
                          and f.is_point(cfg, data, code, epochs=f.epochs_trained)]
                source_run, kind = (longer[0] if longer else None), "derived"
            if source_run is None:
                todo.append(cfg)
                continue
            perf, mse = history_of(client, source_run.run_id)
            results.append(log_copy(client, experiment_id, parent_run_id, cfg, data, code,
                                    f"{kind}:{source_run.run_id}", perf[:cfg.epochs], mse[:cfg.epochs], fr_id))
            log.info(f"{cfg.run_name()} ({data.label}): {kind} from run {source_run.run_id}, not trained again")
        for training in plan(todo):
            jobs.append(TrainingJob(uri, experiment_id, parent_run_id, training, data, code, str(paths.runs_dir()),
                                    fr_id))
    # longest first, so the pool finishes together: cost ~ H * epochs
    jobs.sort(key=lambda j: -j.training.config.hidden_nodes * j.training.config.epochs)
    log.info(f"{len(results)} point(s) reused or derived from earlier runs; {len(jobs)} training(s) to run")
    errors = []
    with _workers_reach_this_api():
        futures = [train_points.submit(job) for job in jobs]
        for fut in futures:
            try:
                results.extend(fut.result())
            except Exception as exc:  # let the others finish; fail the sweep below
                errors.append(exc)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(jobs)} training(s) failed; first: {errors[0]!r}") from errors[0]
    return results


def start_parent(client: MlflowClient, experiment_id: str, name: str, kind: str, params: dict) -> str:
    tags = {"mlflow.runName": name, "mynn.kind": kind, "mlflow.source.git.commit": git_version()["git_commit"]}
    if flow_run.id:
        tags[TAG_PREFECT_FLOW_RUN_ID] = str(flow_run.id)
        if flow_run.ui_url:
            tags[TAG_PREFECT_FLOW_RUN_URL] = str(flow_run.ui_url)
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    log_params(client, run_id, params)
    return run_id


def log_sweep_summary(client: MlflowClient, uri: str, experiment_id: str, parent_run_id: str,
                      results: list[PointResult], wall_start: float) -> dict:
    """Summary table (CSV, markdown), best point, origin counts, timing and plots on the parent."""
    csv_text, md = table(results)
    groups: dict[tuple, list[PointResult]] = {}
    for r in results:
        groups.setdefault((r.data, dataclasses.replace(r.config, seed=0)), []).append(r)
    best_key, best = max(groups.items(), key=lambda kv: sum(p.performance for p in kv[1]) / len(kv[1]))
    best_mean = sum(p.performance for p in best) / len(best)
    counts = {k: sum(r.origin.startswith(k) for r in results) for k in ("trained", "derived", "reused")}
    training_seconds = sum(r.training_seconds for r in results)
    wall = time.perf_counter() - wall_start
    ts = now_ms()
    client.log_batch(parent_run_id, metrics=[
        Metric("best_mean_performance", best_mean, ts, 0), Metric("points", len(results), ts, 0),
        Metric("trained_points", counts["trained"], ts, 0), Metric("derived_points", counts["derived"], ts, 0),
        Metric("reused_points", counts["reused"], ts, 0), Metric("training_seconds_total", training_seconds, ts, 0),
        Metric("wall_seconds", wall, ts, 0)])
    best_name = best_key[1].run_name().replace("-s0", "", 1) + f" ({best_key[0]})"  # keeps -f32, -b8sum, -exact
    client.set_tag(parent_run_id, "mynn.best_point", best_name)
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / "summary.csv").write_text(csv_text)
        (tmpd / "summary.md").write_text(md)
        (tmpd / "best.json").write_text(json.dumps({"point": best_name, "mean_performance": best_mean,
                                                    "runs": [p.run_id for p in best]}, indent=2))
        for name in ("summary.csv", "summary.md", "best.json"):
            client.log_artifact(parent_run_id, str(tmpd / name))
        varied = [f for f in NetworkConfig.__dataclass_fields__ if f != "seed"
                  and len({getattr(r.config, f) for r in results}) > 1]
        numeric = [f for f in varied if f in ("hidden_nodes", "learning_rate", "epochs", "batch_size")]
        for f in numeric:
            others = [o for o in varied if o != f]
            comp = compare_task(uri, [experiment_id], "performance", f,
                                f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                                others[0] if len(others) == 1 else None)
            plots.save_png(comp.figure(title=f"performance vs {f}", log_x=f == "learning_rate"),
                           tmpd / f"performance_vs_{f}.png")
            client.log_artifact(parent_run_id, str(tmpd / f"performance_vs_{f}.png"), "plots")
    return {"points": len(results), **counts, "best_point": best_name, "best_mean_performance": best_mean,
            "training_seconds_total": training_seconds, "wall_seconds": wall, "summary_markdown": md}


@flow(name="mynn-sweep", task_runner=ProcessPoolTaskRunner(max_workers=DEFAULT_WORKERS))
def sweep_flow(
    grid: SweepGrid = SweepGrid(),
    source: Annotated[str, Field(description="shipped, shipped-small, book, a folder, file:// or http(s):// URL")] = "shipped",
    train_records: Annotated[Optional[int], Field(ge=1, description="Use only the first N training records")] = None,
    test_records: Annotated[Optional[int], Field(ge=1, description="Use only the first M test records")] = None,
    experiment: Annotated[ExperimentName, Field(description="MLflow experiment")] = "mynn-sweeps",
    name: Annotated[Optional[str], Field(description="Name of the parent run")] = None,
) -> dict:
    """Train every combination of the grid; one MLflow parent run, one child run per point."""
    t0 = time.perf_counter()
    uri = tracking_uri()
    client, experiment_id = ensure_experiment(uri, experiment)  # the store exists before any child starts
    data = prepare_data(source, train_records, test_records)
    grid_values = (grid if isinstance(grid, BaseModel) else SweepGrid(**grid)).model_dump()
    configs = expand(grid_values)
    name = name or f"sweep-{len(configs)}pts-{data.label}"
    parent = start_parent(client, experiment_id, name, "sweep", {
        "grid": json.dumps(grid_values)[:6000], "source": redact_url(source), "data": data.label,
        "train_digest": data.train_digest, "test_digest": data.test_digest, "points": len(configs),
        "code_version": code_version()})
    url = run_ui_url(uri, experiment_id, parent)
    get_run_logger().info(f"sweep {name}: {len(configs)} point(s), parent run {parent}: {url}")
    with closing_run(client, parent):
        results = run_points(client, uri, experiment_id, parent, [(data, configs)])
        summary = log_sweep_summary(client, uri, experiment_id, parent, results, t0)
    create_link_artifact(link=url, link_text=f"MLflow parent run {name}", key="mlflow-sweep")
    create_markdown_artifact(key="sweep-summary", markdown=f"# {name}\n\nBest: {summary['best_point']} "
                             f"({summary['best_mean_performance']:.4f})\n\n" + summary["summary_markdown"])
    return {"parent_run_id": parent, "parent_url": url, **{k: v for k, v in summary.items() if k != "summary_markdown"},
            "results": [r.row() for r in results]}
