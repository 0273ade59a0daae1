"""Reproduce every experiment of the book over several seeds, with a report beside its numbers.

One parent run ("reproduce"), one child per point (learning rates, two epoch curves, hidden
nodes on full MNIST; the 100/10 small-data run), points shared between experiments trained
once, the epoch curves taken from one 10-epoch training per seed and learning rate. The book's
table and the points it needs are in :mod:`mynn.experiments`.
"""
from __future__ import annotations

import time
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows import artifacts
from flows.params import ExperimentName
from flows.runners import DEFAULT_WORKERS
from flows.sweeping import prepare_data, run_points, start_sweep
from mynn.experiments import book_points
from mynn.sources import redact_url
from tracking import evaluation
from tracking.runs import SYSTEM_METRICS_SECONDS, closing_run, log_metrics
from tracking.store import ensure_experiment, tracking_uri
from tracking.sweep_summary import log_report, log_summary

QUICK_TRAIN_RECORDS = 6000  # --quick: the first 6,000 training records ...
QUICK_TEST_RECORDS = 1000  # ... and the first 1,000 test records
QUICK_SEEDS = 2


@flow(name="mynn-reproduce", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS))
def reproduce_flow(
    seeds: Annotated[int, Field(ge=1, le=100, description="Seeds per configuration (0..seeds-1)")] = 5,
    quick: Annotated[bool, Field(description="Quick look: 2 seeds (unless set), first 6,000/1,000 records")] = False,
    source: Annotated[str, Field(description="Full MNIST: shipped, book, a folder or URL")] = "shipped",
    small_source: Annotated[str, Field(description="The book's 100/10 subsets")] = "shipped-small",
    experiment: Annotated[ExperimentName, Field(description="MLflow experiment")] = "mynn-reproduce",
) -> dict:
    """Run the book's table over ``seeds`` seeds; report, plots and child runs in MLflow."""
    t0 = time.perf_counter()
    evaluation.prefetch(kernels=True)  # kernels and late imports load while the data is checked
    log = get_run_logger()
    if quick and seeds == 5:
        seeds = QUICK_SEEDS
    uri = tracking_uri()
    _, experiment_id = ensure_experiment(uri, experiment)
    full = prepare_data(source, QUICK_TRAIN_RECORDS if quick else None, QUICK_TEST_RECORDS if quick else None)
    small = prepare_data(small_source)
    points = book_points(list(range(seeds)), full.label)
    n = sum(len(v) for v in points.values())
    name = f"reproduce-{seeds}seeds-{full.label}"
    sweep, url = start_sweep(uri, experiment_id, name, "reproduce", full, {
        "seeds": seeds, "quick": quick, "source": redact_url(source), "data": full.label,
        "train_digest": full.train.digest, "test_digest": full.test.digest,
        "small_train_digest": small.train.digest, "points": n})
    small_sweep = sweep.with_data(small)
    log.info(f"{name}: {n} points; parent run {sweep.parent_run_id}: {url}")
    with closing_run(uri, sweep.parent_run_id, system_metrics_seconds=SYSTEM_METRICS_SECONDS):
        results = run_points([(sweep, points[full.label]), (small_sweep, points["small"])])
        summary = log_summary(uri, experiment_id, sweep.parent_run_id, results, t0)
        md = log_report(uri, sweep.parent_run_id, results, full.label,
                        title=f"Reproducing the book: {seeds} seeds, data {full.label}")
        wall = time.perf_counter() - t0
        log_metrics(uri, sweep.parent_run_id, {"wall_seconds": wall})
    artifacts.link(url, f"MLflow parent run {name}", key="mlflow-reproduce")
    artifacts.markdown("reproduce-report", md, description="The book's numbers beside the mean, spread and range "
                                                        "over seeds")
    artifacts.table("reproduce-points", [r.row() for r in results], description="Every point: config, data, "
                    "performance, origin and MLflow run")
    summary.pop("summary_markdown")
    log.info(f"done in {wall:.1f} s, {summary['training_seconds_total']:.1f} s of it training (summed over workers)")
    return {"parent_run_id": sweep.parent_run_id, "parent_url": url, "report": md, **summary, "wall_seconds": wall}
