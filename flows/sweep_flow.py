"""A sweep: every combination of a grid; one parent run, one child run per point.

It downloads and preprocesses once, skips points that already finished (same config, data and
code), derives smaller epoch counts from one longer training, and trains the rest in parallel
on the flow's task runner: threads of the flow's process by default, or a Dask cluster (flows.runners).
"""
from __future__ import annotations

import json
import time
from typing import Annotated, Optional

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows import artifacts
from flows.params import ExperimentName, SweepGrid, grid_values
from flows.runners import DEFAULT_WORKERS
from flows.sweeping import prepare_data, run_points, start_sweep
from mynn.sources import redact_url
from mynn.grid import expand
from tracking import evaluation
from tracking.runs import SYSTEM_METRICS_SECONDS, closing_run
from tracking.store import ensure_experiment, tracking_uri
from tracking.sweep_summary import log_summary


@flow(name="mynn-sweep", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS))
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
    evaluation.prefetch(kernels=True)  # kernels and late imports load while the data is checked
    uri = tracking_uri()
    _, experiment_id = ensure_experiment(uri, experiment)  # the store exists before any child starts
    data = prepare_data(source, train_records, test_records)
    values = grid_values(grid)
    configs = expand(values)
    name = name or f"sweep-{len(configs)}pts-{data.label}"
    sweep, url = start_sweep(uri, experiment_id, name, "sweep", data, {
        "grid": json.dumps(values)[:6000], "source": redact_url(source), "data": data.label,
        "train_digest": data.train.digest, "test_digest": data.test.digest, "points": len(configs)})
    get_run_logger().info(f"sweep {name}: {len(configs)} point(s), parent run {sweep.parent_run_id}: {url}")
    with closing_run(uri, sweep.parent_run_id, system_metrics_seconds=SYSTEM_METRICS_SECONDS):
        results = run_points([(sweep, configs)])
        summary = log_summary(uri, experiment_id, sweep.parent_run_id, results, t0)
    artifacts.link(url, f"MLflow parent run {name}", key="mlflow-sweep")
    table = summary.pop("summary_markdown")
    artifacts.markdown("sweep-summary", f"# {name}\n\nBest: {summary['best_point']} "
                       f"({summary['best_mean_performance']:.4f})\n\n{table}",
                       description="Mean performance per point over seeds, and the best point")
    artifacts.table("sweep-points", [r.row() for r in results], description="Every point of the sweep: config, "
                    "performance, whether it was trained, reused or derived, and its MLflow run")
    return {"parent_run_id": sweep.parent_run_id, "parent_url": url, **summary, "results": [r.row() for r in results]}
